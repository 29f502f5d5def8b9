"""Answers reach the user even through a Slack outage: each is kept in the desk database's outbox before it
is posted, and what Slack refuses for now (429, 5xx, no connection) is posted again by a worker thread,
with backoff, once Slack is back; once, even with several processes sharing the database.

The listener makes one attempt at once (the usual case: the answer is out in the same moment) while
holding the row under a lease; a failure puts the row back in the queue. The worker claims due rows the
same way, so two processes never post the same row at the same time, and a process that dies while
posting leaves a lease that runs out: whoever takes the row over first looks in the thread for the
answer (its buttons carry the answer id) before posting it again. Nothing here sleeps in a listener
thread: a long Retry-After fails the call at once (see ShortRateLimitRetryHandler) and the row waits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.slack.blockkit import JSON
from bot.slack.deps import Place
from bot.slack.edge import new_reference, post, slack_error
from bot.slack.errors import SlackError
from bot.store import DeskStore, StoreError, retried

LEASE = dt.timedelta(seconds=90)  # longer than a Web API call can take (30 s timeout, one retry)
GIVE_UP_AFTER = dt.timedelta(hours=24)
BACKOFF_S = (1, 2, 4, 8, 15, 30)
POLL_S = 1.0
# A 429 asking for a longer wait than this is not slept on in the calling thread.
MAX_INLINE_RETRY_AFTER_S = 2
_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 only when Slack asks for a short wait. A 30 s Retry-After used to put every listener
    thread to sleep, so a question asked after Slack recovered waited for the sleepers; now the call fails
    at once and the outbox (or the caller's fallback) carries on."""

    def __init__(self, *, max_retry_count: int = 3, max_wait_s: float = MAX_INLINE_RETRY_AFTER_S) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        return _retry_after(response.headers) <= self.max_wait_s


def _retry_after(headers: Mapping[str, str | list[str]] | None) -> float:
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return float(value)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Retryable(SlackError):
    """Slack did not take the message for now; try again at `at` (naive UTC)."""

    def __init__(self, message: str, *, at: dt.datetime) -> None:
        super().__init__(message)
        self.at = at


def _classify(exc: BaseException, attempts: int) -> Retryable | None:
    """A Retryable for outages (429 with its Retry-After, 5xx, no connection); None for a refusal that
    retrying cannot change (an unknown channel, invalid blocks)."""
    backoff = dt.timedelta(seconds=BACKOFF_S[min(max(attempts - 1, 0), len(BACKOFF_S) - 1)])
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        if status == 429:
            wait = _retry_after(getattr(exc.response, "headers", {}))
            return Retryable(f"429 ratelimited (Retry-After {wait:.0f}s)", at=_now() + dt.timedelta(seconds=wait))
        if status >= 500 or slack_error(exc) in _RETRYABLE_ERRORS:
            return Retryable(f"HTTP {status} {slack_error(exc)}", at=_now() + backoff)
        return None
    if isinstance(exc, URLError | OSError | TimeoutError):
        return Retryable(f"{type(exc).__name__}: {exc}", at=_now() + backoff)
    return None


class Outbox:
    """The outbox of one serving process: `send` from listeners, a worker thread for the rest."""

    def __init__(self, *, store: DeskStore, client: WebClient, logger: logging.Logger, poll_s: float = POLL_S) -> None:
        self.store = store
        self.client = client
        self.logger = logger
        self.poll_s = poll_s
        self.worker_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backlog = False

    # --- the listener's side ------------------------------------------------------------------

    def send(
        self, place: Place, *, answer_id: str, text: str, blocks: list[JSON], record: JSON
    ) -> tuple[str, str] | None:
        """Post an answer now if Slack takes it, else keep it for the worker. Returns (channel, ts) when it
        was posted now (the caller records it), None when it waits in the outbox (the worker records it
        once posted). A refusal retrying cannot change is raised (SlackApiError), as a post would."""
        payload = {
            "place": {
                "channel": place.channel,
                "thread_ts": place.thread_ts,
                "user_id": place.user_id,
                "team_id": place.team_id,
            },
            "text": text,
            "blocks": blocks,
            "record": record,
        }
        try:
            row = self.store.enqueue(answer_id=answer_id, payload=payload, claimed_by=self.worker_id, lease=LEASE)
        except StoreError as exc:  # no outbox without the database: post as before, without the safety net
            self.logger.warning("outbox unavailable (%s); posting answer %s directly", exc, answer_id)
            return post(self.client, place, text=text, blocks=blocks, logger=self.logger)
        try:
            channel, ts = post(self.client, place, text=text, blocks=blocks, logger=self.logger)
        except Exception as exc:  # classified: an outage waits, anything else is raised
            retry = _classify(exc, 1)
            if retry is None:
                self._settle(self.store.fail_delivery, row.id, error=str(exc))
                raise
            self.logger.warning(
                "Slack did not take answer %s (%s); it waits in the outbox until %s UTC",
                answer_id,
                retry,
                f"{retry.at:%H:%M:%S}",
            )
            self._settle(self.store.retry_delivery, row.id, at=retry.at, error=str(retry))
            self._backlog = True
            return None
        self._settle(self.store.delivered, row.id, channel_id=channel, message_ts=ts)
        if self._backlog:
            self._wake.set()  # Slack took this one: the waiting answers may go now rather than at their time
        return channel, ts

    def _settle(self, write: Callable[..., None], delivery_id: int, **values: Any) -> None:
        """A state change of a row; the database being briefly away must not lose the answer's state."""
        try:
            retried(lambda: write(delivery_id, by=self.worker_id, **values), attempts=3, backoff_s=0.2)
        except StoreError as exc:
            self.logger.error("outbox row not updated [ref %s]: %s", new_reference(), exc)

    # --- the worker ---------------------------------------------------------------------------

    def start(self) -> Outbox:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kakehashi-outbox", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                expedite = self._wake.is_set()
                self._wake.clear()
                self.run_once(expedite=expedite)
            except StoreError as exc:
                self.logger.warning("outbox: desk database unavailable: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one row
                self.logger.error("outbox worker error [ref %s]: %s: %s", new_reference(), type(exc).__name__, exc)
            self._wake.wait(self.poll_s)

    def run_once(self, *, expedite: bool = False) -> int:
        """Deliver what is due; returns how many were posted. `expedite`: Slack just took a message, so
        rows waiting out a backoff are tried now."""
        due = self.store.due_deliveries(expedite=expedite)
        if expedite:
            self._backlog = False  # every pending row is tried now; a retry below sets it again
        posted = 0
        for delivery_id in due:
            claimed = self.store.claim_delivery(delivery_id, by=self.worker_id, lease=LEASE, expedite=expedite)
            if claimed is None:
                continue  # another process took it
            row, uncertain = claimed
            payload = row.payload
            place = Place(**payload["place"])
            if row.created_at < _now() - GIVE_UP_AFTER:
                self.logger.error(
                    "answer %s for %s/%s not delivered after %d attempts; given up [ref %s]: %s",
                    row.answer_id,
                    place.channel,
                    place.thread_ts,
                    row.attempts,
                    new_reference(),
                    row.last_error,
                )
                self._settle(self.store.fail_delivery, delivery_id, error="gave up")
                continue
            try:
                found = self._already_posted(place, row.answer_id) if uncertain else None
                channel, ts = found or post(
                    self.client, place, text=payload["text"], blocks=payload["blocks"], logger=self.logger
                )
            except Exception as exc:  # noqa: BLE001 - classified: an outage waits, anything else fails the row
                retry = _classify(exc, row.attempts)
                if retry is None:
                    self.logger.error(
                        "Slack refused answer %s for %s [ref %s]: %s",
                        row.answer_id,
                        place.channel,
                        new_reference(),
                        exc,
                    )
                    self._settle(self.store.fail_delivery, delivery_id, error=str(exc))
                    continue
                self._settle(self.store.retry_delivery, delivery_id, at=retry.at, error=str(retry))
                self._backlog = True
                if "429" in str(retry):
                    break  # Slack asked us to wait: the other rows would be refused as well
                continue
            self._settle(self.store.delivered, delivery_id, channel_id=channel, message_ts=ts)
            self._record(row.answer_id, payload, place, channel, ts)
            self.logger.info("delivered answer %s from the outbox after %d attempts", row.answer_id, row.attempts)
            posted += 1
        return posted

    def _already_posted(self, place: Place, answer_id: str) -> tuple[str, str] | None:
        """After a lease ran out mid-post: the answer, if Slack has it already (its buttons name its id)."""
        if not place.thread_ts:
            return None
        try:
            response = self.client.conversations_replies(channel=place.channel, ts=place.thread_ts, limit=200)
        except SlackApiError as exc:
            if _classify(exc, 1) is not None:
                raise
            return None
        for message in response.get("messages") or []:
            if message.get("bot_id") and answer_id in json.dumps(message.get("blocks") or []):
                return place.channel, str(message["ts"])
        return None

    def _record(self, answer_id: str, payload: JSON, place: Place, channel: str, ts: str) -> None:
        fields = dict(payload["record"])
        thread_ts = place.thread_ts if place.thread_ts and channel == place.channel else ts
        try:
            retried(
                lambda: self.store.record_answer(
                    answer_id=answer_id, channel_id=channel, message_ts=ts, thread_ts=thread_ts, **fields
                ),
                attempts=3,
                backoff_s=0.5,
            )
        except StoreError as exc:
            self.logger.error(
                "answer %s was delivered to %s/%s but not recorded [ref %s]: %s",
                answer_id,
                channel,
                ts,
                new_reference(),
                exc,
            )


def send_answer(
    outbox: Outbox | None,
    client: WebClient,
    place: Place,
    *,
    answer_id: str,
    text: str,
    blocks: list[JSON],
    record: JSON,
    logger: logging.Logger,
) -> tuple[str, str] | None:
    """What answering calls in place of `post`: through the outbox when there is one."""
    if outbox is None:
        return post(client, place, text=text, blocks=blocks, logger=logger)
    return outbox.send(place, answer_id=answer_id, text=text, blocks=blocks, record=record)
