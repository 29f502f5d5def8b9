"""Questions as Slack delivers them: @mentions, follow-ups in threads, direct messages."""

from __future__ import annotations

import re

from tests.fakeslack import BOT_USER_ID
from tests.slack_fixtures import Rig, posted_text, user_says

SEED_QUESTION = "MEDISOではどのような相談ができますか？"


def test_mention_gets_a_threaded_answer_with_numbered_sources(rig: Rig) -> None:
    ts, reply = user_says(rig, SEED_QUESTION, mention=True)
    assert reply.status == 200 and reply.seconds < 1.0  # acknowledged before the answer is worked out
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "C0GENERAL" and post.args["thread_ts"] == ts
    seen = posted_text(post)
    assert "MEDISO" in seen  # about what was asked (the wording is tests/test_answer.py's)
    sources = next(b for b in post.args["blocks"] if b["type"] == "context" and "*出典*" in b["elements"][0]["text"])
    assert re.search(r"\[\d+\] ", sources["elements"][0]["text"])
    assert ".txt" not in seen and ".yaml" not in seen  # human titles, not files
    buttons = next(b for b in post.args["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["出典を見る", "相談員につなぐ"]
    assert post.args["blocks"][-1]["elements"][0]["type"] == "feedback_buttons"
    assert rig.fake.wait_for("reactions.add")[0].args["name"] == "eyes"

    rig.settle()
    removed = rig.fake.wait_for("reactions.remove")[0]
    assert removed.args == {"channel": "C0GENERAL", "timestamp": ts, "name": "eyes"} or {
        k: removed.args[k] for k in ("channel", "timestamp", "name")
    } == {"channel": "C0GENERAL", "timestamp": ts, "name": "eyes"}
    assert rig.fake.calls.index(removed) > rig.fake.calls.index(post)  # gone once answered, not before
    [row] = rig.store.answers()
    assert row.surface == "mention" and row.user_id == "U0ASKER" and row.thread_ts == ts and row.confident
    assert row.question == SEED_QUESTION and row.citations and buttons[0]["value"] == row.id
    assert row.message_ts is not None
    message = rig.fake.message("C0GENERAL", row.message_ts)  # the stored ts is the posted message
    assert message.thread_ts == ts


def test_follow_up_in_our_thread_is_answered_with_the_thread_as_context(rig: Rig) -> None:
    root, _ = user_says(rig, "MEDISOとは何ですか？", mention=True)
    rig.fake.wait_for("chat.postMessage")
    user_says(rig, "どのような相談ができますか？", thread_ts=root)
    second = rig.fake.wait_for("chat.postMessage", count=2)[1]
    assert second.args["thread_ts"] == root
    # Read as a question about MEDISO, the thread's subject, and not the first answer again.
    assert "MEDISO" in posted_text(second) and posted_text(second) != posted_text(
        rig.fake.calls_to("chat.postMessage")[0]
    )
    rig.settle()
    replies = rig.fake.calls_to("conversations.replies")
    assert replies and replies[-1].args["ts"] == root
    assert [r.surface for r in rig.store.answers()] == ["mention", "thread"]


def test_a_follow_up_sent_before_the_first_answer_is_posted_is_answered(rig: Rig) -> None:
    """Slack holds the first answer's chat.postMessage; the asker's follow-up in the thread meanwhile must
    not be taken for a stranger's message (the answer is not recorded yet)."""
    first_post = rig.fake.hold("chat.postMessage")
    try:
        root, _ = user_says(rig, "MEDISOとは何ですか？", mention=True)
        rig.fake.wait_for("chat.postMessage")  # on its way to Slack, not yet posted
        user_says(rig, "どのような相談ができますか？", thread_ts=root)
        follow_up = rig.fake.wait_for("chat.postMessage", count=2)[1]
    finally:
        first_post.set()
    assert follow_up.args["thread_ts"] == root and "MEDISO" in posted_text(follow_up)
    rig.settle()
    assert sorted(r.surface for r in rig.store.answers()) == ["mention", "thread"]


def test_messages_outside_our_threads_are_left_alone(rig: Rig) -> None:
    other_root = rig.fake.add_message("C0GENERAL", text="雑談です", user="U0OTHER")
    user_says(rig, "MEDISOとは？", thread_ts=other_root)  # a thread the bot is not part of
    user_says(rig, "MEDISOとは？")  # a channel message without a mention
    # A mention in our own thread comes twice (app_mention and message); it is answered once.
    root, _ = user_says(rig, SEED_QUESTION, mention=True)
    rig.fake.wait_for("chat.postMessage")
    user_says(rig, "補足です", thread_ts=root, mention=True)
    event = {
        "type": "message",
        "user": "U0ASKER",
        "text": f"<@{BOT_USER_ID}> 補足です",
        "ts": "1700009999.000001",
        "channel": "C0GENERAL",
        "thread_ts": root,
        "channel_type": "channel",
    }
    rig.driver.event(event)
    rig.fake.wait_for("chat.postMessage", count=2)
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 2


def test_direct_message_is_answered_in_its_thread_in_english(rig: Rig) -> None:
    ts, _ = user_says(
        rig,
        "What is the total fund of the Drug Discovery Venture Ecosystem program?",
        channel="D0ASKER",
        channel_type="im",
    )
    status = rig.fake.wait_for("assistant.threads.setStatus")[0].args
    assert status["channel_id"] == "D0ASKER" and status["thread_ts"] == ts and "Checking" in status["status"]
    stop = rig.fake.wait_for("chat.stopStream")[0]
    rig.settle()
    start = rig.fake.calls_to("chat.startStream")[0].args
    assert start["channel"] == "D0ASKER" and start["thread_ts"] == ts and start["recipient_user_id"] == "U0ASKER"
    assert rig.fake.calls.index(rig.fake.calls_to("assistant.threads.setStatus")[0]) < rig.fake.calls.index(stop)
    message = rig.fake.message("D0ASKER", stop.args["ts"])
    assert message.thread_ts == ts and "Drug Discovery Venture" in message.text
    footer = posted_text(stop)
    assert "Sources" in footer and "Talk to a supporter" in footer and "feedback_buttons" in footer
    assert rig.store.answers()[0].language == "en"


def test_empty_mention_asks_for_a_question(rig: Rig) -> None:
    user_says(rig, "", mention=True)
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert "ご質問をどうぞ" in post.args["text"]
    rig.settle()
    assert rig.store.answers() == []


def test_long_question_is_cut_with_a_note(rig: Rig) -> None:
    user_says(rig, SEED_QUESTION + "詳しく教えてください。" * 400, mention=True)
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert "入力が長いため、最初の2000文字だけを読みました" in posted_text(post)
    rig.settle()
    assert len(rig.store.answers()[0].question) == 2000
