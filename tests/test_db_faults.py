"""The desk database goes down under the running Slack app: answers are still posted, their recording
is retried and otherwise logged with a reference, event dedupe fails open, and buttons that need the
database tell the user to try again. The outage is real: SQLite's file is overwritten with garbage,
or PostgreSQL stops accepting connections to the database (and drops the open ones)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from sqlalchemy.engine import make_url

from bot.slack.answers.answering import RECORD_ATTEMPTS, RECORD_BACKOFF_S
from core.settings import Settings
from retrieval.answer import Answerer
from retrieval.match import Matcher
from tests.db_fixtures import admin_connection, database_url  # noqa: F401 - the fixture, by name
from tests.fakeslack import FakeSlack
from tests.slack_fixtures import (
    STAFF,
    SUPPORTERS,
    Rig,
    answered,
    button,
    feedback_value,
    make_rig,
    posted_text,
    user_says,
)

QUESTION = "MEDISOではどのような相談ができますか？"
NOT_SAVED = "保存できませんでした"


class Outage:
    """Takes the rig's database away and gives it back, as a real failure the driver reports."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self._saved = b""
        self.down = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def start(self) -> None:
        self.down = True
        if self.url.get_backend_name() == "sqlite":
            path = Path(str(self.url.database))
            self._saved = path.read_bytes()[:4096]
            with path.open("r+b") as file:  # the header and first pages: "file is not a database"
                file.write(b"\x00not a database\x00" * 256)
            return
        with admin_connection() as admin:
            admin.execute(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS false')  # type: ignore[attr-defined]
            admin.execute(  # type: ignore[attr-defined]
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.url.database,),
            )

    def end(self) -> None:
        if not self.down:
            return
        self.down = False
        if self.url.get_backend_name() == "sqlite":
            with Path(str(self.url.database)).open("r+b") as file:
                file.write(self._saved)
            return
        with admin_connection() as admin:
            admin.execute(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS true')  # type: ignore[attr-defined]


@pytest.fixture
def db_rig(
    database_url: str,  # noqa: F811
    seed_settings: Settings,
    fake_slack: FakeSlack,
    tmp_path: Path,
    slack_answerer: Answerer,
    slack_matcher: Matcher,
    slack_catalog: Any,
) -> Iterator[Rig]:
    made = make_rig(
        base=seed_settings,
        fake=fake_slack,
        tmp_path=tmp_path,
        answerer=slack_answerer,
        matcher=slack_matcher,
        catalog=slack_catalog,
        database_url=database_url,
    )
    yield made
    made.close()


@pytest.fixture
def outage(db_rig: Rig) -> Iterator[Outage]:
    down = Outage(db_rig.settings.storage.effective_database_url)
    yield down
    down.end()  # a failed test must not leave the database down for the rig's teardown


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_answers_are_posted_while_the_database_is_down(
    db_rig: Rig, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kakehashi"):
        outage.start()
        ts, reply = user_says(db_rig, QUESTION, mention=True, event_id="Ev0DBDOWN")
        assert reply.status == 200 and reply.seconds < 3  # Slack got its acknowledgement in time
        started = time.monotonic()
        post = db_rig.fake.wait_for("chat.postMessage")[0]
        db_rig.settle()
        retrying = time.monotonic() - started
        outage.end()
    seen = posted_text(post)
    assert post.args["thread_ts"] == ts and "*出典*" in seen and "申し訳ありません" not in seen
    answer_id = feedback_value(post.args, "positive").removeprefix("up:")
    errors = _messages(caplog, logging.ERROR)
    assert any("Ev0DBDOWN" in m and "handling it anyway" in m for m in errors)  # dedupe failed open
    lost = [m for m in errors if answer_id in m and "not recorded" in m]
    assert lost and re.search(r"\[ref KK-[0-9A-F]{8}\]", lost[0]) and post.args["channel"] in lost[0]
    retries = [m for m in _messages(caplog, logging.WARNING) if answer_id in m and "retrying" in m]
    assert len(retries) == RECORD_ATTEMPTS - 1
    assert retrying >= RECORD_BACKOFF_S * 3 * 0.9 and retrying < 10  # tried 3 times, 0.5 s then 1 s apart
    assert db_rig.store.answers() == [] and len(db_rig.fake.calls_to("chat.postMessage")) == 1


def test_the_answer_is_recorded_when_the_database_returns_during_the_retries(
    db_rig: Rig, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kakehashi"):
        outage.start()
        user_says(db_rig, QUESTION, mention=True)
        post = db_rig.fake.wait_for("chat.postMessage")[0]
        deadline = time.monotonic() + 10
        while not any("attempt 1 of" in m for m in _messages(caplog, logging.WARNING)):
            assert time.monotonic() < deadline, "the first recording attempt never failed"
            time.sleep(0.01)
        outage.end()
        db_rig.settle()
    [row] = db_rig.store.answers()
    assert (
        row.id == feedback_value(post.args, "positive").removeprefix("up:") and row.channel_id == post.args["channel"]
    )
    assert row.channel_id and row.message_ts
    assert db_rig.fake.message(row.channel_id, row.message_ts).text == post.args["text"]
    assert not any("not recorded" in m for m in _messages(caplog, logging.ERROR))


def test_feedback_during_an_outage_asks_the_user_to_try_again(
    db_rig: Rig, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    message = answered(db_rig, QUESTION)[1]
    answer_id = feedback_value(message, "positive").removeprefix("up:")
    with caplog.at_level(logging.ERROR, logger="kakehashi"):
        outage.start()
        for which in ("positive", "negative"):
            reply = db_rig.driver.click(
                action_id="kk_feedback",
                value=feedback_value(message, which),
                user="U0ASKER",
                channel="C0GENERAL",
                message=message,
                element="feedback_buttons",
            )
            assert reply.status == 200
        notes = db_rig.fake.wait_for("chat.postEphemeral", count=2)
        db_rig.settle()
        outage.end()
    for note in notes:
        assert note.args["user"] == "U0ASKER" and NOT_SAVED in note.args["text"]
        reference = re.search(r"KK-[0-9A-F]{8}", note.args["text"])
        assert reference and any(reference.group() in m for m in _messages(caplog, logging.ERROR))
    assert not db_rig.fake.calls_to("views.open")  # no "what was wrong?" form for a rating that was not saved
    assert len(db_rig.fake.calls_to("chat.postMessage")) == 1  # no apology posted in the thread
    assert db_rig.store.feedback() == []

    db_rig.driver.click(
        action_id="kk_feedback",
        value=f"up:{answer_id}",
        user="U0ASKER",
        channel="C0GENERAL",
        message=message,
        element="feedback_buttons",
    )  # the user tries again, as asked
    thanks = db_rig.fake.wait_for("chat.postEphemeral", count=3)[2]
    db_rig.settle()
    assert "フィードバック" in thanks.args["text"]
    assert [(f.rating, f.answer_id) for f in db_rig.store.feedback()] == [("up", answer_id)]


def test_taking_a_consultation_during_an_outage_asks_the_supporter_to_try_again(db_rig: Rig, outage: Outage) -> None:
    consultation = db_rig.store.open_consultation(
        asker_user_id="U0ASKER",
        topic="治験の相談",
        urgency="high",
        consent_to_share=False,
        asker_channel_id="C0GENERAL",
        asker_thread_ts="1700000000.000100",
    )
    card = {"ts": "1700000001.000100", "text": "card", "blocks": []}
    with outage:
        db_rig.driver.click(
            action_id="kk_take", value=str(consultation.id), user=STAFF, channel=SUPPORTERS, message=card
        )
        note = db_rig.fake.wait_for("chat.postEphemeral")[0].args
        db_rig.settle()
    assert note["user"] == STAFF and note["channel"] == SUPPORTERS and NOT_SAVED in note["text"]
    assert not db_rig.fake.calls_to("chat.postMessage")  # the asker was not told it was taken
    assert db_rig.store.get_consultation(consultation.id).status == "open"

    db_rig.driver.click(action_id="kk_take", value=str(consultation.id), user=STAFF, channel=SUPPORTERS, message=card)
    told = db_rig.fake.wait_for("chat.postMessage")[0].args
    db_rig.settle()
    assert told["channel"] == "C0GENERAL" and STAFF in told["text"]
    assert db_rig.store.get_consultation(consultation.id).assignee_user_id == STAFF


def test_a_hand_off_submitted_during_an_outage_is_not_half_done(db_rig: Rig, outage: Outage) -> None:
    message = answered(db_rig, QUESTION)[1]
    db_rig.driver.click(
        action_id="kk_handoff",
        value=button(message, "kk_handoff")["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        message=message,
    )
    view = db_rig.fake.wait_for("views.open")[0].args["view"]
    values = {
        "topic": {"value": {"type": "plain_text_input", "value": "資金調達の相談"}},
        "urgency": {"value": {"type": "radio_buttons", "selected_option": {"value": "normal"}}},
        "consent": {"value": {"type": "checkboxes", "selected_options": []}},
    }
    with outage:
        assert db_rig.driver.submit(view, values, user="U0ASKER").status == 200
        note = db_rig.fake.wait_for("chat.postEphemeral")[0].args
        db_rig.settle()
    assert note["user"] == "U0ASKER" and NOT_SAVED in note["text"]
    assert not [c for c in db_rig.fake.calls_to("chat.postMessage") if c.args["channel"] == SUPPORTERS]
    assert db_rig.store.consultations() == []

    assert db_rig.driver.submit(view, values, user="U0ASKER").status == 200  # sent again, as the note asks
    card = db_rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)[0]
    db_rig.settle()
    assert "資金調達の相談" in posted_text(card) and len(db_rig.store.consultations()) == 1


def test_the_ai_app_thread_answers_while_the_database_is_down(db_rig: Rig, outage: Outage) -> None:
    dm, thread = "D0ASSIST", "1700000100.000100"
    with outage:
        ts = db_rig.fake.add_message(dm, text=QUESTION, user="U0ASKER", thread_ts=thread)
        db_rig.driver.event(
            {
                "type": "message",
                "user": "U0ASKER",
                "text": QUESTION,
                "ts": ts,
                "thread_ts": thread,
                "channel": dm,
                "channel_type": "im",
                "event_ts": ts,
            }
        )
        stop = db_rig.fake.wait_for("chat.stopStream")[0]
        db_rig.settle()
    message = db_rig.fake.message(dm, stop.args["ts"])
    assert re.search(r"\[\d+\]", message.text) and "*出典*" in posted_text(stop) and not message.streaming
    assert db_rig.store.answers() == []  # posted, not recorded: the log has it with a reference


def test_a_follow_up_in_the_bots_thread_is_answered_while_the_database_is_down(db_rig: Rig, outage: Outage) -> None:
    root, _ = user_says(db_rig, "MEDISOとは何ですか？", mention=True)
    db_rig.fake.wait_for("chat.postMessage")
    db_rig.settle()
    with outage:
        user_says(db_rig, "どのような相談ができますか？", thread_ts=root)
        follow_up = db_rig.fake.wait_for("chat.postMessage", count=2)[1]
        # A thread the bot never posted in stays quiet: Slack's copy of it shows no bot message.
        other_root = db_rig.fake.add_message("C0GENERAL", text="雑談です", user="U0OTHER")
        user_says(db_rig, "ランチどこにしますか", thread_ts=other_root)
        db_rig.settle()
    assert follow_up.args["thread_ts"] == root and "MEDISO" in posted_text(follow_up)
    assert len(db_rig.fake.calls_to("chat.postMessage")) == 2
    asked = [c.args["ts"] for c in db_rig.fake.calls_to("conversations.replies")]
    assert other_root in asked  # it was looked at, and left alone
