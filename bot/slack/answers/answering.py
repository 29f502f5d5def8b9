"""Questions in, cited answers out: the one path every surface (mention, DM, thread follow-up,
AI-app thread, slash command) takes, and the same for match requests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.chat_stream import ChatStream

from bot.slack.answers.blocks import answer_blocks, answer_fallback_text, answer_footer_blocks, citation_json
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import new_reference, post, report_failure, slack_error
from bot.slack.locale import text_language
from bot.slack.match.blocks import match_blocks, match_cards, match_fallback_text, profile_summary
from bot.slack.outbox import send_answer
from bot.slack.text import cut, escape_mrkdwn, shorten, slack_to_plain
from bot.store import DeskDatabaseUnavailableError, StoreError, new_answer_id, retried
from prompts.messages import t
from retrieval.answer import Answer, Turn
from retrieval.language import detect_language
from retrieval.profile import Profile

STREAM_BUFFER_CHARS = 120
CONTEXT_MESSAGES = 20
# An answer is recorded after it is posted; while the database is down, tried again after 0.5 s and 1 s.
RECORD_ATTEMPTS = 3
RECORD_BACKOFF_S = 0.5


def plain_question(raw: str, *, bot_user_id: str | None) -> str:
    return slack_to_plain(raw or "", bot_user_id=bot_user_id)


def thread_messages(client: WebClient, place: Place, *, deps: Deps) -> list[JSON]:
    """The thread so far (conversations.replies); an empty list if Slack will not give it."""
    if not place.thread_ts:
        return []
    try:
        response = client.conversations_replies(channel=place.channel, ts=place.thread_ts, limit=CONTEXT_MESSAGES)
    except SlackApiError as exc:
        deps.logger.warning("conversations.replies %s/%s failed: %s", place.channel, place.thread_ts, slack_error(exc))
        return []
    return list(response.get("messages") or [])


def previous_turns(messages: list[JSON], *, current_ts: str | None, bot_user_id: str | None) -> list[dict[str, str]]:
    """The thread's earlier turns, oldest first, as {"role": "user" | "assistant", "text": ...}: the one
    place a thread's history is gathered (for `Answerer.ask(question, history=...)` once it takes it)."""
    turns = []
    for message in messages:
        if message.get("ts") == current_ts or message.get("subtype") not in (None, "thread_broadcast"):
            continue
        mine = bool(message.get("bot_id")) or message.get("user") == bot_user_id
        text = plain_question(str(message.get("text") or ""), bot_user_id=bot_user_id)
        if text:
            turns.append({"role": "assistant" if mine else "user", "text": text})
    return turns


def as_history(turns: list[dict[str, str]]) -> list[Turn]:
    """The thread's turns as the answerer takes them: each question of the user's with the bot's reply to it."""
    history: list[Turn] = []
    for turn in turns:
        if turn["role"] == "user":
            history.append(Turn(question=turn["text"]))
        elif history and not history[-1].answer:
            history[-1] = Turn(question=history[-1].question, answer=turn["text"])
        else:
            history.append(Turn(question="", answer=turn["text"]))  # the bot spoke first (a greeting, a card)
    return history


def _markdown_safe(text: str) -> str:
    """Streamed text is markdown: keep Slack's control characters from acting, except the answer's own quote
    marks ("> " opening a line), which stay a blockquote."""
    return re.sub(r"(?m)^＞ ", "> ", text.replace("<", "＜").replace(">", "＞"))


def deliver_streamed(
    client: WebClient,
    start_stream: Callable[..., ChatStream],
    place: Place,
    *,
    answer: Answer,
    footer: list[JSON],
    full: list[JSON],
    deps: Deps,
    send: Callable[[], tuple[str, str] | None] | None = None,
) -> tuple[str, str] | None:
    """Stream the answer (chat.startStream/appendStream/stopStream) with the sources and buttons at the
    end; where the workspace does not allow streaming, post the whole message instead."""
    text = answer_fallback_text(answer)
    streamer: ChatStream | None = None
    try:
        streamer = start_stream(buffer_size=STREAM_BUFFER_CHARS)
        for line in answer.answer.split("\n"):
            streamer.append(markdown_text=_markdown_safe(line) + "\n")
        streamer.stop(blocks=footer)
        if streamer.ts:
            return place.channel, streamer.ts
        raise SlackApiError("stream gave no ts", {"ok": False, "error": "no_ts"})
    except SlackApiError as exc:
        started = streamer.ts if streamer is not None else None
        deps.logger.info("streaming unavailable (%s); posting the whole answer", slack_error(exc))
        if started:
            try:
                client.chat_update(channel=place.channel, ts=started, text=text, blocks=full)
                return place.channel, started
            except SlackApiError as update_exc:
                deps.logger.warning("chat.update of a broken stream failed: %s", slack_error(update_exc))
        return send() if send is not None else post(client, place, text=text, blocks=full, logger=deps.logger)


def answer_and_post(
    deps: Deps,
    client: WebClient,
    *,
    raw_text: str,
    place: Place,
    surface: str,
    bot_user_id: str | None,
    message_ts: str | None = None,
    thread_context: bool = False,
    lead_question: bool = False,
    start_stream: Callable[..., ChatStream] | None = None,
    moved: Callable[[str], object] | None = None,
    thread_marked: bool = False,
    private: Callable[..., object] | None = None,
) -> str | None:
    """Answer one question in `place`. Returns the answer id, or None when we could only apologize.
    `thread_marked`: the caller found the thread already the bot's, so marking it again (a database
    round trip per answer) is skipped. `private`: a slash command's `respond`; the answer replaces
    the asker's private "checking…" note, with 「チャンネルに共有」, and nothing is posted publicly."""
    plain = plain_question(raw_text, bot_user_id=bot_user_id)
    # The bot's own words (a prompt for a question, an apology): the text's language when it says
    # enough, else the user's Slack locale.
    language = text_language(deps, client, place.user_id, plain)
    try:
        if not plain:
            post(client, place, text=t("slack_no_text", language), logger=deps.logger)
            return None
        if not thread_marked and private is None:
            open_thread(deps, place)
        question = cut(plain, deps.max_input_chars)
        notes = [t("slack_input_cut", language, limit=deps.max_input_chars)] if question.truncated else []
        history: list[Turn] = []
        if thread_context:
            # The thread so far, gathered once here: a follow-up (「補助率は？」) is read as being about what the
            # thread discussed, and nothing already said in it is said again.
            history = as_history(
                previous_turns(
                    thread_messages(client, place, deps=deps), current_ts=message_ts, bot_user_id=bot_user_id
                )
            )
        answer = deps.answerer.ask(question.text, history=history)
        if answer.intent == "fit" and deps.matcher is not None:
            # "Which support fits me?" asked in words: the matcher answers it, on any surface.
            return match_and_post(
                deps,
                client,
                text=question.text,
                place=place,
                surface=surface,
                bot_user_id=bot_user_id,
                lead_question=lead_question,
                moved=moved,
                private=private,
            )
        answer_id = new_answer_id()
        lead = (
            t("slack_asked_by", language, user=place.user_id, question=escape_mrkdwn(shorten(question.text, 300)))
            if lead_question and place.user_id
            else None
        )
        full = answer_blocks(
            answer, answer_id=answer_id, catalog=deps.catalog, notes=notes, lead=lead, share=private is not None
        )
        record = {
            "surface": surface,
            "question": question.text,
            "answer": answer.answer,
            "language": answer.language,
            "confident": answer.confident,
            "mode": answer.mode,
            "citations": [citation_json(c, deps.catalog) for c in answer.citations],
            "user_id": place.user_id,
            "team_id": place.team_id,
        }
        if private is not None:
            # Private to the asker (a slash command's response_url): replaces the "checking…" note; nothing is
            # posted in the channel, so there is nothing for the outbox to deliver later.
            private(text=answer_fallback_text(answer), blocks=full, response_type="ephemeral", replace_original=True)
            record_answer(
                deps, answer_id=answer_id, channel_id=place.channel, message_ts=None, thread_ts=None, **record
            )
            return answer_id

        def send() -> tuple[str, str] | None:
            return send_answer(
                deps.outbox,
                client,
                place,
                answer_id=answer_id,
                text=answer_fallback_text(answer),
                blocks=full,
                record=record,
                logger=deps.logger,
            )

        if start_stream is not None and deps.settings.slack.stream and place.thread_ts:
            footer = answer_footer_blocks(answer, answer_id=answer_id, catalog=deps.catalog, notes=notes)
            sent = deliver_streamed(
                client, start_stream, place, answer=answer, footer=footer, full=full, deps=deps, send=send
            )
        else:
            sent = send()
        return _posted(deps, sent, place=place, answer_id=answer_id, record=record, moved=moved, language=language)
    except Exception as exc:  # noqa: BLE001 - the Slack edge: whatever failed, the user hears back with a reference
        _failed(deps, client, what=f"answering ({surface})", error=exc, place=place, language=language, private=private)
        return None


def _failed(
    deps: Deps,
    client: WebClient,
    *,
    what: str,
    error: Exception,
    place: Place,
    language: str,
    private: Callable[..., object] | None,
) -> None:
    """An apology with a reference: privately where the question was private."""
    if private is None:
        report_failure(deps.logger, client, what=what, error=error, place=place, language=language)
        return
    reference = report_failure(deps.logger, client, what=what, error=error, place=None, language=language)
    try:
        private(text=t("slack_apology", language, ref=reference), response_type="ephemeral", replace_original=True)
    except Exception as exc:  # noqa: BLE001 - response_url gone: the log line is what remains
        deps.logger.error("could not tell the asker about %s [ref %s]: %s", what, reference, exc)


def open_thread(deps: Deps, place: Place) -> None:
    """Mark the reply's thread as ours before answering, so a follow-up sent while the answer is being
    written is answered too. The database being down must not cost the answer: logged and carried on."""
    if not place.thread_ts:
        return  # a top-level reply: its own ts becomes the thread once posted and recorded
    try:
        deps.store.open_thread(place.channel, place.thread_ts)
    except StoreError as exc:
        deps.logger.warning(
            "could not mark thread %s/%s as the bot's; follow-ups without a mention are answered "
            "once the answer is recorded: %s",
            place.channel,
            place.thread_ts,
            exc,
        )


def record_answer(deps: Deps, **fields: Any) -> bool:
    """Record an answer that was already posted. The database being down must not cost the user
    the answer: the write is retried briefly, then logged as an error with a reference."""
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            deps.store.record_answer(**fields)
        except DeskDatabaseUnavailableError as exc:
            if attempts < RECORD_ATTEMPTS:
                deps.logger.warning(
                    "recording answer %s failed (attempt %d of %d), retrying: %s",
                    fields.get("answer_id"),
                    attempts,
                    RECORD_ATTEMPTS,
                    exc,
                )
            raise

    try:
        retried(attempt, attempts=RECORD_ATTEMPTS, backoff_s=RECORD_BACKOFF_S)
        return True
    except StoreError as exc:
        deps.logger.error(
            "answer %s was posted to %s/%s but not recorded [ref %s]: %s",
            fields.get("answer_id"),
            fields.get("channel_id"),
            fields.get("message_ts"),
            new_reference(),
            exc,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return False


def _posted(
    deps: Deps,
    sent: tuple[str, str] | None,
    *,
    place: Place,
    answer_id: str,
    record: JSON,
    moved: Callable[[str], object] | None,
    language: str,
) -> str:
    """After an answer or a match went out: record where it landed, and say so if it moved to a DM."""
    if sent is None:
        return answer_id  # Slack is unavailable: the outbox posts (and records) it when Slack is back
    channel, ts = sent
    record_answer(
        deps, answer_id=answer_id, channel_id=channel, message_ts=ts, thread_ts=_thread_of(place, channel, ts), **record
    )
    if moved is not None and channel != place.channel:
        _tell_moved(deps, moved, language)
    return answer_id


def _tell_moved(deps: Deps, moved: Callable[[str], object], language: str) -> None:
    """The answer went to the user's DM: say so where they asked (a courtesy; the answer is out)."""
    try:
        moved(t("slack_posted_to_dm", language))
    except Exception as exc:  # noqa: BLE001 - response_url expired or unreachable: the answer itself was delivered
        deps.logger.warning("could not say the answer moved to a DM: %s", exc)


def _thread_of(place: Place, channel: str, ts: str) -> str:
    """The thread the reply lives in: the asked-in thread, or the reply itself when it is top level
    (or went to the user's DM instead)."""
    return place.thread_ts if place.thread_ts and channel == place.channel else ts


def match_and_post(
    deps: Deps,
    client: WebClient,
    *,
    text: str,
    place: Place,
    surface: str,
    bot_user_id: str | None = None,
    lead_question: bool = False,
    moved: Callable[[str], object] | None = None,
    profile: Profile | None = None,
    private: Callable[..., object] | None = None,
) -> str | None:
    """Recommendations for the situation in `text` (or for `profile`, as a form gave it), as cards in
    `place`, or privately through `private` (a `respond`, or an ephemeral poster). Returns the record id."""
    plain = plain_question(text, bot_user_id=bot_user_id)
    language = detect_language(plain) if plain else "ja"
    try:
        if deps.matcher is None:
            raise RuntimeError("no matcher is configured")
        if private is None:
            open_thread(deps, place)
        situation = cut(plain, deps.max_input_chars)
        result = deps.matcher.match_profile(profile) if profile is not None else deps.matcher.match(situation.text)
        language = result.language
        cards = match_cards(result, catalog=deps.catalog, language=language)
        answer_id = new_answer_id()
        # A form's answers are summarised, not quoted back as if they were a question.
        lead = (
            t("slack_asked_by", language, user=place.user_id, question=escape_mrkdwn(shorten(situation.text, 300)))
            if lead_question and place.user_id and profile is None
            else None
        )
        notes = list(result.notes)
        if situation.truncated:
            notes.insert(0, t("slack_input_cut", language, limit=deps.max_input_chars))
        blocks = match_blocks(
            cards,
            answer_id=answer_id,
            language=language,
            summary=profile_summary(result.profile, language),
            notes=notes,
            lead=lead,
            share=private is not None,
        )
        fallback = match_fallback_text(cards, language)
        record = {
            "surface": surface,
            "question": situation.text,
            "answer": fallback,
            "language": language,
            "confident": bool(cards),
            "mode": "match",
            "citations": cards,
            "user_id": place.user_id,
            "team_id": place.team_id,
        }
        if private is not None:
            private(text=fallback, blocks=blocks, response_type="ephemeral", replace_original=True)
            record_answer(
                deps, answer_id=answer_id, channel_id=place.channel, message_ts=None, thread_ts=None, **record
            )
            return answer_id
        sent = send_answer(
            deps.outbox,
            client,
            place,
            answer_id=answer_id,
            text=fallback,
            blocks=blocks,
            record=record,
            logger=deps.logger,
        )
        return _posted(deps, sent, place=place, answer_id=answer_id, record=record, moved=moved, language=language)
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        _failed(deps, client, what=f"matching ({surface})", error=exc, place=place, language=language, private=private)
        return None
