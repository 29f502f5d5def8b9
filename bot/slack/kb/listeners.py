"""The knowledge editor's forms and buttons (staff only): the record and document forms' submissions,
and 編集 / 廃止 / 復元 / 履歴 / 取り消す / 詳細を編集 / 置き換える.

Every entry point checks staff again (opening a form, submitting it, clicking a button), since a
form can stay open while someone leaves the staff group. A submitted form is checked before it is
acknowledged (schema, quotes in their documents, a newer version of the record) so problems
show on their fields; the write and the re-index follow the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import ids
from bot.slack.blockkit import JSON, read_metadata
from bot.slack.deps import Deps, Place
from bot.slack.edge import log_failure, post, report_failure
from bot.slack.kb import blocks as kb_blocks
from bot.slack.kb import documents, forms, uploads
from bot.slack.kb.commands import HISTORY_LIMIT, failure_text, open_record_form
from bot.slack.kb.flow import (
    actor_for,
    announce_change,
    conflict_text,
    current_kb,
    editor_of,
    problems_of,
)
from bot.slack.text import escape_mrkdwn
from knowledge.errors import ConflictError, NothingToChangeError, RecordError, UnknownRecordError
from knowledge.loader import check_sources
from knowledge.normalize import squash
from knowledge.schema import RECORD_ID, RECORD_TYPES
from prompts.messages import t


def _precheck(
    deps: Deps,
    kind: str,
    record: forms.FormRecord,
    *,
    record_id: str | None,
    base: str | None,
    hidden: list[str],
    language: str,
) -> dict[str, str]:
    """What the editor would refuse, found before the acknowledgement so it shows on the fields:
    the schema, quotes against the documents, and whether someone saved this record meanwhile."""
    is_update = record_id is not None
    general = forms.general_block(kind, is_update=is_update)
    problems = forms.schema_problems(kind, record.data)
    if problems:
        return forms.errors_for_problems(
            kind, problems, is_update=is_update, new_source=record.new_source, hidden=hidden
        )
    editor = editor_of(deps)
    new_id = str(record.data.get("id"))
    try:
        _, current = editor.record_text(record_id or new_id)
    except UnknownRecordError:
        if is_update:
            return {general: t("slack_kb_unknown", language, error=f"{record_id} no longer exists")}
    else:
        if not is_update:
            return {"id": t("slack_kb_id_taken", language, id=new_id)}
        if current != base:
            later = editor.history(record_id, limit=1)
            return {general: conflict_text(ConflictError("changed", change=later[0] if later else None), language)}
    model = RECORD_TYPES[kind].model_validate(record.data)
    squashed = {d.meta.file: squash(d.text) for d in current_kb(deps).documents}
    try:
        check_sources(model, Path("(form)"), squashed)
    except RecordError as exc:
        return forms.errors_for_problems(
            kind, problems_of(exc), is_update=is_update, new_source=record.new_source, hidden=hidden
        )
    return {}


def _errors(ack: Ack, errors: dict[str, str]) -> None:
    ack(response_action="errors", errors=errors)


def submit_record(deps: Deps, ack: Ack, body: JSON, client: WebClient) -> None:
    view = body["view"]
    user = body["user"]["id"]
    meta = read_metadata(view)
    kind = meta.get("k")
    if kind not in forms.FORMS:
        ack()
        return
    record_id, base, hidden = meta.get("id"), meta.get("b"), list(meta.get("x") or [])
    language = meta.get("l") or "ja"
    is_update = record_id is not None
    general = forms.general_block(kind, is_update=is_update)
    if deps.editor is None:
        _errors(ack, {general: t("slack_kb_unavailable", language)})
        return
    if not deps.check_staff(user, attempted=f"save {kind} {record_id or '(new)'}"):
        _errors(ack, {general: t("slack_kb_refused", language)})
        return
    try:
        original = deps.editor.record_data(record_id)[0] if record_id is not None else None
        try:
            record = forms.record_from_form(kind, view["state"]["values"], original=original, hidden=hidden)
        except forms.FormError as exc:
            errors = forms.errors_for_problems(
                kind, forms.schema_problems(kind, exc.data), is_update=is_update, new_source=None, hidden=hidden
            )
            _errors(ack, {**errors, **exc.errors})
            return
        errors = _precheck(deps, kind, record, record_id=record_id, base=base, hidden=hidden, language=language)
    except UnknownRecordError as exc:
        errors = {general: t("slack_kb_unknown", language, error=str(exc))}
    except Exception as exc:  # noqa: BLE001 - the Slack edge: said on the form, with a reference
        reference = log_failure(deps.logger, what=f"checking a {kind} form", error=exc)
        errors = {general: t("slack_apology", language, ref=reference)}
    if errors:
        _errors(ack, errors)
        return
    ack()
    _save_after_ack(
        deps, client, user=user, kind=kind, record=record, base=base if is_update else None, language=language
    )


def _save_after_ack(
    deps: Deps, client: WebClient, *, user: str, kind: str, record: forms.FormRecord, base: str | None, language: str
) -> None:
    """The write itself; what it still refuses (someone saved in the last second) goes to the DM."""
    place = Place(channel=user, user_id=user)
    try:
        change = editor_of(deps).save_record(record.data, actor=actor_for(user), base=base)
    except ConflictError as exc:
        post(client, place, text=f":warning: {conflict_text(exc, language)}", logger=deps.logger)
        return
    except NothingToChangeError:
        post(
            client,
            place,
            text=t("slack_kb_nothing", language, error=escape_mrkdwn(str(record.data.get("id")))),
            logger=deps.logger,
        )
        return
    except RecordError as exc:
        lines = "\n".join(f"• `{escape_mrkdwn(p)}`: {escape_mrkdwn(forms.friendly(m))}" for p, _, m in problems_of(exc))
        post(client, place, text=t("slack_kb_failed", language, error="\n" + lines), logger=deps.logger)
        return
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(deps.logger, client, what=f"saving a {kind}", error=exc, place=place, language=language)
        return
    announce_change(deps, client, user=user, change=change, language=language)


# --- buttons --------------------------------------------------------------------------------------


def _teller(client: WebClient, body: JSON, respond: Respond) -> Callable[..., None]:
    """Replies to a button: in the message's place (ephemeral) or, on the App Home, by DM."""
    user = body["user"]["id"]

    def tell(text: str, blocks: list[JSON] | None = None) -> None:
        if body.get("response_url"):
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        else:
            client.chat_postMessage(channel=user, text=text, blocks=blocks, unfurl_links=False)

    return tell


def on_button(deps: Deps, ack: Ack, body: JSON, client: WebClient, respond: Respond) -> None:
    ack()
    user = body["user"]["id"]
    action = body["actions"][0]
    action_id, value = action.get("action_id"), str(action.get("value") or "")
    tell = _teller(client, body, respond)
    language = "ja"
    try:
        if deps.editor is None:
            tell(t("slack_kb_unavailable", language))
            return
        if not deps.check_staff(user, attempted=f"{action_id} {value}"):
            tell(t("slack_kb_refused", language))
            return
        editor = editor_of(deps)
        if action_id in (ids.KB_EDIT, ids.KB_RETIRE, ids.KB_RESTORE, ids.KB_HISTORY) and not RECORD_ID.match(value):
            raise ValueError(f"{value!r} is not a record id")
        if action_id == ids.KB_EDIT:
            open_record_form(
                deps,
                client,
                trigger_id=body.get("trigger_id"),
                kind=None,
                record_id=value,
                origin={"l": language},
                user=user,
            )
        elif action_id in (ids.KB_RETIRE, ids.KB_RESTORE):
            change = (editor.retire if action_id == ids.KB_RETIRE else editor.restore)(value, actor=actor_for(user))
            announce_change(deps, client, user=user, change=change, language=language)
        elif action_id == ids.KB_HISTORY:
            tell(
                "history",
                kb_blocks.history_blocks(
                    editor.history(value, limit=HISTORY_LIMIT + 1), record_id=value, limit=HISTORY_LIMIT
                ),
            )
        elif action_id == ids.KB_REVERT:
            change = editor.revert(int(value), actor=actor_for(user))
            announce_change(deps, client, user=user, change=change, language=language)
        elif action_id == ids.KB_DOCUMENT_EDIT:
            uploads.open_document_form(deps, client, trigger_id=body.get("trigger_id"), value=value)
        elif action_id == ids.KB_DOCUMENT_REPLACE:
            uploads.confirm_replace(deps, client, body, value=value, user=user)
    except Exception as exc:  # noqa: BLE001 - the Slack edge: only the staff member hears
        tell(failure_text(deps, exc, language, what=f"kb button {action_id}"))


def submit_document(deps: Deps, ack: Ack, body: JSON, client: WebClient) -> None:
    view = body["view"]
    user = body["user"]["id"]
    if deps.editor is None:
        _errors(ack, {"title": t("slack_kb_unavailable", "ja")})
        return
    if not deps.check_staff(user, attempted="save document details"):
        _errors(ack, {"title": t("slack_kb_refused", "ja")})
        return
    try:
        values = documents.document_from_form(view["state"]["values"])
    except forms.FormError as exc:
        _errors(ack, exc.errors)
        return
    ack()
    uploads.save_document_details(deps, client, user=user, meta=read_metadata(view), values=values)


def register(app: App, deps: Deps) -> None:
    app.view(ids.KB_RECORD_VIEW)(lambda ack, body, client: submit_record(deps, ack, body, client))
    app.view(ids.KB_DOCUMENT_VIEW)(lambda ack, body, client: submit_document(deps, ack, body, client))
    for action_id in (
        ids.KB_EDIT,
        ids.KB_RETIRE,
        ids.KB_RESTORE,
        ids.KB_HISTORY,
        ids.KB_REVERT,
        ids.KB_DOCUMENT_EDIT,
        ids.KB_DOCUMENT_REPLACE,
    ):
        app.action(action_id)(lambda ack, body, client, respond: on_button(deps, ack, body, client, respond))
