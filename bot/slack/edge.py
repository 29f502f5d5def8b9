"""The Slack edge: the one place that catches broadly. A failure is logged with a reference id
and the user is told something useful with that id; nothing fails silently."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blockkit import JSON, Block, section
from bot.slack.deps import Deps, Place
from bot.slack.text import escape_mrkdwn
from prompts.messages import t

# Channels the bot cannot post in: fall back to the user's direct messages.
_CANNOT_POST = {
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "restricted_action",
    "cant_post_in_channel",
    "ekm_access_denied",
    "restricted_action_read_only_channel",
    "restricted_action_thread_only_channel",
}


def new_reference() -> str:
    """A short id the user can quote and we can find in the logs."""
    return "KK-" + secrets.token_hex(4).upper()


def slack_error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "unknown_error")
    except Exception:  # noqa: BLE001 - a malformed response object: the name is only for logs
        return "unknown_error"


def log_failure(logger: logging.Logger, *, what: str, error: BaseException) -> str:
    """Log the failure, with its traceback, under a new reference id; returns the id to tell the user."""
    reference = new_reference()
    logger.error(
        "%s failed [ref %s]: %s: %s",
        what,
        reference,
        type(error).__name__,
        error,
        exc_info=(type(error), error, error.__traceback__),
    )
    return reference


def report_failure(
    logger: logging.Logger,
    client: WebClient,
    *,
    what: str,
    error: BaseException,
    place: Place | None,
    language: str = "ja",
) -> str:
    """Log the failure with a new reference id and tell the user in their thread (or by DM)."""
    reference = log_failure(logger, what=what, error=error)
    if place is not None:
        try:
            post(
                client,
                place,
                text=t("slack_apology", language, ref=reference),
                blocks=[section(t("slack_apology", language, ref=escape_mrkdwn(reference)))],
                logger=logger,
            )
        except Exception as exc:  # noqa: BLE001 - the apology itself failed: the log line above is what remains
            logger.error("could not tell the user about %s [ref %s]: %s", what, reference, exc)
    return reference


def post(
    client: WebClient,
    place: Place,
    *,
    text: str,
    blocks: list[Block] | None = None,
    logger: logging.Logger | None = None,
    dm_fallback: bool = True,
) -> tuple[str, str]:
    """chat.postMessage to the place's thread; where the bot may not post, to the user's DM instead.
    Returns (channel, ts) of the message that was posted."""
    try:
        response = client.chat_postMessage(
            channel=place.channel,
            thread_ts=place.thread_ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as exc:
        if not (dm_fallback and place.user_id and slack_error(exc) in _CANNOT_POST):
            raise
        if logger:
            logger.info("cannot post in %s (%s); sending to the user's DM", place.channel, slack_error(exc))
        response = client.chat_postMessage(
            channel=place.user_id, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
    return str(response["channel"]), str(response["ts"])


def ephemeral(
    client: WebClient,
    *,
    channel: str | None,
    user: str,
    text: str,
    thread_ts: str | None = None,
    logger: logging.Logger,
) -> None:
    """A note only the user sees; a failure is logged, since the main action already happened."""
    if not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except SlackApiError as exc:
        logger.warning("chat.postEphemeral to %s failed: %s", channel, slack_error(exc))


def origin_of(body: JSON) -> tuple[str | None, str | None]:
    """(channel, thread) of the message a button was clicked on; (None, None) on the App Home."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}
    thread_ts = message.get("thread_ts") or message.get("ts") or (body.get("container") or {}).get("message_ts")
    return channel, thread_ts


def not_saved(
    deps: Deps,
    client: WebClient,
    *,
    what: str,
    error: Exception,
    user: str,
    channel: str | None,
    thread_ts: str | None = None,
    language: str = "ja",
) -> str:
    """A click or form the database could not record: logged with a reference, and the user is
    asked to try again (ephemeral where they clicked; by DM from the App Home)."""
    reference = new_reference()
    deps.logger.error("%s could not be saved [ref %s]: %s", what, reference, error)
    text = t("slack_not_saved", language, ref=reference)
    if channel:
        ephemeral(client, channel=channel, user=user, text=text, thread_ts=thread_ts, logger=deps.logger)
    else:
        try:
            post(client, Place(channel=user, user_id=user), text=text, logger=deps.logger)
        except SlackApiError as exc:
            deps.logger.error("could not tell %s [ref %s]: %s", user, reference, slack_error(exc))
    return reference


def guarded(deps: Deps, what: str, work: Callable[[WebClient, JSON, Respond], None]) -> Callable[..., None]:
    """A button listener: acknowledged at once, `work` run after; a failure is reported in the place the
    button was clicked (the thread, else the clicker's DM) with a reference."""

    def listener(ack: Ack, body: JSON, client: WebClient, respond: Respond) -> None:
        ack()
        try:
            work(client, body, respond)
        except Exception as exc:  # noqa: BLE001 - the Slack edge
            channel, thread_ts = origin_of(body)
            user = body["user"]["id"]
            place = Place(channel=channel or user, thread_ts=thread_ts if channel else None, user_id=user)
            report_failure(deps.logger, client, what=what, error=exc, place=place)

    listener.__name__ = f"on_{what.replace(' ', '_')}"
    return listener
