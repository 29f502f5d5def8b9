"""Events API: @mentions in channels, direct messages (Slack's agent messaging: each DM message is a
thread root, answered in its thread with a loading status), follow-ups in our threads, messages relayed
between a founder and the supporter who took their consultation, the App Home (its Messages tab greets
with suggested prompts), and documents staff upload for the knowledge base (bot/slack/uploads.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.chat_stream import ChatStream

from bot.slack.answers.answering import CONTEXT_MESSAGES, answer_and_post
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import post, slack_error
from bot.slack.handoff import relay
from bot.slack.home import publish_home, suggested_prompts
from bot.slack.kb import uploads
from bot.slack.locale import text_language, user_language
from bot.store import StoreError
from prompts.messages import t


def register(app: App, deps: Deps) -> None:
    @app.event("app_mention")
    def on_mention(event: JSON, client: WebClient, context: BoltContext) -> None:
        if uploads.is_upload(deps, event):
            return  # a document for the knowledge base: the message event for it adds it
        _seen(deps, client, event)
        try:
            answer_and_post(
                deps,
                client,
                raw_text=event.get("text") or "",
                place=_place(event, context),
                surface="mention",
                bot_user_id=context.bot_user_id,
                message_ts=event.get("ts"),
                thread_context=bool(event.get("thread_ts")),
            )
        finally:
            _unseen(deps, client, event)

    @app.event("message")
    def on_message(event: JSON, client: WebClient, context: BoltContext) -> None:
        kind = event.get("channel_type")
        if relay.relayed(deps, client, event, bot_user_id=context.bot_user_id):
            return
        if uploads.is_upload(deps, event):
            uploads.handle(deps, client, event)
            return
        if kind == "im" and not event.get("thread_ts"):
            place = _place(event, context)
            loading(deps, client, place, text=event.get("text") or "")
            answer_and_post(
                deps,
                client,
                raw_text=event.get("text") or "",
                place=place,
                surface="dm",
                bot_user_id=context.bot_user_id,
                message_ts=event.get("ts"),
                start_stream=dm_stream(client, place),
            )
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts or kind == "im":
            return  # a channel message not for us (mentions come as app_mention)
        if context.bot_user_id and f"<@{context.bot_user_id}>" in (event.get("text") or ""):
            return  # the app_mention event for the same message answers it
        if _answering_in(deps, client, event["channel"], thread_ts, bot_user_id=context.bot_user_id):
            # The thread is the bot's (the database says so; while it is down, Slack's copy does, and
            # marking it would fail too): no second round trip to mark it.
            answer_and_post(
                deps,
                client,
                raw_text=event.get("text") or "",
                place=_place(event, context),
                surface="thread",
                bot_user_id=context.bot_user_id,
                message_ts=event.get("ts"),
                thread_context=True,
                thread_marked=True,
            )

    @app.event("app_home_opened")
    def on_home(event: JSON, client: WebClient) -> None:
        tab = event.get("tab", "home")
        try:
            if tab == "messages":
                greet(deps, client, event)
            elif tab == "home":
                publish_home(deps, client, event["user"])
        except SlackApiError as exc:
            deps.logger.error("app_home_opened (%s) for %s failed: %s", tab, event.get("user"), slack_error(exc))

    @app.event("app_context_changed")
    def on_context(event: JSON) -> None:
        # What the user is looking at beside the agent pane; answers do not depend on it (yet).
        deps.logger.debug("app context changed: %s", (event.get("context") or {}).get("entities"))


def greet(deps: Deps, client: WebClient, event: JSON) -> None:
    """The DM's Messages tab opened (agent messaging): suggested prompts for the composer, and a greeting
    the first time only (an empty conversation), in the user's Slack language."""
    channel = event.get("channel") or event["user"]
    language = user_language(deps, client, event["user"])
    client.assistant_threads_setSuggestedPrompts(
        channel_id=channel, title=t("slack_prompts_title", language), prompts=suggested_prompts(language)
    )
    history = client.conversations_history(channel=channel, limit=1)
    if not history.get("messages"):
        post(
            client,
            Place(channel=channel, user_id=event["user"]),
            text=t("slack_greeting", language),
            logger=deps.logger,
        )


def _answering_in(deps: Deps, client: WebClient, channel: str, thread_ts: str, *, bot_user_id: str | None) -> bool:
    """Whether follow-ups in this thread are the bot's to answer: it has answered there and nobody
    took the thread over. While the desk database is down, Slack's own copy of the thread tells
    whether the bot posted in it (a hand-off cannot be seen then, so the bot answers)."""
    try:
        return deps.store.is_bot_thread(channel, thread_ts) and not deps.store.handed_off(channel, thread_ts)
    except StoreError as exc:
        deps.logger.warning(
            "desk database unavailable (%s); asking Slack whether %s/%s is the bot's thread", exc, channel, thread_ts
        )
    try:
        replies = client.conversations_replies(channel=channel, ts=thread_ts, limit=CONTEXT_MESSAGES)
    except SlackApiError as exc:
        deps.logger.error(
            "cannot tell whether %s/%s is the bot's thread (database down, conversations.replies "
            "failed: %s); the follow-up is not answered",
            channel,
            thread_ts,
            slack_error(exc),
        )
        return False
    return any(m.get("user") == bot_user_id and m.get("bot_id") for m in replies.get("messages") or [])


def _place(event: JSON, context: BoltContext) -> Place:
    return Place(
        channel=event["channel"],
        thread_ts=event.get("thread_ts") or event.get("ts"),
        user_id=event.get("user"),
        team_id=context.team_id,
    )


def loading(deps: Deps, client: WebClient, place: Place, *, text: str) -> None:
    """The loading sign under a DM message while the answer is being written (cleared by the reply)."""
    language = text_language(deps, client, place.user_id, text)
    try:
        client.assistant_threads_setStatus(
            channel_id=place.channel,
            thread_ts=str(place.thread_ts),
            status=t("slack_status", language),
            loading_messages=[t("slack_status", language), t("slack_status_more", language)],
        )
    except SlackApiError as exc:  # cosmetic: answer anyway
        deps.logger.info("assistant.threads.setStatus failed: %s", slack_error(exc))


def dm_stream(client: WebClient, place: Place) -> Callable[..., ChatStream]:
    """The answer streamed into the DM message's thread (chat.startStream and its successors)."""

    def start(**options: Any) -> ChatStream:
        return client.chat_stream(
            channel=place.channel,
            thread_ts=str(place.thread_ts),
            recipient_user_id=place.user_id,
            recipient_team_id=place.team_id,
            **options,
        )

    return start


def _unseen(deps: Deps, client: WebClient, event: JSON) -> None:
    """The question is answered: the 👀 goes."""
    try:
        client.reactions_remove(channel=event["channel"], timestamp=event["ts"], name="eyes")
    except SlackApiError as exc:
        deps.logger.info("reactions.remove failed: %s", slack_error(exc))


def _seen(deps: Deps, client: WebClient, event: JSON) -> None:
    """👀 on the question, so people in the channel see it is being looked at."""
    try:
        client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")
    except SlackApiError as exc:
        deps.logger.info("reactions.add failed: %s", slack_error(exc))
