"""Socket Mode: the app connects out (apps.connections.open, then a WebSocket) and handles the same
events and slash commands it handles over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from bot.slack.server import connect_socket_mode
from tests.fakeslack import BOT_USER_ID, TEAM_ID
from tests.slack_fixtures import Rig, posted_text

if TYPE_CHECKING:
    from tests.fakesocket import FakeSocketMode

fakesocket = pytest.importorskip("tests.fakesocket", reason="needs the websockets package")


@pytest.fixture
def socket_mode(rig: Rig) -> Iterator[FakeSocketMode]:
    server = fakesocket.FakeSocketMode().start()
    rig.fake.socket_url = server.url
    handler = connect_socket_mode(rig.app, app_token="xapp-1-test")
    yield server
    handler.close()
    server.stop()


def test_events_and_commands_arrive_over_socket_mode(rig: Rig, socket_mode: FakeSocketMode) -> None:
    opened = rig.fake.wait_for("apps.connections.open")[0]
    assert opened.token == "xapp-1-test"
    ts = rig.fake.add_message(
        "C0GENERAL", text=f"<@{BOT_USER_ID}> MEDISOではどのような相談ができますか？", user="U0ASKER"
    )
    envelope = socket_mode.send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": "Ev0SOCKET",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": "U0ASKER",
                "channel": "C0GENERAL",
                "ts": ts,
                "event_ts": ts,
                "text": f"<@{BOT_USER_ID}> MEDISOではどのような相談ができますか？",
            },
        },
    )
    socket_mode.wait_ack(envelope)
    post = rig.fake.wait_for("chat.postMessage")[0]
    assert post.args["thread_ts"] == ts and "MEDISO" in posted_text(post)

    command = socket_mode.send(
        "slash_commands",
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": "C0GENERAL",
            "user_id": "U0ASKER",
            "command": "/kakehashi",
            "text": "help",
            "response_url": rig.fake.response_url + "commands/1",
            "trigger_id": "trigger.socket",
        },
    )
    ack = socket_mode.wait_ack(command)
    assert "/kakehashi ask" in json.dumps(ack.get("payload"), ensure_ascii=False)
    rig.settle()
    assert len(rig.store.answers()) == 1
