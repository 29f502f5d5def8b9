"""A local server that speaks the OpenAI chat-completions HTTP API, for the LLM path.

It is the edge we do not own: our chain talks to it over real HTTP through
LangChain's OpenAI client, exactly as it would talk to a provider.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = Callable[[dict[str, Any]], tuple[int, Any]]


class Drip:
    """A reply sent a few bytes at a time, `pause` seconds apart: a server that is alive but never done."""

    def __init__(self, payload: bytes, *, pause: float, chunk: int = 8) -> None:
        self.payload, self.pause, self.chunk = payload, pause, chunk


def completion(content: str, model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def no_choices() -> dict[str, Any]:
    """A 200 with a JSON body that is not a completion."""
    body = completion("")
    del body["choices"]
    return body


class FakeOpenAI:
    """`reply(body)` gives (status, payload): a dict is sent as JSON, bytes as they are, a Drip slowly.
    Replies may block on `released` (a hung server); leaving the `with` block frees them."""

    def __init__(self, reply: Reply, *, content_type: str = "application/json") -> None:
        self.reply = reply
        self.content_type = content_type
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.released = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.requests.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, payload = 404, {"error": {"message": "not found"}}
                else:
                    status, payload = owner.reply(body)
                drip = payload if isinstance(payload, Drip) else None
                data = drip.payload if drip else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", owner.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if drip is None:
                        self.wfile.write(data)
                        return
                    for start in range(0, len(data), drip.chunk):
                        self.wfile.write(data[start : start + drip.chunk])
                        self.wfile.flush()
                        if owner.released.wait(drip.pause):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def hang(self, seconds: float) -> Reply:
        """A reply that takes `seconds` (or until the server closes), then answers."""

        def reply(body: dict[str, Any]) -> tuple[int, Any]:
            self.released.wait(seconds)
            return 200, completion("too late")

        return reply

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
