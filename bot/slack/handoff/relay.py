"""Once a supporter takes a consultation, the founder and the supporter talk through the bot: what the
founder writes in their thread (a DM, the agent pane or a channel the supporter may not be in) reaches the
card's thread in the supporters' channel, pinging the assignee; what the assignee writes in the card's
thread reaches the founder's thread. The founder was told so when the consultation was taken."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import post
from bot.slack.text import escape_mrkdwn, slack_to_plain
from bot.store import StoreError
from prompts.messages import t

RELAY_CHARS = 3500


def _said(event: JSON, *, bot_user_id: str | None, language: str) -> str:
    """The message as safe text: Slack markup made plain, then escaped (no @channel travels)."""
    text = escape_mrkdwn(slack_to_plain(str(event.get("text") or ""), bot_user_id=bot_user_id))[:RELAY_CHARS]
    files = event.get("files") or []
    if files:
        text = (text + "\n" if text else "") + t("slack_relay_files", language, n=len(files))
    return text


def from_asker(deps: Deps, client: WebClient, event: JSON, *, bot_user_id: str | None) -> bool:
    """The founder wrote in a thread they handed off: pass it to the card's thread. True if relayed."""
    thread_ts = event.get("thread_ts")
    if not thread_ts:
        return False
    consultation = deps.store.consultation_of_thread(str(event["channel"]), str(thread_ts))
    if consultation is None or event.get("user") != consultation.asker_user_id:
        return False
    if not (consultation.card_channel_id and consultation.card_ts):
        return False
    if consultation.status != "taken" and not consultation.consent_to_share:
        return False  # not yet told their thread reaches a supporter, and did not agree to share it
    ping = f"<@{consultation.assignee_user_id}> " if consultation.status == "taken" else ""
    text = t(
        "slack_relay_from_asker",
        "ja",
        ping=ping,
        user=consultation.asker_user_id,
        text=_said(event, bot_user_id=bot_user_id, language="ja"),
    )
    post(
        client,
        Place(channel=consultation.card_channel_id, thread_ts=consultation.card_ts),
        text=text,
        logger=deps.logger,
        dm_fallback=False,
    )
    return True


def from_supporter(deps: Deps, client: WebClient, event: JSON, *, bot_user_id: str | None) -> bool:
    """The assignee wrote in the card's thread: pass it to the founder's thread. True if relayed."""
    channel, thread_ts = str(event["channel"]), event.get("thread_ts")
    if not thread_ts or channel != deps.settings.slack.supporters_channel:
        return False
    consultation = deps.store.consultation_of_card(channel, str(thread_ts))
    if consultation is None or consultation.status != "taken" or event.get("user") != consultation.assignee_user_id:
        return False
    language = consultation.language
    text = t(
        "slack_relay_from_supporter",
        language,
        user=event.get("user"),
        text=_said(event, bot_user_id=bot_user_id, language=language),
    )
    post(
        client,
        Place(
            channel=consultation.asker_channel_id or consultation.asker_user_id,
            thread_ts=consultation.asker_thread_ts,
            user_id=consultation.asker_user_id,
        ),
        text=text,
        logger=deps.logger,
    )
    return True


def relayed(deps: Deps, client: WebClient, event: JSON, *, bot_user_id: str | None) -> bool:
    """A message between a founder and the supporter handling their consultation; passed on, not answered."""
    if not event.get("thread_ts") or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
        return False
    try:
        return from_supporter(deps, client, event, bot_user_id=bot_user_id) or from_asker(
            deps, client, event, bot_user_id=bot_user_id
        )
    except StoreError as exc:
        deps.logger.warning(
            "cannot tell whether %s/%s is a handed-off thread: %s", event.get("channel"), event.get("thread_ts"), exc
        )
        return False
