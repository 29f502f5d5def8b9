"""Slack's Socket Mode side, locally: a WebSocket server on 127.0.0.1 that says hello, sends
envelopes (events, slash commands, interactivity) and collects the app's acknowledgements."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from websockets.sync.server import ServerConnection, serve

_ids = itertools.count(1)


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._connection: ServerConnection | None = None
        self._lock = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=test"

    def _handle(self, connection: ServerConnection) -> None:
        self._connection = connection
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake"},
                    "connection_info": {"app_id": "A0KAKEHASHI"},
                }
            )
        )
        self.connected.set()
        for message in connection:
            with self._lock:
                self.acks.append(json.loads(message))
                self._lock.notify_all()

    def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Deliver one envelope (kind: events_api, slash_commands, interactive); its envelope id."""
        assert self.connected.wait(20), "the app never connected"
        envelope_id = f"env-{next(_ids)}"
        assert self._connection is not None
        self._connection.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no acknowledgement of {envelope_id}; got {self.acks}")
                self._lock.wait(remaining)
