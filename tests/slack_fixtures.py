"""Fixtures for the Slack suite: the real app served over HTTP on 127.0.0.1, a fake Slack Web API,
and a driver that sends signed requests. Import the fixtures into a test module by name."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_bolt import App

from bot.slack.app import build_app, make_client
from bot.slack.outbox import Outbox
from bot.slack.server import RunningServer, start_http
from bot.slack.sources import SourceCatalog
from bot.store import DeskStore
from core.settings import Settings
from knowledge.loader import KnowledgeBase
from retrieval.answer import Answerer
from retrieval.index import SearchIndex
from retrieval.match import Matcher
from tests.fakeslack import BOT_USER_ID, TOKEN, FakeSlack
from tests.slackdriver import Reply, SlackDriver

SIGNING_SECRET = "test-signing-secret"
SUPPORTERS = "C0SUPPORT"
# Read at import: the tests' own fixture clears KAKEHASHI_* from the environment before each test.
CALLS_DIR = os.environ.get("KAKEHASHI_SLACK_CALLS_DIR")
STAFF = "U0STAFF1"


class TrackingExecutor(ThreadPoolExecutor):
    """bolt's listener pool, counting work in flight so a test can wait until the app is idle
    (listeners run after Slack gets its 200, so "nothing was posted" needs the app to be done)."""

    def __init__(self) -> None:
        super().__init__(max_workers=8, thread_name_prefix="bolt-listener")
        self._busy = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._busy += 1

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        return super().submit(run)

    def wait_idle(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("the app's listeners did not finish")
                self._idle.wait(remaining)


@dataclass
class Rig:
    fake: FakeSlack
    driver: SlackDriver
    store: DeskStore
    settings: Settings
    app: App
    server: RunningServer
    executor: TrackingExecutor
    outbox: Outbox

    def settle(self) -> None:
        """Wait until every listener started so far has finished."""
        self.executor.wait_idle()

    def close(self) -> None:
        """Let the listeners finish, then stop serving and release the database."""
        try:
            self.settle()
        finally:
            self.server.stop()
            self.executor.shutdown(wait=True)
            self.outbox.stop()
            self.store.close()


def slack_settings(base: Settings, *, api_url: str, database: Path, **changes: object) -> Settings:
    return base.updated(
        **{
            "slack_bot_token": SecretStr(TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": api_url,
            "supporters_channel": SUPPORTERS,
            "database_url": f"sqlite:///{database}",
            "slack_staff_user_ids": STAFF,
            **changes,
        }
    )


# The Slack flows are about what reaches Slack, not how passages rank: the seed index with the stand-in
# embedder serves them (tests/standin.py), so they run while the real seed index is still being built.
@pytest.fixture(scope="session")
def slack_answerer(standin_seed_index: SearchIndex, seed_kb: KnowledgeBase, slack_matcher: Matcher) -> Answerer:
    return Answerer(index=standin_seed_index, kb=seed_kb, matcher=slack_matcher, k=8)


@pytest.fixture(scope="session")
def slack_matcher(seed_kb: KnowledgeBase, standin_seed_index: SearchIndex) -> Matcher:
    return Matcher(kb=seed_kb, index=standin_seed_index)


@pytest.fixture(scope="session")
def slack_catalog(seed_kb: KnowledgeBase) -> SourceCatalog:
    return SourceCatalog.from_kb(seed_kb)


SUPPORTER_MEMBERS = ["U0SUPPORTER", "U0LATE"]  # the supporters' channel's members (not staff)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.channel_members[SUPPORTERS] = list(SUPPORTER_MEMBERS)
    yield fake
    fake.stop()


def make_rig(
    *,
    base: Settings,
    fake: FakeSlack,
    tmp_path: Path,
    answerer: object = None,
    matcher: object = None,
    catalog: SourceCatalog | None = None,
    editor: object = None,
    live: object = None,
    **changes: object,
) -> Rig:
    """The app over HTTP against `fake`; with `editor` and `live`, staff may change the knowledge from Slack
    (`live` then also answers and matches unless `answerer` / `matcher` are given)."""
    settings = slack_settings(base, api_url=fake.url, database=tmp_path / "desk.sqlite3", **changes)
    store = DeskStore(url=settings.storage.effective_database_url)
    executor = TrackingExecutor()
    logger = logging.getLogger("kakehashi.slack.test")
    client = make_client(settings)
    outbox = Outbox(store=store, client=client, logger=logger, poll_s=0.2).start()
    app = build_app(
        settings=settings,
        answerer=answerer,  # type: ignore[arg-type]
        matcher=matcher,  # type: ignore[arg-type]
        store=store,
        catalog=catalog,
        logger=logger,
        listener_executor=executor,
        client=client,
        editor=editor,  # type: ignore[arg-type]
        live=live,  # type: ignore[arg-type]
        outbox=outbox,
    )
    server = start_http(app, host="127.0.0.1", port=0)
    driver = SlackDriver(server.url, signing_secret=SIGNING_SECRET, response_url=fake.response_url)
    return Rig(
        fake=fake,
        driver=driver,
        store=store,
        settings=settings,
        app=app,
        server=server,
        executor=executor,
        outbox=outbox,
    )


def record_calls(fake: FakeSlack, name: str) -> None:
    """With KAKEHASHI_SLACK_CALLS_DIR set, the test's Web API calls as the Block Kit preview tool reads them
    (../shared/tools/blockkit_preview/preview.py CALLS.json OUT/): what the users of that journey saw."""
    if not CALLS_DIR:
        return
    folder = CALLS_DIR
    calls = [{"method": c.method, "args": c.args} for c in fake.calls]
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.json").write_text(json.dumps(calls, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.fixture
def rig(
    standin_seed_settings: Settings,
    fake_slack: FakeSlack,
    tmp_path: Path,
    slack_answerer: Answerer,
    slack_matcher: Matcher,
    slack_catalog: SourceCatalog,
    request: pytest.FixtureRequest,
) -> Iterator[Rig]:
    made = make_rig(
        base=standin_seed_settings,
        fake=fake_slack,
        tmp_path=tmp_path,
        answerer=slack_answerer,
        matcher=slack_matcher,
        catalog=slack_catalog,
    )
    yield made
    made.close()
    record_calls(fake_slack, request.node.name)


# --- what a user does in Slack: the message lands in Slack's history, then the event is sent ------


def user_event(
    fake: FakeSlack,
    text: str,
    *,
    channel: str = "C0GENERAL",
    user: str = "U0ASKER",
    thread_ts: str | None = None,
    mention: bool = False,
    channel_type: str = "channel",
) -> dict[str, Any]:
    """Post `text` as a user (into the fake's history); the event Slack sends the app for it."""
    body = f"<@{BOT_USER_ID}> {text}" if mention else text
    ts = fake.add_message(channel, text=body, user=user, thread_ts=thread_ts)
    event: dict[str, Any] = {
        "type": "app_mention" if mention else "message",
        "user": user,
        "text": body,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if not mention:
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def user_says(
    rig: Rig,
    text: str,
    *,
    channel: str = "C0GENERAL",
    user: str = "U0ASKER",
    thread_ts: str | None = None,
    mention: bool = False,
    channel_type: str = "channel",
    event_id: str | None = None,
    retry_num: int | None = None,
) -> tuple[str, Reply]:
    """Post `text` as a user (into the fake's history) and deliver the matching signed event.
    Returns (ts, reply) where reply is the app's HTTP response to the event."""
    event = user_event(
        rig.fake, text, channel=channel, user=user, thread_ts=thread_ts, mention=mention, channel_type=channel_type
    )
    return event["ts"], rig.driver.event(event, event_id=event_id, retry_num=retry_num)


def answered(rig: Rig, question: str) -> tuple[str, dict[str, Any]]:
    """`question` asked with a mention and answered in its thread: (thread ts, the bot's message as Slack
    shows it)."""
    root, _ = user_says(rig, question, mention=True)
    rig.fake.wait_for("chat.postMessage")
    rig.settle()
    return root, next(m for m in rig.fake.thread("C0GENERAL", root) if m.bot_id).to_slack()


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button `action_id` in a message's blocks (a message as Slack shows it, or a call's args):
    in an actions block, a section's accessory, or Slack's feedback buttons."""
    for block in message["blocks"]:
        for element in [*block.get("elements", []), *([block["accessory"]] if block.get("accessory") else [])]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} in the message")


def feedback_value(message: dict[str, Any], which: str) -> str:
    """The value Slack sends when 👍 (`positive`) or 👎 (`negative`) is clicked on a message."""
    return str(button(message, "kk_feedback")[f"{which}_button"]["value"])


def posted_text(call: object) -> str:
    """Everything a user sees in a posted message: its blocks and text, as one string."""
    args = call.args  # type: ignore[attr-defined]
    return json.dumps(args.get("blocks") or [], ensure_ascii=False) + "\n" + str(args.get("text") or "")
