"""`/kakehashi`: acknowledged at once, the work after it; ask, match (text or form), help."""

from __future__ import annotations

import json
import re

from tests.slack_fixtures import Rig, button, posted_text


def test_ask_is_answered_privately_replacing_the_checking_note_until_shared(rig: Rig) -> None:
    # As Slack sends it: "@channel" as <!channel>, and the user's "<", ">" and "&" as entities.
    reply = rig.driver.command("ask <!channel> MEDISOではどのような相談ができますか？ &lt;至急&gt; &amp; 費用は？")
    assert reply.status == 200 and reply.seconds < 1.0
    ack = reply.json()
    assert "資料を確認しています" in ack["text"] and ack.get("response_type") in (None, "ephemeral")
    assert "<!channel>" not in ack["text"] and "&lt;至急&gt; &amp;" in ack["text"]  # nothing broadcast or linked
    answer = rig.fake.wait_for("response_url")[0].args
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage")  # nothing public
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is True  # the note is replaced
    seen = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "MEDISO" in seen and "チャンネルに共有" in seen  # (what the answer says is tests/test_answer.py's)
    [row] = rig.store.answers()
    assert row.surface == "command" and row.message_ts is None and row.channel_id == "C0GENERAL"

    # Shared: posted in the channel with who asked, and the private copy deleted.
    share = button(answer, "kk_share")
    assert share["value"] == row.id
    rig.driver.click(action_id="kk_share", value=share["value"], user="U0ASKER", channel="C0GENERAL", ephemeral=True)
    post = rig.fake.wait_for("chat.postMessage")[0]
    rig.settle()
    assert post.args["channel"] == "C0GENERAL" and not post.args.get("thread_ts")
    lead = post.args["blocks"][0]["elements"][0]["text"]
    assert lead.startswith("<@U0ASKER> さんが共有しました") and "<!channel>" not in lead
    assert "MEDISO" in posted_text(post) and "チャンネルに共有" not in posted_text(post)
    assert rig.fake.calls_to("response_url")[-1].args.get("delete_original") is True
    shared = rig.store.get_answer(row.id)
    assert shared is not None
    assert shared.message_ts == rig.fake.messages["C0GENERAL"][-1].ts and shared.thread_ts == shared.message_ts


def test_someone_else_cannot_share_or_open_anothers_private_answer(rig: Rig) -> None:
    rig.driver.command("ask MEDISOではどのような相談ができますか？")
    answer = rig.fake.wait_for("response_url")[0].args
    rig.settle()
    answer_id = button(answer, "kk_share")["value"]
    rig.driver.click(action_id="kk_share", value=answer_id, user="U0OTHER", channel="C0GENERAL", ephemeral=True)
    rig.driver.click(action_id="kk_sources", value=answer_id, user="U0OTHER", channel="C0ELSEWHERE", ephemeral=True)
    refusals = rig.fake.wait_for("chat.postEphemeral", count=2)
    rig.settle()
    assert {r.args["user"] for r in refusals} == {"U0OTHER"} and not rig.fake.calls_to("chat.postMessage")
    assert not rig.fake.calls_to("views.open")
    rig.driver.click(action_id="kk_sources", value=answer_id, user="U0ASKER", channel="C0GENERAL", ephemeral=True)
    modal = rig.fake.wait_for("views.open")[0].args["view"]
    text = json.dumps(modal, ensure_ascii=False)
    assert modal["type"] == "modal" and re.search(r"\[\d+\] ", text) and ".txt" not in text and ".yaml" not in text


def test_typos_unknown_subcommands_and_an_empty_ask_get_private_help(rig: Rig) -> None:
    for text, expected in (
        ("hepl", "`/kakehashi help` のことですか"),
        ("asdf", "`asdf` というコマンドはありません"),
        ("ask", "`/kakehashi ask` のあとに質問"),
    ):
        reply = rig.driver.command(text)
        body = reply.json()
        assert expected in json.dumps(body, ensure_ascii=False) and body.get("response_type") in (None, "ephemeral")
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage") and not rig.fake.calls_to("response_url")
    assert not rig.store.answers()


def test_help_comes_in_the_acknowledgement(rig: Rig) -> None:
    reply = rig.driver.command("help")
    text = json.dumps(reply.json(), ensure_ascii=False)
    assert "/kakehashi ask" in text and "kk_open_match" in text
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage")


def test_match_with_text_is_private_compact_and_without_scores_or_files(rig: Rig) -> None:
    reply = rig.driver.command("match 非臨床段階の細胞治療スタートアップで、研究開発の資金と製造委託先を探しています")
    assert "条件に合う支援を探しています" in reply.json()["text"]
    result = rig.fake.wait_for("response_url")[0].args
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage") and result["response_type"] == "ephemeral"
    blocks = result["blocks"]
    seen = json.dumps(blocks, ensure_ascii=False)
    kinds = [
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and b["text"]["text"] in ("*支援制度*", "*認定VC（出資）*", "*CDMO（製造受託）*")
    ]
    assert kinds[0] == "*支援制度*" and "*CDMO（製造受託）*" in kinds  # manufacturing was asked
    cards = [b for b in blocks if b.get("accessory", {}).get("action_id") == "kk_details"]
    assert 3 <= len(cards) <= 9 and "条件に合う点" in cards[0]["text"]["text"]
    assert len(blocks) <= 25 and len(seen) < 7000
    assert "ご状況" in seen and "細胞治療" in seen and "理解したプロフィール" not in seen
    assert ".txt" not in seen and "適合度" not in seen and "0." not in "".join(b["text"]["text"] for b in cards)
    sources = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"] if "出典: " in e["text"]]
    assert sources and not [s for s in sources if re.fullmatch(r"出典: [\d年月日.]+", s)]  # a title, not just a date
    row = rig.store.answers()[0]
    assert row.mode == "match"
    rig.driver.click(
        action_id="kk_details",
        value=cards[0]["accessory"]["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        ephemeral=True,
    )
    details = rig.fake.wait_for("views.open")[0].args["view"]
    assert "条件に合う点" in json.dumps(details, ensure_ascii=False) and len(details["blocks"]) <= 100


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
    post = rig.fake.wait_for("chat.postEphemeral")[0]
    rig.settle()
    assert post.args["channel"] == "C0FOUNDERS" and post.args["user"] == "U0ASKER"  # the founder's alone
    assert not rig.fake.calls_to("chat.postMessage")
    seen = posted_text(post)
    assert "遺伝子治療" in seen and "CDMO" in seen and "チャンネルに共有" in seen
    assert "さんの質問" not in seen and "所属:" not in seen and "言い換えて" not in seen  # a summary, not an echo
    assert rig.store.answers()[0].surface == "match_form"


def test_empty_match_form_is_refused_with_a_field_error(rig: Rig) -> None:
    rig.driver.command("match")
    view = rig.fake.wait_for("views.open")[0].args["view"]
    reply = rig.driver.submit(view, {}, user="U0ASKER")
    assert reply.json()["response_action"] == "errors" and "free_text" in reply.json()["errors"]
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage")
