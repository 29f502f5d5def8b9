"""The real `kakehashi serve --http` as a subprocess, driven by signed requests, talking to the fake
Slack; and startup refusing missing settings with a clear message (in this process, tests/clirun.py: it stops
before it serves)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bot.cli import build_parser
from core.settings import Settings
from retrieval.embeddings import Embedder
from retrieval.index import SearchIndex
from tests.chroma_server import free_port
from tests.clirun import run_main
from tests.conftest import REPO_ROOT, kakehashi, kakehashi_env, stop_processes, wait_until_healthy
from tests.fakeslack import TOKEN, FakeSlack
from tests.slack_fixtures import SIGNING_SECRET, SUPPORTERS, user_event
from tests.slackdriver import SlackDriver


def _serve_registered() -> bool:
    return "serve" in build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr, operator]


pytestmark = pytest.mark.skipif(
    not _serve_registered(), reason="bot/cli.py does not register the serve subcommand (bot.cli_serve.register)"
)


def test_serve_http_answers_a_signed_mention(
    seed_settings: Settings,
    seed_index: SearchIndex,
    seed_data_for_subprocesses: Path,
    fake_slack: FakeSlack,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = kakehashi_env(
        KAKEHASHI_DATA_DIR=str(seed_data_for_subprocesses),
        KAKEHASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.url,
        KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            kakehashi("serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(process, port, log)
        driver = SlackDriver(
            f"http://127.0.0.1:{port}/slack/events", signing_secret=SIGNING_SECRET, response_url=fake_slack.response_url
        )
        event = user_event(fake_slack, "MEDISOではどのような相談ができますか？", mention=True)
        ts = event["ts"]
        assert driver.event(event).status == 200
        post = fake_slack.wait_for("chat.postMessage", timeout=60)[0]
        assert post.args["thread_ts"] == ts and "MEDISO" in str(post.args["blocks"])
        assert driver.event(event, signature="v0=" + "0" * 64).status == 401
        assert driver.command("help").status == 200
    finally:
        stop_processes(process)
    output = log.read_text()
    assert f"serving Slack as kakehashi in Kakehashi Test at http://127.0.0.1:{port}/slack/events" in output
    assert TOKEN not in output and SIGNING_SECRET not in output  # secrets never logged
    assert (tmp_path / "desk.db").exists()
    assert "WARNING" not in output and "ERROR" not in output


def test_serve_socket_mode_connects_out_and_answers(
    seed_settings: Settings,
    seed_index: SearchIndex,
    seed_data_for_subprocesses: Path,
    fake_slack: FakeSlack,
    tmp_path: Path,
) -> None:
    fakesocket = pytest.importorskip("tests.fakesocket")
    socket_mode = fakesocket.FakeSocketMode().start()
    fake_slack.socket_url = socket_mode.url
    env = kakehashi_env(
        KAKEHASHI_DATA_DIR=str(seed_data_for_subprocesses),
        KAKEHASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_APP_TOKEN="xapp-1-test",
        SLACK_API_URL=fake_slack.url,
        KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(kakehashi("serve"), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not socket_mode.connected.wait(0.3):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the app did not connect"
        event = user_event(fake_slack, "MEDISOではどのような相談ができますか？", mention=True)
        ts = event["ts"]
        envelope = socket_mode.send(
            "events_api",
            {"type": "event_callback", "team_id": "T0KAKEHASHI", "event_id": "Ev0SUBSOCKET", "event": event},
        )
        socket_mode.wait_ack(envelope)
        post = fake_slack.wait_for("chat.postMessage", timeout=60)[0]
        assert post.args["thread_ts"] == ts and "MEDISO" in str(post.args["blocks"])
    finally:
        stop_processes(process)
        socket_mode.stop()
    output = log.read_text()
    assert "connecting to Slack as kakehashi in Kakehashi Test over Socket Mode" in output
    assert "xapp-1-test" not in output and TOKEN not in output


def test_serve_refuses_to_start_without_its_settings(tmp_path: Path, standin_embedder: Embedder) -> None:
    env = {"KAKEHASHI_DATA_DIR": str(tmp_path), "SLACK_BOT_TOKEN": "not-a-bot-token"}
    http = run_main("serve", "--http", env=env, embedder=lambda settings: standin_embedder)
    assert http.returncode == 2
    assert "SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in http.stderr
    assert "SLACK_SIGNING_SECRET is not set" in http.stderr and "KAKEHASHI_SUPPORTERS_CHANNEL" in http.stderr
    assert "Traceback" not in http.stderr
    socket_mode = run_main(
        "serve",
        env={**env, "SLACK_BOT_TOKEN": "xoxb-1", "KAKEHASHI_SUPPORTERS_CHANNEL": "C0SUPPORT"},
        embedder=lambda settings: standin_embedder,
    )
    assert socket_mode.returncode == 2 and "SLACK_APP_TOKEN is not set" in socket_mode.stderr


def test_serve_stops_with_a_clear_message_when_slack_rejects_the_token(
    fake_slack: FakeSlack, tmp_path: Path, standin_embedder: Embedder
) -> None:
    env = {
        "KAKEHASHI_DATA_DIR": str(tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-revoked",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.url,
        "KAKEHASHI_SUPPORTERS_CHANNEL": SUPPORTERS,
    }
    result = run_main(
        "serve", "--http", "--port", str(free_port()), env=env, embedder=lambda settings: standin_embedder
    )
    assert result.returncode == 2
    assert "Slack rejected SLACK_BOT_TOKEN: invalid_auth" in result.stderr and "Traceback" not in result.stderr
    assert "xoxb-revoked" not in result.stderr
