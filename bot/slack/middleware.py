"""Global middleware at the edge: each Events API delivery handled once, bots never answered."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse

from bot.slack.edge import new_reference
from bot.store import DeskStore, StoreError

# Message subtypes a person produces; edits, deletions, joins and bot posts are not questions.
PERSON_SUBTYPES = (None, "thread_broadcast", "file_share")
# bolt's global middleware: the request, the response so far, and `next` (the rest of the chain).
Middleware = Callable[[BoltRequest, BoltResponse, Callable[[], BoltResponse]], BoltResponse]


def dedupe_events(*, store: DeskStore, logger: logging.Logger) -> Middleware:
    """Slack re-sends an event it thinks we missed (X-Slack-Retry-Num); answer each event_id once,
    across processes that share the database. With the database down it fails open: answering
    a retry twice is better than answering nothing."""

    def claim(event_id: str) -> bool:
        try:
            return store.claim_event(event_id)
        except StoreError as exc:
            logger.error(
                "cannot check event %s for duplicates; handling it anyway [ref %s]: %s", event_id, new_reference(), exc
            )
            return True

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        body = req.body or {}
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not claim(str(event_id)):
            retry = (req.headers.get("x-slack-retry-num") or ["?"])[0]
            logger.info("skipping event %s: already handled (retry %s)", event_id, retry)
            return BoltResponse(status=200, body="")
        return next()

    return middleware


def ignore_bots(*, logger: logging.Logger) -> Middleware:
    """Messages from any bot (ours included) and non-person message subtypes are acknowledged and dropped."""

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        event = (req.body or {}).get("event") or {}
        if event.get("type") in ("message", "app_mention") and (
            event.get("bot_id") or event.get("bot_profile") or event.get("subtype") not in PERSON_SUBTYPES
        ):
            logger.debug("ignoring %s/%s from a bot or system", event.get("type"), event.get("subtype"))
            return BoltResponse(status=200, body="")
        return next()

    return middleware
