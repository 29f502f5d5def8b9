"""Two real `kakehashi serve --http` processes behind one Slack app, as two hosts would run them: the same
Chroma server, the same desk database and the same (shared) knowledge folder, each with its own data dir
and so its own lexical index. A consultation taken through one is taken for the other, a knowledge change
made with `kakehashi kb add` is answered by both, and an event delivered to both is answered once.

The desk database is PostgreSQL when KAKEHASHI_TEST_POSTGRES_URL names a server (as in CI), else one
SQLite file both processes open."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.store import DeskStore
from core.settings import Settings
from knowledge.journal import HEAD_FILE, HISTORY_DIR
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from tests.chroma_server import ChromaServer, free_port
from tests.conftest import REPO_ROOT, kakehashi, kakehashi_env, run_kakehashi, stop_processes, wait_until_healthy
from tests.db_fixtures import POSTGRES_URL, fresh_postgres_database
from tests.fakeslack import TOKEN, FakeSlack
from tests.kbfiles import ANSWER_TEXT_JA, NEW_ID, answer_yaml, program_yaml
from tests.slack_fixtures import SIGNING_SECRET, STAFF, SUPPORTERS, button, posted_text, user_event
from tests.slackdriver import SlackDriver, sign

QUESTION = "ほしぞら創薬加速パートナーシップ事業の補助上限はいくら？"
FACT = "2億円"


@dataclass
class Serve:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    driver: SlackDriver
    port: int

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def shared_database() -> Iterator[str]:
    if POSTGRES_URL:
        with fresh_postgres_database() as url:
            yield url
    else:
        yield ""  # the test makes an SQLite file in its tmp_path


@pytest.fixture
def deployment(
    chroma_server: ChromaServer,
    small_knowledge_dir: Path,
    tmp_path: Path,
    embedder: Embedder,
    fake_slack: FakeSlack,
    shared_database: str,
) -> Iterator[tuple[dict[str, str], Serve, Serve]]:
    """The shared pieces, the server collection already filled (by this process, with the session's
    embedder: no serve process embeds anything at start), and the two bots up."""
    collection = f"two-hosts-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    seeder = chroma_server.settings(
        Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "seeder"), collection=collection
    )
    ingest(seeder, open_index(seeder, embedder=embedder))
    database = shared_database or f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    shared = kakehashi_env(
        KAKEHASHI_KNOWLEDGE_DIR=str(small_knowledge_dir),
        KAKEHASHI_CHROMA_COLLECTION=collection,
        KAKEHASHI_CHROMA_TIMEOUT_S="5",
        KAKEHASHI_DATABASE_URL=database,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.url,
        KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS,
        KAKEHASHI_SLACK_STAFF_USER_IDS=STAFF,
        **chroma_server.env(),
    )
    bots = []
    for name in ("a", "b"):
        port = free_port()
        log = tmp_path / f"serve-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                kakehashi("serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
                cwd=REPO_ROOT,
                env={**shared, "KAKEHASHI_DATA_DIR": str(tmp_path / name)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        driver = SlackDriver(
            f"http://127.0.0.1:{port}/slack/events", signing_secret=SIGNING_SECRET, response_url=fake_slack.response_url
        )
        bots.append(Serve(name=name, process=process, log=log, driver=driver, port=port))
    try:
        for bot in bots:
            wait_until_healthy(bot.process, bot.port, bot.log, timeout=120)
        yield shared, bots[0], bots[1]
    finally:
        stop_processes(*(bot.process for bot in bots))


def _thread_reply(fake: FakeSlack, event: dict[str, Any], *, timeout: float = 60) -> Any:
    return fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == event["ts"], timeout=timeout)[0]


def _ask(bot: Serve, fake: FakeSlack, channel: str, question: str = QUESTION) -> str:
    """`/kakehashi ask QUESTION` in `channel`, through `bot`; the private answer it sent the asker."""

    def answer(call: Any) -> bool:
        return bool(call.args.get("replace_original"))

    before = len([c for c in fake.calls_to("response_url") if answer(c)])
    assert bot.driver.command(f"ask {question}", channel=channel).status == 200
    return posted_text(fake.wait_for("response_url", answer, count=before + 1, timeout=60)[before])


def _wait_in_log(bot: Serve, pattern: str, *, timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, bot.output())
        if found:
            return found
        assert time.monotonic() < deadline, f"{pattern!r} not in bot {bot.name}'s log:\n{bot.output()[-3000:]}"
        time.sleep(0.1)


def test_two_bots_share_consultations_knowledge_and_event_dedupe(
    deployment: tuple[dict[str, str], Serve, Serve], fake_slack: FakeSlack, tmp_path: Path, small_knowledge_dir: Path
) -> None:
    shared, a, b = deployment
    for bot in (a, b):  # started against the filled collection: tokenized their own lexical index, embedded 0
        assert "indexed" not in bot.output(), bot.output()

    # (c) The same event delivered to both (as Slack's retry could land on the other host): one answer.
    event = user_event(fake_slack, "MEDISOではどのような相談ができますか？", mention=True)
    replies: dict[str, int] = {}
    senders = [
        threading.Thread(
            target=lambda bot=bot: replies.__setitem__(bot.name, bot.driver.event(event, event_id="Ev0TWOHOSTS").status)
        )
        for bot in (a, b)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    assert replies == {"a": 200, "b": 200}
    answer = _thread_reply(fake_slack, event)
    skipped = [bot for bot in (a, b) if re.search(r"skipping event Ev0TWOHOSTS", bot.output())]
    if not skipped:  # the loser may still be checking: it logs its decision
        deadline = time.monotonic() + 15
        while not skipped and time.monotonic() < deadline:
            time.sleep(0.1)
            skipped = [bot for bot in (a, b) if "skipping event Ev0TWOHOSTS" in bot.output()]
    assert len(skipped) == 1, (a.output()[-2000:], b.output()[-2000:])
    time.sleep(1.0)  # time for a second answer, were there one
    assert [c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == event["ts"]] == [answer]

    # (a) A consultation handed off and taken through A is already taken when B gets a second "take".
    root = event["ts"]
    message = next(m for m in fake_slack.thread("C0GENERAL", root) if m.bot_id).to_slack()
    handoff = button(message, "kk_handoff")
    a.driver.click(action_id="kk_handoff", value=handoff["value"], user="U0ASKER", channel="C0GENERAL", message=message)
    view = fake_slack.wait_for("views.open")[0].args["view"]
    assert (
        a.driver.submit(
            view,
            {
                "topic": {"value": {"type": "plain_text_input", "value": "申請書の書き方"}},
                "urgency": {"value": {"type": "radio_buttons", "selected_option": {"value": "high"}}},
                "consent": {"value": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
            },
            user="U0ASKER",
        ).status
        == 200
    )
    # The asker hears "handed off" once the card is posted and linked to the consultation.
    fake_slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("thread_ts") == root and "K-0001" in str(c.args.get("text")),
        timeout=30,
    )
    card_ts = fake_slack.messages[SUPPORTERS][0].ts
    card = fake_slack.message(SUPPORTERS, card_ts).to_slack()
    take = button(card, "kk_take")
    a.driver.click(action_id="kk_take", value=take["value"], user="U0SUPPORTER", channel=SUPPORTERS, message=card)
    updated = fake_slack.wait_for("chat.update", lambda c: c.args["ts"] == card_ts, timeout=30)[0]
    assert "担当: <@U0SUPPORTER>" in posted_text(updated)
    b.driver.click(action_id="kk_take", value=take["value"], user="U0LATE", channel=SUPPORTERS, message=card)
    late = fake_slack.wait_for("chat.postEphemeral", lambda c: c.args["user"] == "U0LATE", timeout=30)[0].args
    assert "<@U0SUPPORTER>" in late["text"] and "担当しています" in late["text"]
    assert len(fake_slack.calls_to("chat.update")) == 1  # B changed nothing

    # (b) A knowledge change made with the CLI on a third host is answered by both bots.
    for bot, channel in ((a, "C0ALPHA"), (b, "C0BRAVO")):
        before = _ask(bot, fake_slack, channel)
        assert FACT not in before
    record = tmp_path / "hoshizora.yaml"
    record.write_text(program_yaml(), encoding="utf-8")
    added = run_kakehashi("kb", "add", str(record), env={**shared, "KAKEHASHI_DATA_DIR": str(tmp_path / "cli")})
    changed_at = time.monotonic()
    assert added.returncode == 0, added.stderr
    assert "embedded 1 passages" in added.stdout  # the CLI embedded the one new passage, into the server
    committed = (small_knowledge_dir / HISTORY_DIR / HEAD_FILE).stat().st_mtime  # the change, before its indexing
    seen_after: dict[str, float] = {}
    seen_after_commit: dict[str, float] = {}
    for bot, channel in ((b, "C0BRAVO"), (a, "C0ALPHA")):
        deadline = time.monotonic() + 30
        while True:
            text = _ask(bot, fake_slack, channel)
            if FACT in text:  # the new record's figure (cards list a source only where the text cites it)
                seen_after[bot.name] = time.monotonic() - changed_at
                seen_after_commit[bot.name] = time.time() - committed
                break
            assert time.monotonic() < deadline, f"bot {bot.name} never answered from the change: {text[:500]}"
            time.sleep(0.5)
    for bot in (a, b):  # each indexed the change itself: one record tokenized, nothing embedded
        refreshed = _wait_in_log(
            bot,
            r"knowledge refreshed to generation (.+?): (\d+) added, (\d+) updated, "
            r"(\d+) removed, (\d+) embedded in ([\d.]+)s",
        )
        assert refreshed.group(2, 3, 4, 5) == ("1", "0", "0", "0"), refreshed.group(0)
        print(
            f"bot {bot.name}: {refreshed.group(0)}; answered from the change {seen_after[bot.name]:.2f}s after "
            f"`kb add` returned, {seen_after_commit[bot.name]:.2f}s after it committed the change"
        )

    # (d) A change made through one bot (a staff member's `/kakehashi kb retire`, sent to A) reaches the other.
    assert a.driver.command(f"kb retire {NEW_ID}", user=STAFF, channel="C0ALPHA").status == 200
    # B answers without it at once (A deleted its vector from the shared server), and drops it from its own
    # lexical index at its next check.
    deadline = time.monotonic() + 30
    while True:
        text = _ask(b, fake_slack, "C0BRAVO")
        if FACT not in text and re.search(r"refreshed to generation .+?: 0 added, 0 updated, 1 removed", b.output()):
            break
        assert time.monotonic() < deadline, f"bot b did not take the retirement: {text[:300]}\n{b.output()[-2000:]}"
        time.sleep(0.5)

    # (e) A curated answer added with the CLI is given by both bots to a paraphrase (issue 15).
    curated = tmp_path / "mediso-free.yaml"
    curated.write_text(answer_yaml(as_of=dt.date.today().isoformat()), encoding="utf-8")
    added = run_kakehashi("kb", "add", str(curated), env={**shared, "KAKEHASHI_DATA_DIR": str(tmp_path / "cli")})
    assert added.returncode == 0, added.stderr
    for bot, channel in ((a, "C0ALPHA"), (b, "C0BRAVO")):
        deadline = time.monotonic() + 30
        while ANSWER_TEXT_JA not in (text := _ask(bot, fake_slack, channel, "MEDISOに相談するのにお金は必要？")):
            assert time.monotonic() < deadline, f"bot {bot.name} never gave the curated answer: {text[:500]}"
            time.sleep(0.5)

    for bot in (a, b):
        output = bot.output()
        assert TOKEN not in output and SIGNING_SECRET not in output
        assert "Traceback" not in output and " ERROR " not in output, output[-3000:]


OUTAGE_QUESTIONS = [
    "MEDISOではどのような相談ができますか？",
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "AMEDの認定VCにはどのような会社がありますか？",
    "InnoHubとは何ですか？",
]


def test_two_bots_share_the_outbox_and_the_replay_records(
    deployment: tuple[dict[str, str], Serve, Serve], fake_slack: FakeSlack
) -> None:
    """Slack fails (500) while questions arrive at both bots, and one signed slash command reaches both
    (a replay landing on the other host). Once Slack is back, every answer is delivered, each once,
    whichever process's worker takes it; the command is answered once."""
    shared, a, b = deployment
    fake_slack.fail("chat.postMessage", status=500, times=10**6)
    events = [user_event(fake_slack, q, mention=True) for q in OUTAGE_QUESTIONS]
    for i, event in enumerate(events):
        assert (a, b)[i % 2].driver.event(event).status == 200
    form = {
        "token": "unused",
        "team_id": "T0KAKEHASHI",
        "team_domain": "kakehashi-test",
        "channel_id": "C0CMD",
        "channel_name": "cmd",
        "user_id": "U0ASKER",
        "user_name": "u0asker",
        "command": "/kakehashi",
        "text": f"ask {OUTAGE_QUESTIONS[0]}",
        "api_app_id": "A0KAKEHASHI",
        "is_enterprise_install": "false",
        "response_url": fake_slack.response_url + "commands/twice",
        "trigger_id": "trigger.twice",
    }
    body = urlencode(form).encode()
    stamp = int(time.time())
    signature = sign(SIGNING_SECRET, str(stamp), body)
    for bot in (a, b):
        assert (
            bot.driver.post(
                body, content_type="application/x-www-form-urlencoded", timestamp=stamp, signature=signature
            ).status
            == 200
        )
    roots = [e["ts"] for e in events]

    def delivered() -> dict[str, int]:
        return {root: sum(1 for m in fake_slack.thread("C0GENERAL", root) if m.bot_id) for root in roots}

    def command_answers() -> int:
        """The slash command's answer is private to the asker: sent through its response_url, not the outbox."""
        return sum(
            1
            for c in fake_slack.calls_to("response_url")
            if c.args["path"].endswith("commands/twice") and c.args.get("replace_original")
        )

    deadline = time.monotonic() + 60
    store = DeskStore(url=shared["KAKEHASHI_DATABASE_URL"])
    try:
        while len(store.deliveries()) < len(roots):  # every answer computed and kept, none out
            assert time.monotonic() < deadline, (store.deliveries(), a.output()[-2000:], b.output()[-2000:])
            time.sleep(0.2)
        time.sleep(1.0)
        assert set(delivered().values()) == {0}
        fake_slack.recover("chat.postMessage")
        back = time.monotonic()
        while 0 in delivered().values():
            assert time.monotonic() < back + 60, delivered()
            time.sleep(0.2)
        took = time.monotonic() - back
        time.sleep(2.0)  # time for a second copy, were there one
        assert delivered() == {root: 1 for root in roots} and command_answers() == 1
        assert not any(m.bot_id for m in fake_slack.messages.get("C0CMD", []))  # nothing public in the channel
        rows = store.deliveries()
        assert [r.status for r in rows] == ["sent"] * len(roots)
        assert len(store.answers()) == len(roots) + 1
        by = {r.claimed_by.split(":")[1] for r in rows if r.claimed_by}
        print(
            f"{len(rows)} answers delivered {took:.1f}s after Slack came back, by processes {sorted(by)} "
            f"(serve pids {a.process.pid}, {b.process.pid})"
        )
    finally:
        store.close()
    assert "dropped a replayed request" in a.output() + b.output()
    for bot in (a, b):
        assert "Traceback" not in bot.output(), bot.output()[-3000:]
