"""Events API: @mentions in channels, direct messages, follow-ups in our threads, the App Home,
and documents staff upload for the knowledge base (bot/slack/uploads.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import uploads
from bot.slack.answering import CONTEXT_MESSAGES, answer_and_post
from bot.slack.deps import Deps, Place
from bot.slack.edge import slack_error
from bot.slack.handoff import publish_home
from bot.store import StoreError


def register(app: App, deps: Deps) -> None:
    @app.event("app_mention")
    def on_mention(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        if uploads.is_upload(deps, event):
            return  # a document for the knowledge base: the message event for it adds it
        _seen(deps, client, event)
        answer_and_post(deps, client, raw_text=event.get("text") or "", place=_place(event, context),
                        surface="mention", bot_user_id=context.bot_user_id, message_ts=event.get("ts"),
                        thread_context=bool(event.get("thread_ts")))

    @app.event("message")
    def on_message(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        kind = event.get("channel_type")
        if uploads.is_upload(deps, event):
            uploads.handle(deps, client, event)
            return
        if kind == "im" and not event.get("thread_ts"):
            answer_and_post(deps, client, raw_text=event.get("text") or "", place=_place(event, context),
                            surface="dm", bot_user_id=context.bot_user_id, message_ts=event.get("ts"))
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts or kind == "im":
            return  # a channel message not for us (mentions come as app_mention)
        if context.bot_user_id and f"<@{context.bot_user_id}>" in (event.get("text") or ""):
            return  # the app_mention event for the same message answers it
        if _answering_in(deps, client, event["channel"], thread_ts, bot_user_id=context.bot_user_id):
            # The thread is the bot's (the database says so; while it is down, Slack's copy does, and
            # marking it would fail too): no second round trip to mark it.
            answer_and_post(deps, client, raw_text=event.get("text") or "", place=_place(event, context),
                            surface="thread", bot_user_id=context.bot_user_id, message_ts=event.get("ts"),
                            thread_context=True, thread_marked=True)

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            try:
                publish_home(deps, client, event["user"])
            except SlackApiError as exc:
                deps.logger.error("views.publish for %s failed: %s", event.get("user"), slack_error(exc))


def _answering_in(deps: Deps, client: WebClient, channel: str, thread_ts: str, *, bot_user_id: str | None) -> bool:
    """Whether follow-ups in this thread are the bot's to answer: it has answered there and nobody
    took the thread over. While the desk database is down, Slack's own copy of the thread tells
    whether the bot posted in it (a hand-off cannot be seen then, so the bot answers)."""
    try:
        return deps.store.is_bot_thread(channel, thread_ts) and not deps.store.handed_off(channel, thread_ts)
    except StoreError as exc:
        deps.logger.warning("desk database unavailable (%s); asking Slack whether %s/%s is the bot's thread",
                            exc, channel, thread_ts)
    try:
        replies = client.conversations_replies(channel=channel, ts=thread_ts, limit=CONTEXT_MESSAGES)
    except SlackApiError as exc:
        deps.logger.error("cannot tell whether %s/%s is the bot's thread (database down, conversations.replies "
                          "failed: %s); the follow-up is not answered", channel, thread_ts, slack_error(exc))
        return False
    return any(m.get("user") == bot_user_id and m.get("bot_id") for m in replies.get("messages") or [])


def _place(event: dict[str, Any], context: BoltContext) -> Place:
    return Place(channel=event["channel"], thread_ts=event.get("thread_ts") or event.get("ts"),
                 user_id=event.get("user"), team_id=context.team_id)


def _seen(deps: Deps, client: WebClient, event: dict[str, Any]) -> None:
    """👀 on the question, so people in the channel see it is being looked at."""
    try:
        client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")
    except SlackApiError as exc:
        deps.logger.info("reactions.add failed: %s", slack_error(exc))
