"""The Slack edge: the one place that catches broadly. A failure is logged with a reference id
and the user is told something useful with that id; nothing fails silently."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import apology_blocks
from bot.slack.deps import Place
from bot.slack.messages import t

# Channels the bot cannot post in: fall back to the user's direct messages.
_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cant_post_in_channel",
                "ekm_access_denied", "restricted_action_read_only_channel", "restricted_action_thread_only_channel"}


def new_reference() -> str:
    """A short id the user can quote and we can find in the logs."""
    return "KK-" + secrets.token_hex(4).upper()


def slack_error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "unknown_error")
    except Exception:  # a malformed response object: the name is only for logs
        return "unknown_error"


def log_failure(logger: logging.Logger, *, what: str, error: BaseException) -> str:
    """Log the failure, with its traceback, under a new reference id; returns the id to tell the user."""
    reference = new_reference()
    logger.error("%s failed [ref %s]: %s: %s", what, reference, type(error).__name__, error,
                 exc_info=(type(error), error, error.__traceback__))
    return reference


def report_failure(logger: logging.Logger, client: WebClient, *, what: str, error: BaseException,
                   place: Place | None, language: str = "ja") -> str:
    """Log the failure with a new reference id and tell the user in their thread (or by DM)."""
    reference = log_failure(logger, what=what, error=error)
    if place is not None:
        try:
            post(client, place, text=t("apology", language, ref=reference),
                 blocks=apology_blocks(reference=reference, language=language), logger=logger)
        except Exception as exc:  # the apology itself failed: the log line above is what remains
            logger.error("could not tell the user about %s [ref %s]: %s", what, reference, exc)
    return reference


def post(client: WebClient, place: Place, *, text: str, blocks: list[dict[str, Any]] | None = None,
         logger: logging.Logger | None = None, dm_fallback: bool = True) -> tuple[str, str]:
    """chat.postMessage to the place's thread; where the bot may not post, to the user's DM instead.
    Returns (channel, ts) of the message that was posted."""
    try:
        response = client.chat_postMessage(channel=place.channel, thread_ts=place.thread_ts, text=text,
                                           blocks=blocks, unfurl_links=False, unfurl_media=False)
    except SlackApiError as exc:
        if not (dm_fallback and place.user_id and slack_error(exc) in _CANNOT_POST):
            raise
        if logger:
            logger.info("cannot post in %s (%s); sending to the user's DM", place.channel, slack_error(exc))
        response = client.chat_postMessage(channel=place.user_id, text=text, blocks=blocks, unfurl_links=False,
                                           unfurl_media=False)
    return str(response["channel"]), str(response["ts"])


def ephemeral(client: WebClient, *, channel: str | None, user: str, text: str, thread_ts: str | None = None,
              logger: logging.Logger) -> None:
    """A note only the user sees; a failure is logged, since the main action already happened."""
    if not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except SlackApiError as exc:
        logger.warning("chat.postEphemeral to %s failed: %s", channel, slack_error(exc))
