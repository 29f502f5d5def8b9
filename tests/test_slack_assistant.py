"""Slack's AI-app surface: suggested prompts, status, title, and the streamed answer (or a plain
message where the workspace does not allow streaming)."""

from __future__ import annotations

import re

from tests.fakeslack import TEAM_ID
from tests.slack_fixtures import Rig, posted_text

DM = "D0ASSIST"
THREAD = "1700000100.000100"


def _start_thread(rig: Rig) -> None:
    rig.driver.event(
        {
            "type": "assistant_thread_started",
            "event_ts": THREAD,
            "assistant_thread": {
                "user_id": "U0ASKER",
                "channel_id": DM,
                "thread_ts": THREAD,
                "context": {"channel_id": "C0GENERAL", "team_id": TEAM_ID, "enterprise_id": None},
            },
        }
    )


def _ask(rig: Rig, text: str) -> str:
    ts = rig.fake.add_message(DM, text=text, user="U0ASKER", thread_ts=THREAD)
    rig.driver.event(
        {
            "type": "message",
            "user": "U0ASKER",
            "text": text,
            "ts": ts,
            "thread_ts": THREAD,
            "channel": DM,
            "channel_type": "im",
            "event_ts": ts,
        }
    )
    return ts


def test_thread_start_greets_and_suggests_japanese_prompts(rig: Rig) -> None:
    _start_thread(rig)
    prompts = rig.fake.wait_for("assistant.threads.setSuggestedPrompts")[0].args
    assert prompts["channel_id"] == DM and prompts["thread_ts"] == THREAD
    assert len(prompts["prompts"]) == 4 and "MEDISO" in prompts["prompts"][0]["message"]
    greeting = rig.fake.wait_for("chat.postMessage")[0]
    assert greeting.args["thread_ts"] == THREAD and "Kakehashi" in greeting.args["text"]


def test_question_gets_status_title_and_a_streamed_answer_with_sources(rig: Rig) -> None:
    rig.fake.add_message(DM, text="greeting", user="U0KAKEBOT", ts=THREAD)
    _ask(rig, "MEDISOではどのような相談ができますか？")
    stop = rig.fake.wait_for("chat.stopStream")[0]
    rig.settle()
    assert rig.fake.calls_to("assistant.threads.setTitle")[0].args["title"] == "MEDISOではどのような相談ができますか？"
    assert "資料を確認しています" in rig.fake.calls_to("assistant.threads.setStatus")[0].args["status"]
    start = rig.fake.calls_to("chat.startStream")[0].args
    assert start["thread_ts"] == THREAD and start["recipient_user_id"] == "U0ASKER"
    assert start["recipient_team_id"] == TEAM_ID
    message = rig.fake.message(DM, stop.args["ts"])
    assert "MEDISO" in message.text and re.search(r"\[\d+\]", message.text) and not message.streaming
    footer = posted_text(stop)
    assert "*出典*" in footer and "相談員につなぐ" in footer and "feedback_buttons" in footer
    assert not rig.fake.calls_to("chat.postMessage")  # streamed, not posted
    [row] = rig.store.answers()
    assert row.surface == "assistant" and row.message_ts == stop.args["ts"] and row.thread_ts == THREAD


def test_workspace_without_streaming_gets_a_plain_message(rig: Rig) -> None:
    rig.fake.fail("chat.startStream", error="not_allowed_token_type", times=5)
    _ask(rig, "MEDISOではどのような相談ができますか？")
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert post.args["thread_ts"] == THREAD
    seen = posted_text(post)
    assert "MEDISO" in seen and "*出典*" in seen and "相談員につなぐ" in seen
    rig.settle()
    assert rig.store.answers()[0].message_ts == rig.fake.thread(DM, THREAD)[-1].ts


def test_second_question_uses_the_thread_and_keeps_the_title(rig: Rig) -> None:
    _ask(rig, "MEDISOとは何ですか？")
    rig.fake.wait_for("chat.stopStream")
    rig.settle()
    _ask(rig, "どのような相談ができますか？")
    rig.fake.wait_for("chat.stopStream", count=2)
    rig.settle()
    assert len(rig.fake.calls_to("assistant.threads.setTitle")) == 1
    assert rig.fake.calls_to("conversations.replies")
    assert "MEDISO" in rig.fake.thread(DM, THREAD)[-1].text
