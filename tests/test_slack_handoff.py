"""Hand-off to a human supporter, feedback, and the App Home: the MEDISO desk's side."""

from __future__ import annotations

import json
from typing import Any

from tests.slack_fixtures import STAFF, SUPPORTERS, Rig, answered, button, feedback_value, posted_text, user_says

QUESTION = "非臨床段階の細胞治療スタートアップです。MEDISOではどのような相談ができますか？"


def _handoff_values(topic: str, *, urgency: str = "high", consent: bool = True) -> dict[str, Any]:
    return {
        "topic": {"value": {"type": "plain_text_input", "value": topic}},
        "urgency": {"value": {"type": "radio_buttons", "selected_option": {"value": urgency}}},
        "consent": {"value": {"type": "checkboxes", "selected_options": [{"value": "yes"}] if consent else []}},
    }


def _hand_off(rig: Rig, *, consent: bool = True, topic: str = "申請書の書き方 <相談>") -> tuple[str, Any]:
    root, message = answered(rig, QUESTION)
    rig.driver.click(
        action_id="kk_handoff",
        value=button(message, "kk_handoff")["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        message=message,
    )
    view = rig.fake.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == "kk_handoff_view"
    reply = rig.driver.submit(view, _handoff_values(topic, consent=consent), user="U0ASKER")
    assert reply.status == 200 and not reply.body
    card = rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)[0]
    rig.settle()
    return root, card


def test_hand_off_posts_a_consultation_card_and_tells_the_asker(rig: Rig) -> None:
    root, card = _hand_off(rig)
    seen = posted_text(card)
    assert "相談 K-0001（未対応）" in seen and "<@U0ASKER>" in seen and "至急" in seen
    assert "申請書の書き方 &lt;相談&gt;" in seen  # the asker's words, escaped
    assert "*最初の質問*" in seen and seen.count("MEDISOではどのような相談") == 1  # the question once
    assert "プロフィール" in seen and "細胞治療" in seen and "非臨床" in seen
    assert "ボットの回答" in seen and "kk_sources" in seen
    assert ".yaml" not in seen and ".txt" not in seen and "U0KAKEBOT" not in seen
    assert "kk_take" in seen and "https://kakehashi-test.slack.com/archives/C0GENERAL/p" in seen

    notice = [c for c in rig.fake.calls_to("chat.postMessage") if c.args["channel"] == "C0GENERAL"][-1]
    assert notice.args["thread_ts"] == root and "K-0001" in notice.args["text"]

    [row] = rig.store.consultations()
    assert row.status == "open" and row.urgency == "high" and row.consent_to_share
    assert row.asker_thread_ts == root and row.card_channel_id == SUPPORTERS and row.card_ts == card_ts(rig)
    assert json.loads(row.profile_json)["modalities"] == ["cell_therapy"]
    assert row.answer_id == rig.store.answers()[0].id


def card_ts(rig: Rig) -> str:
    return next(m.ts for m in rig.fake.messages[SUPPORTERS])


def test_supporter_takes_then_resolves_and_the_asker_hears_each_step(rig: Rig) -> None:
    root, _ = _hand_off(rig)
    card_message = rig.fake.message(SUPPORTERS, card_ts(rig)).to_slack()
    rig.driver.click(action_id="kk_take", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=card_message)
    update = rig.fake.wait_for("chat.update")[0]
    rig.settle()
    assert update.args["ts"] == card_ts(rig)
    seen = posted_text(update)
    assert "（対応中）" in seen and "担当: <@U0SUPPORTER>" in seen and "kk_resolve" in seen and "kk_take" not in seen
    told = [c for c in rig.fake.calls_to("chat.postMessage") if c.args["channel"] == "C0GENERAL"][-1]
    assert told.args["thread_ts"] == root and "<@U0SUPPORTER> さんが担当します" in told.args["text"]
    assert "担当者に届き" in told.args["text"]
    assert rig.store.get_consultation(1).status == "taken"

    # A second supporter is too late: told privately, nothing changes.
    rig.driver.click(action_id="kk_take", value="1", user="U0LATE", channel=SUPPORTERS, message=card_message)
    late = rig.fake.wait_for("chat.postEphemeral")[0].args
    assert late["user"] == "U0LATE" and "<@U0SUPPORTER>" in late["text"]

    taken_message = rig.fake.message(SUPPORTERS, card_ts(rig)).to_slack()
    rig.driver.click(action_id="kk_resolve", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=taken_message)
    resolved = rig.fake.wait_for("chat.update", count=2)[1]
    rig.settle()
    seen = posted_text(resolved)
    assert "（対応済み）" in seen and "対応済み: <@U0SUPPORTER>" in seen and "kk_resolve" not in seen
    told = [c for c in rig.fake.calls_to("chat.postMessage") if c.args["channel"] == "C0GENERAL"][-1]
    assert told.args["thread_ts"] == root and "対応済み" in told.args["text"]
    row = rig.store.get_consultation(1)
    assert row.status == "resolved" and row.resolved_by == "U0SUPPORTER" and row.taken_at and row.resolved_at
    assert rig.store.consultation_counts() == {"open": 0, "taken": 0, "resolved": 1, "total": 1}


def test_the_bot_keeps_quiet_in_a_thread_a_supporter_is_handling(rig: Rig) -> None:
    root, _ = _hand_off(rig)
    posts = len(rig.fake.calls_to("chat.postMessage"))
    user_says(rig, "担当の方、よろしくお願いします。", thread_ts=root, user="U0SUPPORTER")
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == posts  # no bot answer to the people talking
    user_says(rig, "MEDISOの相談は無料ですか？", thread_ts=root, mention=True)  # asked by name: answers
    rig.fake.wait_for("chat.postMessage", count=posts + 1)


def test_without_consent_the_card_carries_only_the_topic(rig: Rig) -> None:
    _, card = _hand_off(rig, consent=False, topic="資金調達の相談")
    seen = posted_text(card)
    assert "資金調達の相談" in seen and "同意していません" in seen
    assert "ボットの回答" not in seen and "MEDISOではどのような相談" not in seen
    assert not rig.fake.calls_to("conversations.replies")
    assert rig.store.consultations()[0].thread_summary == ""


def test_feedback_is_recorded_and_thumbs_down_asks_why(rig: Rig) -> None:
    _, message = answered(rig, QUESTION)
    up = feedback_value(message, "positive")
    answer_id = up.removeprefix("up:")
    rig.driver.click(
        action_id="kk_feedback",
        value=up,
        user="U0ASKER",
        channel="C0GENERAL",
        message=message,
        element="feedback_buttons",
    )
    thanks = rig.fake.wait_for("chat.postEphemeral")[0].args
    assert thanks["user"] == "U0ASKER" and "フィードバック" in thanks["text"]
    rig.driver.click(
        action_id="kk_feedback",
        value=feedback_value(message, "negative"),
        user="U0OTHER",
        channel="C0GENERAL",
        message=message,
        element="feedback_buttons",
    )
    view = rig.fake.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == "kk_feedback_view" and "何が問題でしたか" in json.dumps(view, ensure_ascii=False)
    rig.driver.submit(
        view,
        {
            "reasons": {
                "value": {"type": "checkboxes", "selected_options": [{"value": "outdated"}, {"value": "sources"}]}
            },
            "comment": {"value": {"type": "plain_text_input", "value": "令和8年度の情報がほしい"}},
        },
        user="U0OTHER",
    )
    rig.fake.wait_for("chat.postEphemeral", count=2)
    rig.settle()
    liked, disliked = rig.store.feedback()
    assert (liked.rating, liked.answer_id, liked.user_id) == ("up", answer_id, "U0ASKER")
    assert (disliked.rating, disliked.reasons, disliked.comment) == (
        "down",
        "outdated,sources",
        "令和8年度の情報がほしい",
    )


def test_app_home_shows_open_consultations_to_supporters_who_can_take_them_there(rig: Rig) -> None:
    _hand_off(rig)
    rig.driver.event(
        {
            "type": "app_home_opened",
            "user": "U0ASKER",
            "channel": "D0ASKER",
            "tab": "home",
            "event_ts": "1700000300.000001",
        }
    )
    public = rig.fake.wait_for("views.publish")[0].args
    assert public["user_id"] == "U0ASKER"
    assert "K-0001" not in json.dumps(public["view"], ensure_ascii=False)
    assert "質問の例" in json.dumps(public["view"], ensure_ascii=False)

    rig.driver.event(
        {"type": "app_home_opened", "user": STAFF, "channel": "D0STAFF", "tab": "home", "event_ts": "1700000300.000002"}
    )
    staff_view = rig.fake.wait_for("views.publish", count=2)[1].args["view"]
    text = json.dumps(staff_view, ensure_ascii=False)
    assert "K-0001" in text and "未対応" in text and "受付 1 件" in text

    rig.driver.click(action_id="kk_take", value="1", user=STAFF, view={"id": "VHOME", "type": "home"})
    rig.fake.wait_for("chat.update")  # the card in the supporters' channel follows
    republished = rig.fake.wait_for("views.publish", count=3)[2].args["view"]
    rig.settle()
    assert "対応中" in json.dumps(republished, ensure_ascii=False)
    assert rig.store.get_consultation(1).assignee_user_id == STAFF


def test_a_founder_writing_in_a_taken_channel_thread_reaches_the_assignee(rig: Rig) -> None:
    root, _ = _hand_off(rig)
    card_message = rig.fake.message(SUPPORTERS, card_ts(rig)).to_slack()
    rig.driver.click(action_id="kk_take", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=card_message)
    rig.fake.wait_for("chat.update")
    rig.settle()
    user_says(rig, "追加の資料はどこに送ればよいですか？", thread_ts=root)
    relayed = rig.fake.wait_for(
        "chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS and "追加の資料" in c.args["text"]
    )[0].args
    rig.settle()
    assert relayed["thread_ts"] == card_ts(rig) and relayed["text"].startswith("<@U0SUPPORTER> ")
    assert not rig.fake.calls_to("chat.startStream")  # passed on, not answered by the bot


def test_without_consent_nothing_is_relayed_before_a_supporter_takes_it(rig: Rig) -> None:
    root, _ = _hand_off(rig, consent=False, topic="資金調達の相談")
    posts = len(rig.fake.calls_to("chat.postMessage"))
    user_says(rig, "社内の事情を少し書きます", thread_ts=root)
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == posts  # the card's thread hears nothing yet
