"""Drive the app as Slack does: signed Events API, slash-command and interactivity requests over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.fakeslack import BOT_USER_ID, TEAM_ID

_ids = itertools.count(1)


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]
    seconds: float

    def json(self) -> Any:
        """The body as JSON; a plain-text acknowledgement (Slack accepts both) as {"text": ...}."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            return {"text": self.body}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    def __init__(self, url: str, *, signing_secret: str, response_url: str, team_id: str = TEAM_ID) -> None:
        self.url = url
        self.response_url = response_url
        self.secret = signing_secret
        self.team_id = team_id

    def post(
        self,
        body: bytes,
        *,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature or sign(self.secret, stamp, body),
                **(headers or {}),
            },
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return Reply(response.status, text, dict(response.headers), time.perf_counter() - started)
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read().decode(), dict(exc.headers), time.perf_counter() - started)

    # --- Events API ---------------------------------------------------------------------------

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None, **post_kwargs: Any
    ) -> Reply:
        envelope = {
            "token": "unused-verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0KAKEHASHI",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": BOT_USER_ID, "is_bot": True}],
        }
        headers = dict(post_kwargs.pop("headers", None) or {})
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        body = json.dumps(envelope).encode()
        return self.post(body, content_type="application/json", headers=headers, **post_kwargs)

    # --- slash commands -----------------------------------------------------------------------

    def command(self, text: str, *, user: str = "U0ASKER", channel: str = "C0GENERAL", **post_kwargs: Any) -> Reply:
        form = {
            "token": "unused",
            "team_id": self.team_id,
            "team_domain": "kakehashi-test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/kakehashi",
            "text": text,
            "api_app_id": "A0KAKEHASHI",
            "is_enterprise_install": "false",
            "response_url": self.response_url + f"commands/{next(_ids)}",
            "trigger_id": f"trigger.{next(_ids)}",
        }
        return self.post(urlencode(form).encode(), content_type="application/x-www-form-urlencoded", **post_kwargs)

    # --- interactivity ------------------------------------------------------------------------

    def interact(self, payload: dict[str, Any], **post_kwargs: Any) -> Reply:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, content_type="application/x-www-form-urlencoded", **post_kwargs)

    def click(
        self,
        *,
        action_id: str,
        value: str,
        user: str,
        channel: str | None = None,
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        element: str = "button",
        ephemeral: bool = False,
    ) -> Reply:
        """A button click on a message (channel + message) or on the App Home (view); `element` is the
        element's type (feedback_buttons for Slack's 👍 / 👎). On an ephemeral message Slack sends no
        `message`, only the container."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A0KAKEHASHI",
            "team": {"id": self.team_id, "domain": "kakehashi-test"},
            "trigger_id": f"trigger.{next(_ids)}",
            "actions": [
                {
                    "type": element,
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if channel is not None:
            payload["channel"] = {"id": channel, "name": "channel"}
            payload["container"] = {
                "type": "message",
                "channel_id": channel,
                "message_ts": (message or {}).get("ts"),
                "is_ephemeral": ephemeral,
            }
            if not ephemeral:
                payload["message"] = message or {}
            payload["response_url"] = self.response_url + f"actions/{next(_ids)}"
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view.get("id", "VHOME")}
        return self.interact(payload)

    def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str) -> Reply:
        """Submit a modal the app opened (as views.open received it) with the given state values."""
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "kakehashi-test"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A0KAKEHASHI",
            "trigger_id": f"trigger.{next(_ids)}",
            "view": {**view, "id": "VMODAL", "state": {"values": values}, "hash": "h", "team_id": self.team_id},
        }
        return self.interact(payload)
