"""The real `kakehashi serve --http` as a subprocess, driven by signed requests, talking to the fake
Slack; and startup refusing missing settings with a clear message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.cli import build_parser
from knowledge.settings import Settings
from retrieval.index import SearchIndex
from tests.fakeslack import BOT_USER_ID, TOKEN, FakeSlack
from tests.slack_fixtures import SIGNING_SECRET, SUPPORTERS
from tests.slackdriver import SlackDriver

REPO = Path(__file__).resolve().parents[1]


def _serve_registered() -> bool:
    return "serve" in build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]


pytestmark = pytest.mark.skipif(not _serve_registered(),
                                reason="bot/cli.py does not register the serve subcommand (bot.cli_serve.register)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAKEHASHI_", "SLACK_")) and k != "OPENAI_API_KEY"}
    return {**env, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def test_serve_http_answers_a_signed_mention(seed_settings: Settings, seed_index: SearchIndex,
                                             seed_data_for_subprocesses: Path,
                                             fake_slack: FakeSlack, tmp_path: Path) -> None:
    port = _free_port()
    env = _environment(
        KAKEHASHI_DATA_DIR=str(seed_data_for_subprocesses), KAKEHASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}",
        SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url,
        KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(_cli("serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        driver = SlackDriver(f"http://127.0.0.1:{port}/slack/events", signing_secret=SIGNING_SECRET,
                             response_url=fake_slack.response_url)
        ts = fake_slack.add_message("C0GENERAL", text=f"<@{BOT_USER_ID}> MEDISOではどのような相談ができますか？",
                                    user="U0ASKER")
        event = {"type": "app_mention", "user": "U0ASKER", "channel": "C0GENERAL", "ts": ts, "event_ts": ts,
                 "text": f"<@{BOT_USER_ID}> MEDISOではどのような相談ができますか？"}
        assert driver.event(event).status == 200
        post = fake_slack.wait_for("chat.postMessage", timeout=60)[0]
        assert post.args["thread_ts"] == ts and "サポーター" in str(post.args["blocks"])
        assert driver.event(event, signature="v0=" + "0" * 64).status == 401
        assert driver.command("help").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert f"serving Slack as kakehashi in Kakehashi Test at http://127.0.0.1:{port}/slack/events" in output
    assert TOKEN not in output and SIGNING_SECRET not in output  # secrets never logged
    assert (tmp_path / "desk.db").exists()
    assert "WARNING" not in output and "ERROR" not in output


def test_serve_socket_mode_connects_out_and_answers(seed_settings: Settings, seed_index: SearchIndex,
                                                    seed_data_for_subprocesses: Path,
                                                    fake_slack: FakeSlack, tmp_path: Path) -> None:
    fakesocket = pytest.importorskip("tests.fakesocket")
    socket_mode = fakesocket.FakeSocketMode().start()
    fake_slack.socket_url = socket_mode.url
    env = _environment(
        KAKEHASHI_DATA_DIR=str(seed_data_for_subprocesses), KAKEHASHI_DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}",
        SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN="xapp-1-test", SLACK_API_URL=fake_slack.url,
        KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(_cli("serve"), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not socket_mode.connected.wait(0.3):
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the app did not connect"
        text = f"<@{BOT_USER_ID}> MEDISOではどのような相談ができますか？"
        ts = fake_slack.add_message("C0GENERAL", text=text, user="U0ASKER")
        envelope = socket_mode.send("events_api", {
            "type": "event_callback", "team_id": "T0KAKEHASHI", "event_id": "Ev0SUBSOCKET",
            "event": {"type": "app_mention", "user": "U0ASKER", "channel": "C0GENERAL", "ts": ts, "event_ts": ts,
                      "text": text}})
        socket_mode.wait_ack(envelope)
        post = fake_slack.wait_for("chat.postMessage", timeout=60)[0]
        assert post.args["thread_ts"] == ts and "サポーター" in str(post.args["blocks"])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        socket_mode.stop()
    output = (tmp_path / "serve.log").read_text()
    assert "connecting to Slack as kakehashi in Kakehashi Test over Socket Mode" in output
    assert "xapp-1-test" not in output and TOKEN not in output


def test_serve_refuses_to_start_without_its_settings(tmp_path: Path) -> None:
    env = _environment(KAKEHASHI_DATA_DIR=str(tmp_path), SLACK_BOT_TOKEN="not-a-bot-token")
    http = subprocess.run(_cli("serve", "--http"), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert http.returncode == 2
    assert "SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in http.stderr
    assert "SLACK_SIGNING_SECRET is not set" in http.stderr and "KAKEHASHI_SUPPORTERS_CHANNEL" in http.stderr
    assert "Traceback" not in http.stderr
    socket_mode = subprocess.run(_cli("serve"), cwd=REPO, env={**env, "SLACK_BOT_TOKEN": "xoxb-1",
                                                                        "KAKEHASHI_SUPPORTERS_CHANNEL": "C0SUPPORT"},
                                 capture_output=True, text=True, timeout=60)
    assert socket_mode.returncode == 2 and "SLACK_APP_TOKEN is not set" in socket_mode.stderr


def test_serve_stops_with_a_clear_message_when_slack_rejects_the_token(fake_slack: FakeSlack,
                                                                      tmp_path: Path) -> None:
    env = _environment(KAKEHASHI_DATA_DIR=str(tmp_path), SLACK_BOT_TOKEN="xoxb-revoked",
                       SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url,
                       KAKEHASHI_SUPPORTERS_CHANNEL=SUPPORTERS)
    result = subprocess.run(_cli("serve", "--http", "--port", str(_free_port())), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Slack rejected SLACK_BOT_TOKEN: invalid_auth" in result.stderr and "Traceback" not in result.stderr
    assert "xoxb-revoked" not in result.stderr
