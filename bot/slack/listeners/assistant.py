"""Threads in the bot's DM (bolt's Assistant): the assistant_view surface of workspaces that still have it
(assistant_thread_started: greeting and suggested prompts; a thread title), and, under agent messaging
too, every reply in a DM thread: a status while we work, the answer streamed where the workspace
allows, or the message relayed when a supporter has taken the thread's consultation."""

from __future__ import annotations

from slack_bolt import App, Assistant, BoltContext, Say, SayStream, SetStatus, SetSuggestedPrompts, SetTitle
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.answers.answering import answer_and_post, plain_question
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import report_failure, slack_error
from bot.slack.handoff.relay import relayed
from bot.slack.home import suggested_prompts
from bot.slack.locale import user_language
from bot.slack.text import shorten
from bot.store import StoreError
from prompts.messages import t
from retrieval.language import detect_language


def register(app: App, deps: Deps) -> None:
    assistant = Assistant(logger=deps.logger)

    @assistant.thread_started
    def start(say: Say, set_suggested_prompts: SetSuggestedPrompts, payload: JSON, client: WebClient) -> None:
        try:
            language = user_language(deps, client, (payload.get("assistant_thread") or {}).get("user_id") or "")
            say(t("slack_greeting", language))
            set_suggested_prompts(prompts=suggested_prompts(language), title=t("slack_prompts_title", language))
        except Exception as exc:  # noqa: BLE001 - the Slack edge
            thread = payload.get("assistant_thread") or {}
            place = (
                Place(channel=thread["channel_id"], thread_ts=thread.get("thread_ts"))
                if thread.get("channel_id")
                else None
            )
            report_failure(deps.logger, client, what="assistant thread start", error=exc, place=place)

    @assistant.user_message
    def on_message(
        payload: JSON,
        client: WebClient,
        context: BoltContext,
        set_status: SetStatus,
        set_title: SetTitle,
        say_stream: SayStream,
    ) -> None:
        place = Place(
            channel=payload["channel"],
            thread_ts=payload["thread_ts"],
            user_id=payload.get("user"),
            team_id=context.team_id,
        )
        if relayed(deps, client, payload, bot_user_id=context.bot_user_id):
            return
        question = plain_question(payload.get("text") or "", bot_user_id=context.bot_user_id)
        language = detect_language(question) if question else "ja"
        try:
            marked = deps.store.is_bot_thread(place.channel, payload["thread_ts"])
            first = not marked
        except StoreError as exc:  # the database is down: answer anyway, as a follow-up (no new title)
            deps.logger.warning("cannot tell whether %s is a new thread: %s", payload["thread_ts"], exc)
            marked = first = False
        try:
            if first and question:
                set_title(shorten(question, 60))
            set_status(status=t("slack_status", language))
        except SlackApiError as exc:  # cosmetic: answer anyway
            deps.logger.info("assistant status/title failed: %s", slack_error(exc))
        answer_and_post(
            deps,
            client,
            raw_text=payload.get("text") or "",
            place=place,
            surface="assistant",
            bot_user_id=context.bot_user_id,
            message_ts=payload.get("ts"),
            thread_context=not first,
            start_stream=say_stream,
            thread_marked=marked,
        )

    app.assistant(assistant)
