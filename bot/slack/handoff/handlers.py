"""Hand-off to a human supporter (the MEDISO part): the request form, the consultation card in the
supporters' channel, taking and resolving it, and telling the asker in their thread at each step."""

from __future__ import annotations

import json

from pydantic import ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import guards
from bot.slack.answers.answering import plain_question, thread_messages
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.edge import ephemeral, new_reference, not_saved, origin_of, post, report_failure, slack_error
from bot.slack.errors import SlackError
from bot.slack.handoff.blocks import (
    consultation_card,
    consultation_fallback_text,
    handoff_form_values,
    handoff_modal,
    thread_summary,
)
from bot.slack.home import publish_home
from bot.slack.match.blocks import profile_summary
from bot.store import Consultation, DeskDatabaseUnavailableError
from prompts.messages import t
from retrieval.profile import Profile, extract_profile


def open_form(deps: Deps, client: WebClient, body: JSON) -> None:
    """「相談員につなぐ」: the short form (topic, urgency, consent to share the thread)."""
    user = body["user"]["id"]
    answer_id = body["actions"][0].get("value") or ""
    channel, thread_ts = origin_of(body)
    try:  # only the asker's own answer, clicked where it was posted, is carried into the consultation
        record = guards.owned_answer(deps.store, answer_id, user=user, channel=channel, logger=deps.logger)
    except DeskDatabaseUnavailableError as exc:  # the form works without the answer; the database may be back by submit
        deps.logger.warning("hand-off form without answer %s: %s", answer_id, exc)
        record = None
    language = record.language if record else "ja"
    if not deps.settings.slack.supporters_channel:
        ephemeral(
            client,
            channel=channel,
            user=user,
            text=t("slack_handoff_unavailable", language),
            thread_ts=thread_ts,
            logger=deps.logger,
        )
        return
    metadata = guards.seal(
        {
            "a": record.id if record else "",
            "c": (record.channel_id if record else None) or channel,
            "t": (record.thread_ts if record else None) or thread_ts,
            "l": language,
        },
        user=user,
        secret=guards.seal_key(deps.settings),
    )
    client.views_open(
        trigger_id=body["trigger_id"],
        view=handoff_modal(private_metadata=metadata, language=language, topic=record.question if record else ""),
    )


def submit_form(deps: Deps, client: WebClient, body: JSON, *, bot_user_id: str | None) -> None:
    """After the form is acknowledged: record the consultation, post its card, tell the asker."""
    view = body["view"]
    user = body["user"]["id"]
    meta = guards.opened_form(deps, client, body, what="hand-off form")
    if meta is None:  # not the form we opened for this user: its answer and thread cannot be trusted
        return
    values = handoff_form_values(view["state"]["values"])
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id")
    language = meta.get("l") or "ja"
    place = Place(channel=meta.get("c") or user, thread_ts=meta.get("t"), user_id=user, team_id=team)
    try:
        record = guards.owned_answer(deps.store, meta.get("a"), user=user, channel=None, logger=deps.logger)
        summary, profile, permalink = "", None, None
        if values["consent"]:
            messages = thread_messages(client, place, deps=deps)
            summary = thread_summary(
                messages, bot_user_id=bot_user_id, asker=user, skip=[values["topic"], record.question if record else ""]
            )
            said = [
                plain_question(str(m.get("text") or ""), bot_user_id=bot_user_id)
                for m in messages
                if not m.get("bot_id") and m.get("user") != bot_user_id
            ]
            profile = extract_profile("\n".join([record.question if record else "", *said, values["topic"]]))
            permalink = _permalink(deps, client, place)
        consultation = deps.store.open_consultation(
            asker_user_id=user,
            topic=values["topic"],
            urgency=values["urgency"],
            consent_to_share=values["consent"],
            question=record.question if record and values["consent"] else "",
            thread_summary=summary,
            profile=profile.model_dump(mode="json") if profile is not None else None,
            answer_id=record.id if record else None,
            asker_channel_id=place.channel,
            asker_thread_ts=place.thread_ts,
            team_id=team,
            language=language,
            thread_permalink=permalink,
        )
        card = card_blocks(deps, consultation)
        if not deps.settings.slack.supporters_channel:
            raise SlackError("no supporters' channel is configured (KAKEHASHI_SUPPORTERS_CHANNEL)")
        response = client.chat_postMessage(
            channel=deps.settings.slack.supporters_channel,
            blocks=card,
            text=consultation_fallback_text(consultation),
            unfurl_links=False,
        )
        try:
            deps.store.set_card(consultation.id, channel_id=str(response["channel"]), ts=str(response["ts"]))
        except DeskDatabaseUnavailableError as exc:  # saved and posted; only later card refreshes will miss it
            deps.logger.error("card of %s not linked [ref %s]: %s", consultation.ref, new_reference(), exc)
        post(client, place, text=t("slack_handoff_done", language, ref=consultation.ref), logger=deps.logger)
    except DeskDatabaseUnavailableError as exc:
        not_saved(
            deps,
            client,
            what="hand-off",
            error=exc,
            user=user,
            channel=place.channel,
            thread_ts=place.thread_ts,
            language=language,
        )
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(deps.logger, client, what="hand-off", error=exc, place=place, language=language)


def _permalink(deps: Deps, client: WebClient, place: Place) -> str | None:
    if not place.thread_ts:
        return None
    try:
        return str(client.chat_getPermalink(channel=place.channel, message_ts=place.thread_ts)["permalink"])
    except SlackApiError as exc:
        deps.logger.info("no permalink for %s/%s: %s", place.channel, place.thread_ts, slack_error(exc))
        return None


def card_blocks(deps: Deps, consultation: Consultation) -> list[JSON]:
    answer = deps.store.get_answer(consultation.answer_id) if consultation.answer_id else None
    profile_text = ""
    if consultation.consent_to_share and consultation.profile_json:
        try:
            profile = Profile.model_validate(json.loads(consultation.profile_json))
            profile_text = profile_summary(profile, consultation.language)
        except (ValidationError, json.JSONDecodeError) as exc:
            deps.logger.warning("stored profile of %s is unreadable: %s", consultation.ref, exc)
    return consultation_card(
        consultation, answer=answer, profile_text=profile_text, permalink=consultation.thread_permalink
    )


def _refresh_card(deps: Deps, client: WebClient, consultation: Consultation) -> None:
    if not (consultation.card_channel_id and consultation.card_ts):
        return
    client.chat_update(
        channel=consultation.card_channel_id,
        ts=consultation.card_ts,
        text=consultation_fallback_text(consultation),
        blocks=card_blocks(deps, consultation),
    )


def _tell_asker(deps: Deps, client: WebClient, consultation: Consultation, text: str) -> None:
    place = Place(
        channel=consultation.asker_channel_id or consultation.asker_user_id,
        thread_ts=consultation.asker_thread_ts,
        user_id=consultation.asker_user_id,
    )
    try:
        post(client, place, text=text, logger=deps.logger)
    except SlackApiError as exc:
        deps.logger.error(
            "could not tell %s about %s [ref %s]: %s",
            consultation.asker_user_id,
            consultation.ref,
            new_reference(),
            slack_error(exc),
        )


def change_state(deps: Deps, client: WebClient, body: JSON, *, action: str) -> None:
    """A supporter clicked 担当する (take) or 対応済みにする (resolve), on the card or the App Home."""
    user = body["user"]["id"]
    channel, thread_ts = origin_of(body)
    if not (
        guards.consultation_place_ok(body, supporters_channel=deps.settings.slack.supporters_channel)
        and deps.check_supporter(user, attempted=f"consultation {action}")
    ):
        ephemeral(client, channel=channel, user=user, text=t("slack_not_a_supporter", "ja"), logger=deps.logger)
        return
    try:
        consultation_id = int(body["actions"][0]["value"])
        if action == "take":
            consultation, changed = deps.store.take(consultation_id, supporter=user)
        else:
            consultation, changed = deps.store.resolve(consultation_id, supporter=user)
        if not changed:
            note = (
                t("slack_already_resolved", "ja")
                if consultation.status == "resolved"
                else t("slack_already_taken", "ja", supporter=consultation.assignee_user_id)
            )
            ephemeral(client, channel=channel, user=user, text=note, logger=deps.logger)
        else:
            _refresh_card(deps, client, consultation)
            key = "slack_handoff_taken" if action == "take" else "slack_handoff_resolved"
            _tell_asker(deps, client, consultation, t(key, consultation.language, ref=consultation.ref, supporter=user))
        if (body.get("view") or {}).get("type") == "home":
            publish_home(deps, client, user)
    except DeskDatabaseUnavailableError as exc:
        not_saved(
            deps, client, what=f"consultation {action}", error=exc, user=user, channel=channel, thread_ts=thread_ts
        )
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        place = Place(channel=channel, thread_ts=thread_ts, user_id=user) if channel else Place(channel=user)
        report_failure(deps.logger, client, what=f"consultation {action}", error=exc, place=place)
