"""`/kakehashi`: acknowledged at once, the work after it; ask, match (text or form), help."""

from __future__ import annotations

import json

from tests.slack_fixtures import Rig, posted_text


def test_ask_is_acknowledged_at_once_then_answered_in_the_channel(rig: Rig) -> None:
    # As Slack sends it: "@channel" as <!channel>, and the user's "<", ">" and "&" as entities.
    reply = rig.driver.command("ask <!channel> MEDISOではどのような相談ができますか？ &lt;至急&gt; &amp; 費用は？")
    assert reply.status == 200 and reply.seconds < 1.0
    ack = reply.json()
    assert "資料を確認しています" in ack["text"]
    assert "<!channel>" not in ack["text"] and "&lt;至急&gt; &amp;" in ack["text"]  # nothing broadcast or linked
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "C0GENERAL" and not post.args.get("thread_ts")
    seen = posted_text(post)
    lead = post.args["blocks"][0]["elements"][0]["text"]
    assert lead.startswith("<@U0ASKER> さんの質問:") and "<!channel>" not in lead and "&lt;至急&gt; &amp;" in lead
    assert "サポーター" in seen and "*出典*" in seen
    rig.settle()
    [row] = rig.store.answers()
    assert row.surface == "command" and row.thread_ts == row.message_ts  # its thread takes follow-ups


def test_help_comes_in_the_acknowledgement(rig: Rig) -> None:
    reply = rig.driver.command("help")
    text = json.dumps(reply.json(), ensure_ascii=False)
    assert "/kakehashi ask" in text and "kk_open_match" in text
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage")


def test_match_with_text_posts_recommendation_cards(rig: Rig) -> None:
    reply = rig.driver.command("match 非臨床段階の細胞治療スタートアップで、研究開発の資金と製造委託先を探しています")
    assert "条件に合う支援を探しています" in reply.json()["text"]
    post = rig.fake.wait_for("chat.postMessage")[0]
    blocks = post.args["blocks"]
    headers = [b["text"]["text"] for b in blocks if b["type"] == "header"]
    assert headers[0] == "支援制度" and "CDMO（製造受託）" in headers
    cards = [b for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("*1. ")]
    assert cards and "`支援制度`" in cards[0]["text"]["text"] and "• " in cards[0]["text"]["text"]
    seen = posted_text(post)
    # The profile, and sources by the deck's title (never a seed file name).
    assert "理解したプロフィール" in seen and "細胞治療" in seen and ".txt" not in seen
    assert any(title in seen for title in ("骨太特集", "医療系ベンチャー振興", "令和8年度概算要求事項", "医療分野研究開発推進計画",
                                            "生物化学産業課の取組"))
    rig.settle()
    assert rig.store.answers()[0].mode == "match"


def test_match_without_text_opens_the_form_and_its_results_come_back(rig: Rig) -> None:
    rig.driver.command("match", channel="C0FOUNDERS")
    opened = rig.fake.wait_for("views.open")[0].args
    view = opened["view"]
    assert view["callback_id"] == "kk_match_view" and opened["trigger_id"].startswith("trigger.")
    values = {
        "who": {"value": {"type": "static_select", "selected_option": {"value": "startup"}}},
        "pre_founding": {"value": {"type": "checkboxes", "selected_options": []}},
        "stage": {"value": {"type": "static_select", "selected_option": {"value": "non_clinical"}}},
        "modality": {"value": {"type": "multi_static_select", "selected_options": [{"value": "gene_therapy"}]}},
        "needs": {"value": {"type": "multi_static_select", "selected_options": [{"value": "manufacturing"}]}},
        "free_text": {"value": {"type": "plain_text_input", "value": "AAVベクターの製造委託先を探しています"}},
    }
    reply = rig.driver.submit(view, values, user="U0ASKER")
    assert reply.status == 200 and not reply.body  # the form closes
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "C0FOUNDERS"
    seen = posted_text(post)
    assert "遺伝子治療" in seen and "CDMO" in seen
    rig.settle()
    assert rig.store.answers()[0].surface == "match_form"


def test_empty_match_form_is_refused_with_a_field_error(rig: Rig) -> None:
    rig.driver.command("match")
    view = rig.fake.wait_for("views.open")[0].args["view"]
    reply = rig.driver.submit(view, {}, user="U0ASKER")
    assert reply.json()["response_action"] == "errors" and "free_text" in reply.json()["errors"]
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage")


def test_channel_the_bot_is_not_in_gets_the_answer_by_dm(rig: Rig) -> None:
    rig.fake.fail("chat.postMessage", error="not_in_channel")
    rig.driver.command("MEDISOではどのような相談ができますか？", channel="C0PRIVATE")
    posts = rig.fake.wait_for("chat.postMessage", count=2)
    assert posts[0].args["channel"] == "C0PRIVATE" and posts[1].args["channel"] == "U0ASKER"
    note = rig.fake.wait_for("response_url")[0].args
    assert "DM" in note["text"] and note["response_type"] == "ephemeral"
    rig.settle()
    assert rig.store.answers()[0].channel_id == "D0ASKER"
