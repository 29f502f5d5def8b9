"""「回答として登録」: a resolved consultation becomes a curated answer (and 「回答を書く」 on a gaps-report topic).

On the card of a resolved consultation, staff open a form pre-filled with the founder's question and the
supporters' replies in the card's thread (conversations.replies), edit it, and save it through the
knowledge editor as a curated answer (knowledge/answers/). The running bot refreshes at once, so the
next founder who asks the same thing gets the supporters' answer, marked as checked by them.

Every id in a payload is checked against who acts and where: the button is honoured only for staff, on
the consultation's own card in the supporters' channel; the form's metadata is sealed for the staff
member who opened it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from pydantic import ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import guards
from bot.slack.blockkit import (
    JSON,
    MODAL_TITLE,
    Block,
    input_block,
    modal,
    plain_text,
    section,
    text_input,
)
from bot.slack.deps import Deps, Place
from bot.slack.edge import ephemeral, post, report_failure, slack_error
from bot.slack.ids import CURATE_VIEW
from bot.slack.kb.flow import actor_for, announce_change, conflict_text, current_kb, problems_of
from bot.slack.text import slack_to_plain
from bot.store import Consultation, ConsultationNotFound
from knowledge.errors import ConflictError, NothingToChangeError, RecordError, UnknownRecordError
from knowledge.schema import RECORD_ID_PATTERN, CuratedAnswer
from prompts.messages import t
from retrieval.leaks import leaks

MAX_ANSWER_CHARS = 3000
_FIELDS = ("questions", "answer_ja", "answer_en", "records", "author")
_RECORD_IDS = re.compile(RECORD_ID_PATTERN)
_MENTION = re.compile(r"<[@!][^>]*>\s*")


def answer_id_for(consultation: Consultation) -> str:
    """The curated answer's id: from the consultation's reference, so one consultation makes one answer."""
    return f"consultation-{consultation.ref.lower()}"


def supporter_replies(messages: list[JSON], *, asker: str) -> list[str]:
    """What people wrote in the card's thread, oldest first: the supporters' replies. The card itself and
    the bot's posts (relays of the founder's messages among them) are left out, and so is the asker."""
    replies = []
    for message in messages[1:]:
        if message.get("bot_id") or message.get("subtype") or message.get("user") in (None, asker):
            continue
        # Mentions address colleagues; a founder must not see Slack user ids.
        text = slack_to_plain(_MENTION.sub("", str(message.get("text") or "")), bot_user_id=None).strip()
        if text:
            replies.append(text)
    return replies


def _t(key: str, **values: object) -> str:
    """Curating is staff work, in Japanese."""
    return t(f"slack_curate_{key}", "ja", **values)


def curate_modal(*, private_metadata: JSON, question: str, answer: str, author: str, ref: str | None) -> Block:
    """The form: the question's phrasings, the answer in Japanese (and English), what it cites, who checked."""

    def field(
        block_id: str,
        label: str,
        *,
        initial: str = "",
        multiline: bool = False,
        optional: bool = False,
        hint: str = "",
        max_length: int = MAX_ANSWER_CHARS,
    ) -> Block:
        # line breaks kept in the initial value: one phrasing a line
        return input_block(
            block_id,
            label,
            text_input(max_length=max_length, multiline=multiline, initial=initial),
            optional=optional,
            hint=hint,
        )

    return modal(
        callback_id=CURATE_VIEW,
        private_metadata=private_metadata,
        title=_t("title"),
        submit=_t("submit"),
        close=t("slack_cancel", "ja"),
        blocks=[
            section((_t("for_consultation", ref=ref) if ref else _t("for_question")) + _t("intro")),
            field("questions", _t("questions"), initial=question, multiline=True, max_length=1000),
            field("answer_ja", _t("answer_ja"), initial=answer, multiline=True),
            field("answer_en", _t("answer_en"), multiline=True, optional=True, hint=_t("answer_en_hint")),
            field("records", _t("records"), optional=True, max_length=500, hint=_t("records_hint")),
            field("author", _t("author"), initial=author, max_length=80),
        ],
    )


def curate_form_values(state_values: JSON) -> dict[str, str]:
    def value(block: str) -> str:
        return str(((state_values.get(block) or {}).get("value") or {}).get("value") or "").strip()

    return {name: value(name) for name in _FIELDS}


def record_from_form(values: dict[str, str], *, answer_id: str, consultation_ref: str | None, today: dt.date) -> JSON:
    questions = [line.strip() for line in values["questions"].splitlines() if line.strip()]
    data: JSON = {
        "kind": "answer",
        "id": answer_id,
        "questions": list(dict.fromkeys(questions)),
        "answer_ja": values["answer_ja"],
        "author": values["author"],
        "as_of": today,
        "sources": [{"record": record_id} for record_id in dict.fromkeys(_RECORD_IDS.findall(values["records"]))],
    }
    if values["answer_en"]:
        data["answer_en"] = values["answer_en"]
    if consultation_ref:
        data["consultation"] = consultation_ref
    return data


def form_errors(data: JSON, *, known_ids: set[str]) -> dict[str, str]:
    """What would be refused, shown on the form's fields before the form closes."""
    errors: dict[str, str] = {}
    try:
        CuratedAnswer.model_validate(data)
    except ValidationError as exc:
        for problem in exc.errors():
            where = str(problem["loc"][0]) if problem["loc"] else "answer_ja"
            block = {"sources": "records", "as_of": "author", "id": "answer_ja"}.get(where, where)
            errors.setdefault(block if block in _FIELDS else "answer_ja", f"{problem['msg']}")
    unknown = [s["record"] for s in data.get("sources", []) if s["record"] not in known_ids]
    if unknown:
        errors["records"] = _t("unknown_ids", ids=", ".join(unknown))
    for block in ("answer_ja", "answer_en"):
        found = leaks(str(data.get(block) or ""), known_ids)
        if found:
            errors[block] = _t("leaks", found=", ".join(dict.fromkeys(found)))
    return errors


def _refuse(deps: Deps, client: WebClient, *, user: str, channel: str | None, why: str) -> None:
    deps.logger.warning("refused 回答として登録 by %s in %s: %s", user, channel, why)
    if channel:
        ephemeral(client, channel=channel, user=user, text=t("slack_curate_refused", "ja"), logger=deps.logger)


def _staff_in_supporters_channel(
    deps: Deps, client: WebClient, body: JSON, *, attempted: str
) -> tuple[str, str | None] | None:
    """(user, channel) when a staff member clicked in the supporters' channel and the knowledge can be edited;
    otherwise the clicker is told why not, privately, and None."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if not (
        guards.consultation_place_ok(body, supporters_channel=deps.settings.slack.supporters_channel)
        and (body.get("view") or {}).get("type") != "home"
        and deps.check_staff(user, attempted=attempted)
    ):
        _refuse(deps, client, user=user, channel=channel, why="not staff, or not in the supporters' channel")
        return None
    if deps.editor is None:
        ephemeral(client, channel=channel, user=user, text=t("slack_kb_unavailable", "ja"), logger=deps.logger)
        return None
    return user, channel


def open_form(deps: Deps, client: WebClient, body: JSON) -> None:
    """The button on a resolved consultation's card: staff only, on that very card."""
    acting = _staff_in_supporters_channel(deps, client, body, attempted="register a consultation as a curated answer")
    if acting is None:
        return
    user, channel = acting
    message_ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
    try:
        consultation = deps.store.get_consultation(int(body["actions"][0]["value"]))
    except (KeyError, ValueError, ConsultationNotFound):
        _refuse(deps, client, user=user, channel=channel, why=f"no consultation {body['actions'][0].get('value')!r}")
        return
    if (consultation.card_channel_id, consultation.card_ts) != (channel, message_ts):
        _refuse(
            deps,
            client,
            user=user,
            channel=channel,
            why=f"{consultation.ref}'s card is {consultation.card_channel_id}/{consultation.card_ts}, "
            f"not {channel}/{message_ts}",
        )
        return
    if consultation.status != "resolved":
        ephemeral(client, channel=channel, user=user, text=t("slack_curate_not_resolved", "ja"), logger=deps.logger)
        return
    if channel is None or message_ts is None:  # a card has both; the check above makes this unreachable
        return
    question = (consultation.question or "").strip() if consultation.consent_to_share else ""
    messages: list[JSON] = []
    try:
        messages = client.conversations_replies(channel=channel, ts=message_ts, limit=200).get("messages") or []
    except SlackApiError as exc:  # the form still opens, with the question; staff write the answer
        deps.logger.warning("conversations.replies of %s's card failed: %s", consultation.ref, slack_error(exc))
    replies = supporter_replies(messages, asker=consultation.asker_user_id)
    metadata = guards.seal({"k": consultation.id}, user=user, secret=guards.seal_key(deps.settings))
    client.views_open(
        trigger_id=body["trigger_id"],
        view=curate_modal(
            private_metadata=metadata,
            question=question or consultation.topic,
            answer="\n\n".join(replies),
            author=_display_name(deps, client, user),
            ref=consultation.ref,
        ),
    )


def open_from_gap(deps: Deps, client: WebClient, body: JSON) -> None:
    """「回答を書く」 on a topic of the weekly gaps report: the same form, pre-filled with the topic's question."""
    acting = _staff_in_supporters_channel(
        deps, client, body, attempted="write a curated answer for a gaps-report topic"
    )
    if acting is None:
        return
    user, channel = acting
    from bot.desk_gaps import asked_privately  # here: bot.desk_gaps imports the bot.slack package

    # The value names an answer the desk gave: its question is the form's, unless it was asked in private.
    record = deps.store.get_answer(str(body["actions"][0].get("value") or ""))
    if record is None or asked_privately(record):
        _refuse(
            deps,
            client,
            user=user,
            channel=channel,
            why=f"answer {body['actions'][0].get('value')!r} is unknown or was asked privately",
        )
        return
    question = record.question[:300]
    metadata = guards.seal({"g": 1}, user=user, secret=guards.seal_key(deps.settings))
    client.views_open(
        trigger_id=body["trigger_id"],
        view=curate_modal(
            private_metadata=metadata, question=question, answer="", author=_display_name(deps, client, user), ref=None
        ),
    )


def open_edit(deps: Deps, client: WebClient, *, trigger_id: str | None, user: str, data: JSON, base: str) -> None:
    """`/kakehashi kb edit ID` of a curated answer (staff, checked by the caller): the same form, filled from the
    file; saving it is a re-check by this staff member (as_of becomes today), refused if the file changed since."""
    metadata = guards.seal(
        {"e": str(data.get("id")), "b": base, "c": data.get("consultation")},
        user=user,
        secret=guards.seal_key(deps.settings),
    )
    records = " ".join(str(s["record"]) for s in data.get("sources") or [] if isinstance(s, dict) and s.get("record"))
    view = curate_modal(
        private_metadata=metadata,
        question="\n".join(data.get("questions") or []),
        answer=str(data.get("answer_ja") or ""),
        author=str(data.get("author") or ""),
        ref=None,
    )
    view["title"] = plain_text(_t("edit_title"), MODAL_TITLE)
    for block in view["blocks"]:
        if block.get("block_id") == "answer_en" and data.get("answer_en"):
            block["element"]["initial_value"] = str(data["answer_en"])
        if block.get("block_id") == "records" and records:
            block["element"]["initial_value"] = records
    client.views_open(trigger_id=trigger_id, view=view)


def gap_answer_id(question: str) -> str:
    """An answer written from the gaps report: named by its question, so the same topic makes one answer."""
    return f"faq-{hashlib.sha256(' '.join(question.split()).encode()).hexdigest()[:10]}"


def _display_name(deps: Deps, client: WebClient, user: str) -> str:
    try:
        found = client.users_info(user=user)["user"]
    except SlackApiError as exc:
        deps.logger.info("users.info %s failed: %s", user, slack_error(exc))
        return user
    profile = found.get("profile") or {}
    return str(found.get("real_name") or profile.get("real_name") or profile.get("display_name") or user)


def check_form(deps: Deps, body: JSON) -> tuple[dict[str, str], JSON | None]:
    """(errors by block, the record to save): run before the form is acknowledged."""
    user = body["user"]["id"]
    meta = guards.form_metadata(deps, body)
    if meta is None or not deps.check_staff(user, attempted="save a curated answer from a consultation"):
        deps.logger.warning("refused a 回答として登録 form from %s", user)
        return {"answer_ja": t("slack_curate_refused", "ja")}, None
    if deps.editor is None:
        return {"answer_ja": t("slack_kb_unavailable", "ja")}, None
    values = curate_form_values(body["view"]["state"]["values"])
    kb = current_kb(deps)
    if meta.get("e"):
        answer_id, ref = str(meta["e"]), meta.get("c")
        try:
            _, current = deps.editor.record_text(answer_id)
        except UnknownRecordError:
            return {"answer_ja": t("slack_kb_unknown", "ja", error=f"{answer_id} no longer exists")}, None
        if current != meta.get("b"):
            later = deps.editor.history(answer_id, limit=1)
            return {
                "answer_ja": conflict_text(ConflictError("changed", change=later[0] if later else None), "ja")
            }, None
        data = record_from_form(values, answer_id=answer_id, consultation_ref=ref, today=dt.date.today())
        data["status"] = kb.answer(answer_id).status if any(a.id == answer_id for a in kb.answers) else "active"
        errors = form_errors(data, known_ids={r.id for r in kb.records} | {a.id for a in kb.answers})
        return errors, (None if errors else {**data, "_base": meta.get("b")})
    if meta.get("g"):
        first = next((line.strip() for line in values["questions"].splitlines() if line.strip()), "")
        answer_id, ref = gap_answer_id(first), None
    else:
        try:
            consultation = deps.store.get_consultation(int(meta["k"]))
        except (KeyError, ValueError, ConsultationNotFound):
            return {"answer_ja": t("slack_curate_refused", "ja")}, None
        if consultation.status != "resolved":
            return {"answer_ja": t("slack_curate_not_resolved", "ja")}, None
        answer_id, ref = answer_id_for(consultation), consultation.ref
    data = record_from_form(values, answer_id=answer_id, consultation_ref=ref, today=dt.date.today())
    if any(a.id == data["id"] for a in kb.answers):
        return {"answer_ja": t("slack_curate_exists", "ja", id=data["id"])}, None
    errors = form_errors(data, known_ids={r.id for r in kb.records} | {a.id for a in kb.answers})
    return errors, (None if errors else data)


def save(deps: Deps, client: WebClient, body: JSON, data: JSON) -> None:
    """After the acknowledgement: write it through the editor, confirm by DM, refresh the running bot."""
    user = body["user"]["id"]
    place = Place(channel=user, user_id=user)
    base = data.pop("_base", None)
    try:
        assert deps.editor is not None
        change = deps.editor.save_record(data, actor=actor_for(user), base=base)
    except ConflictError as exc:
        post(client, place, text=f":warning: {conflict_text(exc, 'ja')}", logger=deps.logger)
        return
    except NothingToChangeError as exc:
        post(client, place, text=t("slack_curate_exists", "ja", id=data["id"]) + f"\n{exc}", logger=deps.logger)
        return
    except RecordError as exc:
        lines = "\n".join(f"• `{p}`: {m}" for p, _, m in problems_of(exc))
        post(client, place, text=t("slack_kb_failed", "ja", error="\n" + lines), logger=deps.logger)
        return
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(deps.logger, client, what="saving a curated answer", error=exc, place=place)
        return
    announce_change(deps, client, user=user, change=change, language="ja")
