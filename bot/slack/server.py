"""Serving the app: Slack's HTTP requests at /slack/events (a threaded WSGI server around bolt's
WSGI adapter), or Socket Mode."""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_sdk.signature import SignatureVerifier

from bot.slack.blockkit import JSON
from bot.slack.edge import new_reference

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
log = logging.getLogger("kakehashi.slack.server")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # The standard library's backlog of 5 reset most of a burst of 50 requests before the app saw them
    # (benchmarks/bench_slack_ack.py); Slack does not retry slash commands.
    request_queue_size = socket.SOMAXCONN


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


MAX_BODY_BYTES = 1024 * 1024
DISCARD_LIMIT_BYTES = 32 * 1024 * 1024
_OBJECTS = ("event", "user", "team", "channel", "enterprise", "view", "container", "message")
_LISTS_OF_OBJECTS = ("actions", "authorizations")


def _read_body(environ: JSON) -> bytes | None:
    """The request body, put back for bolt to read again; None when it cannot be read."""
    try:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    except (KeyError, ValueError, OSError):
        return None
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    return bytes(raw)


def _signed(verifier: SignatureVerifier | None, environ: JSON, raw: bytes) -> bool:
    """Slack's signature over the raw bytes, checked before anything reads them: an unsigned body is
    never parsed (a deeply nested one overflowed the JSON parser and logged a traceback per request)."""
    if verifier is None:
        return True  # no signing secret configured: bolt refuses every request itself
    try:
        return verifier.is_valid(
            body=raw,
            timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
            signature=environ.get("HTTP_X_SLACK_SIGNATURE"),
        )
    except (ValueError, TypeError):  # a timestamp that is not a number
        return False


def _unreadable(environ: JSON, raw: bytes) -> bool:
    """Whether bolt cannot even read this POST: it raises while parsing (a body that is not UTF-8 JSON
    or a form, fields of the wrong type, nesting deeper than the parser's stack), and the server would
    answer 500 with a traceback."""
    request = WsgiHttpRequest(environ)
    try:
        body = BoltRequest(body=raw.decode("utf-8"), query=request.query_string, headers=request.get_headers()).body
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
        return True  # ValueError covers JSON and UTF-8
    # Slack's objects are objects: bolt's own middleware reads them with .get() and would fail.
    return any(name in body and not isinstance(body[name], dict) for name in _OBJECTS) or any(
        name in body and not (isinstance(body[name], list) and all(isinstance(i, dict) for i in body[name]))
        for name in _LISTS_OF_OBJECTS
    )


def _discard(environ: JSON, length: int) -> None:
    """Read and drop a refused body (up to a bound) so the client gets the 413 rather than a reset
    connection while it is still sending; without parsing, this costs milliseconds."""
    remaining = min(length, DISCARD_LIMIT_BYTES)
    while remaining > 0:
        chunk = environ["wsgi.input"].read(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)


def _reply(start_response: Callable[..., Any], status: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [status.split(" ", 1)[1].encode()]


def wsgi_app(app: App, *, signing_secret: str | None = None) -> Callable[..., Iterable[bytes]]:
    """Slack's events, commands and interactivity at /slack/events; GET /healthz for probes.
    `signing_secret` defaults to the one the app was built with."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)
    # bolt keeps the secret it verifies with privately; the edge checks with the same one, earlier.
    secret = signing_secret if signing_secret is not None else str(getattr(app, "_signing_secret", "") or "")
    verifier = SignatureVerifier(secret) if secret.strip() else None

    def application(environ: JSON, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if environ.get("REQUEST_METHOD") == "POST" and not 0 <= length <= MAX_BODY_BYTES:
            # Slack's payloads (a full modal submission included) are tens of kilobytes; reading and
            # parsing megabytes from anyone who can reach the port is only a way to tie the bot up.
            log.info("refused a request of %s bytes", environ.get("CONTENT_LENGTH"))
            _discard(environ, length)
            start_response("413 Content Too Large", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Content Too Large"]
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == EVENTS_PATH:
            raw = _read_body(environ)
            if raw is None:
                return _reply(start_response, "400 Bad Request")
            if not _signed(verifier, environ, raw):
                log.info("refused a request without a valid Slack signature from %s", environ.get("REMOTE_ADDR"))
                return _reply(start_response, "401 Unauthorized")
            if _unreadable(environ, raw):
                log.info("refused a signed request whose body is not a Slack payload")
                return _reply(start_response, "400 Bad Request")
        try:
            return slack(environ, start_response)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
            # Fields of the wrong type in a signed payload (an "event" that is not an object) make bolt's
            # own dispatch raise: the client's input, logged in a line (no traceback), answered 400.
            log.warning(
                "bolt could not handle a request [ref %s]: %s: %s", new_reference(), type(exc).__name__, str(exc)[:200]
            )
            return _reply(start_response, "400 Bad Request")
        except Exception as exc:  # bolt answers only after handling: nothing was sent yet
            log.error(
                "bolt could not handle a request [ref %s]: %s: %s",
                new_reference(),
                type(exc).__name__,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            return _reply(start_response, "500 Internal Server Error")

    return application


@dataclass
class RunningServer:
    server: WSGIServer
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def start_http(app: App, *, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve in a background thread (port 0 picks a free one); stop() ends it."""
    server = make_server(host, port, wsgi_app(app), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kakehashi-http", daemon=True
    )
    thread.start()
    return RunningServer(server=server, thread=thread)


def serve_http(app: App, *, host: str, port: int, on_ready: Callable[[RunningServer], None] | None = None) -> None:
    """Serve in the foreground until interrupted."""
    server = make_server(host, port, wsgi_app(app), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    running = RunningServer(server=server)
    if on_ready is not None:
        on_ready(running)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def connect_socket_mode(app: App, *, app_token: str) -> SocketModeHandler:
    """Open the Socket Mode connection (apps.connections.open through the app's Web API client, then a
    WebSocket out to Slack) and return at once; close() ends it."""
    handler = SocketModeHandler(app, app_token)
    handler.connect()
    return handler


def serve_socket_mode(app: App, *, app_token: str) -> None:
    """Connect out to Slack over a WebSocket (no public URL needed); runs until interrupted."""
    handler = connect_socket_mode(app, app_token=app_token)
    try:
        threading.Event().wait()
    finally:
        handler.close()
