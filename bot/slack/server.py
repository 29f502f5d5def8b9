"""Serving the app: Slack's HTTP requests at /slack/events (a threaded WSGI server around bolt's
WSGI adapter), or Socket Mode."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
log = logging.getLogger("kakehashi.slack.server")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def wsgi_app(app: App) -> Callable[..., Iterable[bytes]]:
    """Slack's events, commands and interactivity at /slack/events; GET /healthz for probes."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        return slack(environ, start_response)

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
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def start_http(app: App, *, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve in a background thread (port 0 picks a free one); stop() ends it."""
    server = make_server(host, port, wsgi_app(app), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kakehashi-http",
                              daemon=True)
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
