"""👍 / 👎 on an answer; 👎 asks what was wrong. Every rating is recorded."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.slack import guards
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps
from bot.slack.edge import ephemeral, not_saved, origin_of
from bot.slack.feedback.blocks import feedback_modal
from bot.slack.text import cut
from bot.store import AnswerRecord, DeskDatabaseUnavailableError, FeedbackRecord
from prompts.messages import t
from retrieval.language import detect_language


def _message_language(body: JSON) -> str:
    """The clicked answer's language, from its text, for when the database cannot say."""
    text = str((body.get("message") or {}).get("text") or "")
    return detect_language(text) if text else "ja"


def _rate(deps: Deps, client: WebClient, body: JSON, rating: str) -> tuple[AnswerRecord | None, FeedbackRecord] | None:
    """Store a 👍 / 👎 on the clicked answer: (the answer, the feedback row), or None when the database
    could not take it (the user has been told)."""
    user = body["user"]["id"]
    answer_id = body["actions"][0].get("value") or None
    try:
        allowed, record = guards.answer_in_place(deps.store, answer_id, channel=origin_of(body)[0], logger=deps.logger)
        if not allowed:  # an answer id from another channel: not this message's answer
            ephemeral(
                client, channel=origin_of(body)[0], user=user, text=t("slack_not_your_answer", "ja"), logger=deps.logger
            )
            return None
        row = deps.store.add_feedback(answer_id=answer_id, user_id=user, rating=rating)
    except DeskDatabaseUnavailableError as exc:
        channel, thread_ts = origin_of(body)
        not_saved(
            deps,
            client,
            what=f"feedback {'👍' if rating == 'up' else '👎'}",
            error=exc,
            user=user,
            channel=channel,
            thread_ts=thread_ts,
            language=_message_language(body),
        )
        return None
    return record, row


def rate(deps: Deps, client: WebClient, body: JSON) -> None:
    """Slack's feedback_buttons: the clicked button's value is `up:<answer id>` or `down:<answer id>`."""
    rating, _, answer_id = str(body["actions"][0].get("value") or "").partition(":")
    if rating not in ("up", "down"):
        raise ValueError(f"feedback value {body['actions'][0].get('value')!r} is not up:/down:")
    body = {**body, "actions": [{**body["actions"][0], "value": answer_id}]}
    (rate_up if rating == "up" else rate_down)(deps, client, body)


def rate_up(deps: Deps, client: WebClient, body: JSON) -> None:
    rated = _rate(deps, client, body, "up")
    if rated is None:
        return
    record, _ = rated
    channel, thread_ts = origin_of(body)
    ephemeral(
        client,
        channel=channel,
        user=body["user"]["id"],
        text=t("slack_thanks_feedback", record.language if record else "ja"),
        thread_ts=thread_ts,
        logger=deps.logger,
    )


def rate_down(deps: Deps, client: WebClient, body: JSON) -> None:
    """Record the 👎 at once (a closed form still counts), then ask what was wrong."""
    rated = _rate(deps, client, body, "down")
    if rated is None:
        return
    record, row = rated
    channel, thread_ts = origin_of(body)
    language = record.language if record else "ja"
    metadata = guards.seal(
        {"f": row.id, "c": channel, "t": thread_ts, "l": language},
        user=body["user"]["id"],
        secret=guards.seal_key(deps.settings),
    )
    client.views_open(trigger_id=body["trigger_id"], view=feedback_modal(private_metadata=metadata, language=language))


def explain_down(deps: Deps, client: WebClient, body: JSON) -> None:
    view = body["view"]
    meta = guards.opened_form(deps, client, body, what="feedback reasons")
    if meta is None:  # not the form we opened for this user: the feedback id in it is someone else's
        return
    state = view["state"]["values"]
    reasons = [o["value"] for o in ((state.get("reasons") or {}).get("value") or {}).get("selected_options") or []]
    comment = cut(((state.get("comment") or {}).get("value") or {}).get("value") or "", 2000).text
    try:
        deps.store.explain_feedback(int(meta["f"]), reasons=reasons, comment=comment, user_id=body["user"]["id"])
    except DeskDatabaseUnavailableError as exc:
        not_saved(
            deps,
            client,
            what="feedback reasons",
            error=exc,
            user=body["user"]["id"],
            channel=meta.get("c"),
            thread_ts=meta.get("t"),
            language=meta.get("l", "ja"),
        )
        return
    ephemeral(
        client,
        channel=meta.get("c"),
        user=body["user"]["id"],
        text=t("slack_thanks_feedback", meta.get("l", "ja")),
        thread_ts=meta.get("t"),
        logger=deps.logger,
    )
