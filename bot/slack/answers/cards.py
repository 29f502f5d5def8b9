"""What the buttons on an answer or a match result open: its sources, a recommendation's details, and
「チャンネルに共有」 for a private result. Each checks that the clicker may see the answer it names."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.slack.answers.blocks import answer_blocks, answer_from_record, sources_modal
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import ephemeral, origin_of, post
from bot.slack.errors import SlackError
from bot.slack.match.blocks import match_blocks, match_details_modal, stored_cards
from bot.slack.text import escape_mrkdwn, shorten
from bot.store import AnswerRecord
from prompts.messages import t


class NotAllowedError(SlackError):
    """A button naming an answer the clicker may not see (another user's private answer)."""


def allowed_record(deps: Deps, body: JSON, answer_id: str) -> AnswerRecord:
    """The answer a button names, if the clicker may see it: their own, one posted where they clicked,
    or, for supporters, one behind a card in the supporters' channel."""
    user = body["user"]["id"]
    channel, _ = origin_of(body)
    record = deps.store.get_answer(answer_id) if answer_id else None
    if record is None:
        raise NotAllowedError(f"no answer {answer_id!r}")
    public_here = record.message_ts is not None and channel is not None and record.channel_id == channel
    on_card = channel is not None and channel == deps.settings.slack.supporters_channel
    if record.user_id != user and not public_here and not on_card:
        raise NotAllowedError(
            f"{user} may not open answer {answer_id} (asked by {record.user_id} in "
            f"{record.channel_id}, clicked in {channel})"
        )
    return record


def _refuse(deps: Deps, client: WebClient, body: JSON, error: NotAllowedError) -> None:
    deps.logger.warning("refused: %s", error)
    channel, thread_ts = origin_of(body)
    ephemeral(
        client,
        channel=channel,
        user=body["user"]["id"],
        text=t("slack_not_yours", "ja"),
        thread_ts=thread_ts,
        logger=deps.logger,
    )


def open_sources(deps: Deps, client: WebClient, body: JSON) -> None:
    try:
        record = allowed_record(deps, body, str(body["actions"][0].get("value") or ""))
    except NotAllowedError as exc:
        _refuse(deps, client, body, exc)
        return
    channel, _ = origin_of(body)
    on_card = channel is not None and channel == deps.settings.slack.supporters_channel
    client.views_open(trigger_id=body["trigger_id"], view=sources_modal(record, with_answer=on_card))


def open_details(deps: Deps, client: WebClient, body: JSON) -> None:
    answer_id, _, number = str(body["actions"][0].get("value") or "").partition(":")
    try:
        record = allowed_record(deps, body, answer_id)
    except NotAllowedError as exc:
        _refuse(deps, client, body, exc)
        return
    card = next((c for c in stored_cards(record.citations) if str(c.get("n")) == number and "fit" in c), None)
    if card is None:
        raise ValueError(f"answer {answer_id} has no recommendation {number!r}")
    client.views_open(trigger_id=body["trigger_id"], view=match_details_modal(card, record.language))


def share(deps: Deps, client: WebClient, body: JSON, respond: Respond) -> None:
    """Post the asker's private answer (or match result) in the channel, then remove the private copy."""
    user = body["user"]["id"]
    channel, _ = origin_of(body)
    answer_id = str(body["actions"][0].get("value") or "")
    record = deps.store.get_answer(answer_id) if answer_id else None
    if record is None:
        respond(text=t("slack_share_gone", "ja"), response_type="ephemeral", replace_original=False)
        return
    if record.user_id != user or record.channel_id != channel or record.message_ts is not None:
        _refuse(deps, client, body, NotAllowedError(f"{user} may not share answer {answer_id} in {channel}"))
        return
    language = record.language
    lead = t("slack_shared_by", language, user=user, question=escape_mrkdwn(shorten(record.question, 200)))
    if record.mode == "match":
        blocks = match_blocks(
            stored_cards(record.citations), answer_id=answer_id, language=language, summary="", lead=lead
        )
    else:
        answer = answer_from_record(record)
        blocks = answer_blocks(answer, answer_id=answer_id, catalog=deps.catalog, lead=lead)
    place = Place(channel=str(channel), user_id=user, team_id=record.team_id)
    text = record.answer if record.mode == "match" else escape_mrkdwn(shorten(record.answer, 2900))
    posted_channel, ts = post(client, place, text=text, blocks=blocks, logger=deps.logger, dm_fallback=False)
    deps.store.set_answer_message(answer_id, channel_id=posted_channel, message_ts=ts, thread_ts=ts)
    deps.store.open_thread(posted_channel, ts)  # follow-ups in the shared answer's thread are answered
    respond(delete_original=True)
