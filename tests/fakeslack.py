"""A local stand-in for Slack's Web API: a real HTTP server on 127.0.0.1 that records every call
and answers like Slack, with failures to inject (429 with Retry-After, ok:false errors).

It keeps channels' messages, so conversations.replies returns what the bot posted (and what a
test says users wrote), and streams (chat.startStream/appendStream/stopStream) become messages.
It keeps user groups (usergroups.users.list) and uploaded files: files.info describes them and
their url_private_download serves the bytes to a request with the bot token in the Authorization
header; without it, like Slack, an HTML sign-in page with status 200.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEAM_ID = "T0KAKEHASHI"
BOT_USER_ID = "U0KAKEBOT"
BOT_ID = "B0KAKEBOT"
TOKEN = "xoxb-test-token"
SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    token: str | None


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    times: int = 1


@dataclass
class Message:
    channel: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    user: str | None = None
    bot_id: str | None = None
    streaming: bool = False

    def to_slack(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.blocks:
            data["blocks"] = self.blocks
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
        return data


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "application/json" in content_type:
        return json.loads(raw)
    args: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    for key in ("blocks", "view", "prompts", "chunks", "metadata", "attachments"):
        if isinstance(args.get(key), str) and args[key][:1] in "[{":
            args[key] = json.loads(args[key])
    return args


class FakeSlack:
    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.failures: dict[str, list[Failure]] = {}
        self.messages: dict[str, list[Message]] = {}
        self.socket_url: str | None = None  # apps.connections.open hands this WebSocket URL out
        self.usergroups: dict[str, list[str]] = {}  # usergroups.users.list: group id -> member ids
        self.locales: dict[str, str] = {}  # users.info's locale (include_locale) per user; ja-JP otherwise
        self.channel_members: dict[str, list[str]] = {}  # conversations.members: channel id -> member ids
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}  # file id -> (file object, bytes)
        self._holds: dict[str, threading.Event] = {}  # method -> the gate its next call waits on
        self._ts = itertools.count(1)
        self._lock = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/api/"):
                    # A response_url (slash commands, interactivity): Slack answers "ok" in plain text.
                    owner._record("response_url", {"path": self.path, **json.loads(raw or b"{}")}, None)
                    self._send(200, "text/plain", b"ok")
                    return
                method = self.path.rsplit("/", 1)[-1].split("?")[0]
                args = _decode(raw, self.headers.get("Content-Type") or "")
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ").strip() or args.get("token")
                self._answer(*owner._handle(method, args, token))

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                auth = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or None
                if parts.path.startswith("/files-pri/"):
                    self._send(*owner._download(parts.path, auth))
                    return
                # Web API methods that slack_sdk calls with GET (files.info, usergroups.users.list, ...)
                args = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                method = parts.path.rsplit("/", 1)[-1]
                self._answer(*owner._handle(method, args, auth or args.get("token")))

            def _answer(self, status: int, headers: dict[str, str], payload: Any) -> None:
                self._send(status, "application/json; charset=utf-8", json.dumps(payload).encode(), headers)

            def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    # --- what tests use -----------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail: an HTTP status (429 with Retry-After) or ok:false."""
        with self._lock:
            self.failures.setdefault(method, []).append(
                Failure(status=status, error=error, retry_after=retry_after, times=times)
            )

    def hold(self, method: str) -> threading.Event:
        """The next call of `method` is received (and recorded) but answered only once the returned
        event is set, as when Slack is slow; at most 30 s."""
        gate = threading.Event()
        with self._lock:
            self._holds[method] = gate
        return gate

    def add_message(
        self, channel: str, *, text: str, user: str, thread_ts: str | None = None, ts: str | None = None
    ) -> str:
        """A message a person wrote (so conversations.replies returns it); its ts."""
        with self._lock:
            ts = ts or self._next_ts()
            self.messages.setdefault(channel, []).append(
                Message(channel=channel, ts=ts, text=text, thread_ts=thread_ts, user=user)
            )
        return ts

    def add_file(
        self, name: str, data: bytes, *, user: str, mimetype: str = "application/octet-stream", size: int | None = None
    ) -> dict[str, Any]:
        """A file a user uploaded; returns the file object as Slack puts it in the message event's `files`
        (`size` may be given to claim another size than the bytes have, as a hostile client could)."""
        with self._lock:
            file_id = f"F{next(self._ts):09d}"
        base = f"http://127.0.0.1:{self._server.server_address[1]}/files-pri/{TEAM_ID}-{file_id}"
        file = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "",
            "user": user,
            "user_team": TEAM_ID,
            "editable": False,
            "size": len(data) if size is None else size,
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "public_url_shared": False,
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://kakehashi-test.slack.com/files/{user}/{file_id}/{name}",
        }
        with self._lock:
            self.files[file_id] = (file, data)
        return dict(file)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self, method: str, predicate: Callable[[Call], bool] | None = None, *, count: int = 1, timeout: float = 20.0
    ) -> list[Call]:
        """Block until `count` calls of `method` (matching `predicate`) have arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.method == method and (predicate is None or predicate(c))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"timed out waiting for {count}x {method}; calls so far: {seen}")
                self._lock.wait(remaining)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        with self._lock:
            return sorted(
                (m for m in self.messages.get(channel, []) if m.ts == thread_ts or m.thread_ts == thread_ts),
                key=lambda m: float(m.ts),
            )

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return next(m for m in self.messages.get(channel, []) if m.ts == ts)

    # --- Slack's side -------------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._ts)}.{next(self._ts):06d}"

    def _record(self, method: str, args: dict[str, Any], token: str | None) -> None:
        with self._lock:
            self.calls.append(Call(method=method, args=args, at=time.monotonic(), token=token))
            self._lock.notify_all()

    @property
    def response_url(self) -> str:
        """Where slash commands and actions may send `respond()` messages."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/response/"

    def _handle(self, method: str, args: dict[str, Any], token: str | None) -> tuple[int, dict[str, str], Any]:
        self._record(method, args, token)
        with self._lock:
            gate = self._holds.pop(method, None)
        if gate is not None:
            gate.wait(30)
        with self._lock:
            queue = self.failures.get(method) or []
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
                if failure.status == 429:
                    return 429, {"Retry-After": str(failure.retry_after or 1)}, {"ok": False, "error": "ratelimited"}
                if failure.status != 200:
                    return failure.status, {}, {"ok": False, "error": "internal_error"}
                return 200, {}, {"ok": False, "error": failure.error or "fatal_error"}
            if method == "apps.connections.open":  # the one method called with the app-level token
                if not (token or "").startswith("xapp-") or not self.socket_url:
                    return 200, {}, {"ok": False, "error": "invalid_auth"}
                return 200, {}, {"ok": True, "url": self.socket_url}
            if token != self.token:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {}, {"ok": True}
            return 200, {}, handler(args)

    def _channel(self, channel: str) -> str:
        # chat.postMessage to a user ID posts in the app's DM with that user.
        return "D" + channel[1:] if channel.startswith(("U", "W")) else channel

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://kakehashi-test.slack.com/",
            "team": "Kakehashi Test",
            "user": "kakehashi",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args.get("channel")))
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=str(args.get("text") or ""),
            blocks=args.get("blocks") or [],
            thread_ts=args.get("thread_ts"),
            user=BOT_USER_ID,
            bot_id=BOT_ID,
        )
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_slack()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        message = next((m for m in self.messages.get(channel, []) if m.ts == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = str(args.get("text") or message.text)
        if "blocks" in args:
            message.blocks = args.get("blocks") or []
        return {"ok": True, "channel": channel, "ts": ts, "text": message.text}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = str(args.get("message_ts", "")).replace(".", "")
        return {
            "ok": True,
            "channel": args.get("channel"),
            "permalink": f"https://kakehashi-test.slack.com/archives/{args.get('channel')}/p{ts}",
        }

    def _chat_startStream(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        channel = str(args.get("channel"))
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=args.get("thread_ts"),
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            streaming=True,
            text=_chunk_text(args),
        )
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": message.ts}

    def _chat_appendStream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming(args)
        if message is None:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message.text += _chunk_text(args)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _chat_stopStream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming(args)
        if message is None:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message.text += _chunk_text(args)
        message.blocks = args.get("blocks") or []
        message.streaming = False
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": message.to_slack()}

    def _streaming(self, args: dict[str, Any]) -> Message | None:
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        return next((m for m in self.messages.get(channel, []) if m.ts == ts and m.streaming), None)

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            top = [m for m in self.messages.get(str(args.get("channel")), []) if not m.thread_ts or m.thread_ts == m.ts]
        top.sort(key=lambda m: float(m.ts), reverse=True)
        limit = int(args.get("limit") or 100)
        return {"ok": True, "messages": [m.to_slack() for m in top[:limit]], "has_more": len(top) > limit}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self.thread(str(args.get("channel")), str(args.get("ts")))
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": [m.to_slack() for m in thread], "has_more": False}

    def _download(self, path: str, token: str | None) -> tuple[int, str, bytes]:
        self._record("file_download", {"path": path}, token)
        file_id = path.split("/")[2].rsplit("-", 1)[-1]
        with self._lock:
            found = self.files.get(file_id)
        if token != self.token:
            return 200, "text/html; charset=utf-8", SIGN_IN_PAGE  # what Slack serves without a valid token
        if found is None:
            return 404, "text/plain", b"Not Found"
        file, data = found
        return 200, str(file.get("mimetype") or "application/octet-stream"), data

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self.files.get(str(args.get("file")))
        if found is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": dict(found[0]), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup"))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        if channel not in self.channel_members:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "members": list(self.channel_members[channel]), "response_metadata": {"next_cursor": ""}}

    def recover(self, method: str) -> None:
        """Failures still queued for `method` are dropped: Slack is back."""
        with self._lock:
            self.failures.pop(method, None)

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user"))
        found = {
            "id": user,
            "team_id": TEAM_ID,
            "name": user.lower(),
            "real_name": f"User {user}",
            "is_bot": user == BOT_USER_ID,
            "profile": {"display_name": user.lower()},
        }
        if str(args.get("include_locale")).lower() in ("true", "1"):
            found["locale"] = self.locales.get(user, "ja-JP")
        return {"ok": True, "user": found}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": {"id": args.get("view_id") or f"V{next(self._ts)}", **(args.get("view") or {})}}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}


def _chunk_text(args: dict[str, Any]) -> str:
    text = str(args.get("markdown_text") or "")
    for chunk in args.get("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text") or "")
    return text
