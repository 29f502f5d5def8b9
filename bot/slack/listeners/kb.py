"""`/kakehashi kb …` for staff: add and edit records in a form, retire, restore, show, history,
revert, stale, list; the record and document forms' submissions; and their buttons.

Every entry point checks staff again (opening a form, submitting it, clicking a button), since a
form can stay open while someone leaves the staff group. A submitted form is checked before it is
acknowledged (schema, quotes in their documents, a newer version of the record) so problems
show on their fields; the write and the re-index follow the acknowledgement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import curate, uploads
from bot.slack import kbforms as forms
from bot.slack.blocks import read_metadata
from bot.slack.deps import Deps, Place
from bot.slack.edge import log_failure, post, report_failure
from bot.slack.kbflow import (
    actor_for,
    announce_change,
    conflict_text,
    current_kb,
    editor_of,
    problems_of,
)
from bot.slack.locale import user_language
from bot.slack.messages import t
from bot.slack.text import escape_mrkdwn
from knowledge.errors import ConflictError, KnowledgeError, NothingToChangeError, RecordError, UnknownRecordError
from knowledge.freshness import stale_records
from knowledge.loader import check_sources
from knowledge.normalize import squash
from knowledge.schema import RECORD_ID, RECORD_TYPES
from retrieval.language import detect_language

SUBCOMMANDS = {
    "add": "add", "追加": "add", "new": "add",
    "edit": "edit", "編集": "edit", "更新": "edit", "update": "edit",
    "retire": "retire", "廃止": "retire",
    "restore": "restore", "復元": "restore",
    "show": "show", "表示": "show",
    "history": "history", "履歴": "history", "log": "history",
    "revert": "revert", "取り消し": "revert", "取消": "revert", "戻す": "revert",
    "stale": "stale", "鮮度": "stale", "古い": "stale",
    "list": "list", "一覧": "list", "ls": "list",
    "help": "help", "ヘルプ": "help", "使い方": "help",
}
KIND_WORDS = {"program": "program", "programs": "program", "制度": "program", "支援制度": "program",
              "vc": "vc", "vcs": "vc", "認定vc": "vc", "cdmo": "cdmo", "cdmos": "cdmo"}
USAGE = {
    "add": "`/kakehashi kb add program|vc|cdmo`",
    "edit": "`/kakehashi kb edit ID`",
    "retire": "`/kakehashi kb retire ID`",
    "restore": "`/kakehashi kb restore ID`",
    "show": "`/kakehashi kb show ID`",
    "revert": "`/kakehashi kb revert 変更番号`",
    "list": "`/kakehashi kb list [program|vc|cdmo]`",
    "help": "`/kakehashi kb help`",
}
HISTORY_LIMIT = 20


def parse_kb(text: str | None) -> tuple[str, list[str]]:
    """(subcommand, arguments) of the text after `kb`; unknown words give ("unknown", [word])."""
    words = (text or "").split()
    if not words:
        return "help", []
    sub = SUBCOMMANDS.get(words[0].lower())
    return (sub, words[1:]) if sub else ("unknown", words[:1])


def language_of(text: str | None) -> str:
    return detect_language(text or "") if text and text.strip() else "ja"


# --- the slash command ----------------------------------------------------------------------------


def acknowledge(deps: Deps, ack: Ack, command: dict[str, Any], rest: str) -> None:
    """Within Slack's three seconds: refuse non-staff at once, give help, or let the work follow."""
    language = language_of(rest)
    if deps.editor is None:
        ack(text=t("kb_unavailable", language))
        return
    if not deps.check_staff(command.get("user_id"), attempted=f"/kakehashi kb {rest}"):
        ack(text=t("kb_refused", language))
        return
    sub, _ = parse_kb(rest)
    if sub == "help":
        ack(text="/kakehashi kb", blocks=forms.kb_help_blocks())
    else:
        ack()


def work(deps: Deps, client: WebClient, command: dict[str, Any], rest: str, respond: Respond) -> None:
    """After the acknowledgement (a lazy listener): staff checked again, then the subcommand."""
    user = command["user_id"]
    if deps.editor is None or not deps.is_staff(user):
        return  # the acknowledgement already refused, and logged
    sub, args = parse_kb(rest)
    # "edit mhlw-mediso" says nothing about the staff member's language: their Slack locale does.
    language = user_language(deps, client, user)

    def say(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        respond(text=text, blocks=blocks, response_type="ephemeral")

    try:
        _run(deps, client, sub, args, user=user, language=language, say=say, trigger_id=command["trigger_id"],
             origin={"c": command["channel_id"], "l": language})
    except Exception as exc:  # noqa: BLE001 - the Slack edge: only the staff member hears
        say(_failure_text(deps, exc, language, what=f"/kakehashi kb {sub}"))


def _run(deps: Deps, client: WebClient, sub: str, args: list[str], *, user: str, language: str,
         say: Callable[..., None], trigger_id: str | None, origin: dict[str, Any]) -> None:
    editor = editor_of(deps)
    needs_arg = {"add", "edit", "retire", "restore", "show", "revert"}
    if sub in needs_arg and not args:
        say(t("kb_usage", language, usage=USAGE[sub]))
        return
    takes_id = sub in needs_arg - {"add", "revert"} or (sub == "history" and args)
    if takes_id and not RECORD_ID.match(args[0]):
        raise ValueError(f"{args[0]!r} is not a record id (lowercase letters, digits and hyphens)")
    if sub == "unknown":
        say(t("kb_usage", language, usage=USAGE["help"]), forms.kb_help_blocks())
    elif sub == "add":
        kind = KIND_WORDS.get(args[0].lower())
        if kind is None:
            say(t("kb_usage", language, usage=USAGE["add"]))
            return
        open_record_form(deps, client, trigger_id=trigger_id, kind=kind, record_id=None, origin=origin, user=user)
    elif sub == "edit":
        open_record_form(deps, client, trigger_id=trigger_id, kind=None, record_id=args[0], origin=origin, user=user)
    elif sub in ("retire", "restore"):
        change = (editor.retire if sub == "retire" else editor.restore)(args[0], actor=actor_for(user))
        announce_change(deps, client, user=user, change=change, language=language)
    elif sub == "show":
        text, _ = editor.record_text(args[0])
        data = yaml.safe_load(text) or {}
        title = str(data.get("name_ja") or data.get("name") or args[0])
        say(f"{args[0]}", forms.record_blocks(args[0], text, kind=str(data.get("kind")), title=title,
                                              status=str(data.get("status") or "active")))
    elif sub == "history":
        record_id = args[0] if args else None
        changes = editor.history(record_id, limit=HISTORY_LIMIT + 1)
        say("history", forms.history_blocks(changes, record_id=record_id, limit=HISTORY_LIMIT))
    elif sub == "revert":
        number = args[0].lstrip("#")
        if not number.isdigit():
            say(t("kb_usage", language, usage=USAGE["revert"]))
            return
        say(f"revert {number}?", forms.revert_prompt_blocks(editor.get_change(int(number))))
    elif sub == "stale":
        stale = stale_records(current_kb(deps), today=dt.date.today(), max_age_days=deps.settings.kb_stale_days)
        say(f"{len(stale)} stale", forms.stale_blocks(stale, max_age_days=deps.settings.kb_stale_days))
    elif sub == "list":
        kind = KIND_WORDS.get(args[0].lower()) if args else None
        if args and kind is None:
            say(t("kb_usage", language, usage=USAGE["list"]))
            return
        say("records", forms.list_blocks(current_kb(deps).records, kind=kind))


def open_record_form(deps: Deps, client: WebClient, *, trigger_id: str | None, kind: str | None,
                     record_id: str | None, origin: dict[str, Any], user: str) -> None:
    """The empty form for `kind`, or the form prefilled from `record_id` with its base hash."""
    editor = editor_of(deps)
    data, base = (None, None)
    if record_id is not None:
        data, base = editor.record_data(record_id)
        kind = str(data.get("kind"))
        if kind == "answer":  # a curated answer has its own form (bot/slack/curate.py)
            curate.open_edit(deps, client, trigger_id=trigger_id, user=user, data=data, base=base)
            return
    assert kind is not None
    kb = current_kb(deps)
    view = forms.record_modal(kind, data=data, base=base, documents=forms.document_choices(kb.documents),
                              certifications=forms.certification_choices(kb.vcs), origin=origin)
    client.views_open(trigger_id=trigger_id, view=view)


# --- the record form ------------------------------------------------------------------------------


def _precheck(deps: Deps, kind: str, record: forms.FormRecord, *, record_id: str | None, base: str | None,
              hidden: list[str], language: str) -> dict[str, str]:
    """What the editor would refuse, found before the acknowledgement so it shows on the fields:
    the schema, quotes against the documents, and whether someone saved this record meanwhile."""
    is_update = record_id is not None
    general = forms.general_block(kind, is_update=is_update)
    problems = forms.schema_problems(kind, record.data)
    if problems:
        return forms.errors_for_problems(kind, problems, is_update=is_update, new_source=record.new_source,
                                         hidden=hidden)
    editor = editor_of(deps)
    new_id = str(record.data.get("id"))
    try:
        _, current = editor.record_text(record_id or new_id)
    except UnknownRecordError:
        if is_update:
            return {general: t("kb_unknown", language, error=f"{record_id} no longer exists")}
    else:
        if not is_update:
            return {"id": t("kb_id_taken", language, id=new_id)}
        if current != base:
            later = editor.history(record_id, limit=1)
            return {general: conflict_text(ConflictError("changed", change=later[0] if later else None), language)}
    model = RECORD_TYPES[kind].model_validate(record.data)
    squashed = {d.meta.file: squash(d.text) for d in current_kb(deps).documents}
    try:
        check_sources(model, Path("(form)"), squashed)
    except RecordError as exc:
        return forms.errors_for_problems(kind, problems_of(exc), is_update=is_update, new_source=record.new_source,
                                         hidden=hidden)
    return {}


def _errors(ack: Ack, errors: dict[str, str]) -> None:
    ack(response_action="errors", errors=errors)


def submit_record(deps: Deps, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
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
        _errors(ack, {general: t("kb_unavailable", language)})
        return
    if not deps.check_staff(user, attempted=f"save {kind} {record_id or '(new)'}"):
        _errors(ack, {general: t("kb_refused", language)})
        return
    try:
        original = deps.editor.record_data(record_id)[0] if is_update else None
        try:
            record = forms.record_from_form(kind, view["state"]["values"], original=original, hidden=hidden)
        except forms.FormError as exc:
            errors = forms.errors_for_problems(kind, forms.schema_problems(kind, exc.data), is_update=is_update,
                                               new_source=None, hidden=hidden)
            _errors(ack, {**errors, **exc.errors})
            return
        errors = _precheck(deps, kind, record, record_id=record_id, base=base, hidden=hidden, language=language)
    except UnknownRecordError as exc:
        errors = {general: t("kb_unknown", language, error=str(exc))}
    except Exception as exc:  # noqa: BLE001 - the Slack edge: said on the form, with a reference
        reference = log_failure(deps.logger, what=f"checking a {kind} form", error=exc)
        errors = {general: t("apology", language, ref=reference)}
    if errors:
        _errors(ack, errors)
        return
    ack()
    _save_after_ack(deps, client, user=user, kind=kind, record=record, base=base if is_update else None,
                    language=language)


def _save_after_ack(deps: Deps, client: WebClient, *, user: str, kind: str, record: forms.FormRecord,
                    base: str | None, language: str) -> None:
    """The write itself; what it still refuses (someone saved in the last second) goes to the DM."""
    place = Place(channel=user, user_id=user)
    try:
        change = editor_of(deps).save_record(record.data, actor=actor_for(user), base=base)
    except ConflictError as exc:
        post(client, place, text=f":warning: {conflict_text(exc, language)}", logger=deps.logger)
        return
    except NothingToChangeError:
        post(client, place, text=t("kb_nothing", language, error=escape_mrkdwn(str(record.data.get("id")))),
             logger=deps.logger)
        return
    except RecordError as exc:
        lines = "\n".join(f"• `{escape_mrkdwn(p)}`: {escape_mrkdwn(forms.friendly(m))}" for p, _, m in problems_of(exc))
        post(client, place, text=t("kb_failed", language, error="\n" + lines), logger=deps.logger)
        return
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(deps.logger, client, what=f"saving a {kind}", error=exc, place=place, language=language)
        return
    announce_change(deps, client, user=user, change=change, language=language)


# --- buttons --------------------------------------------------------------------------------------


def _teller(client: WebClient, body: dict[str, Any], respond: Respond) -> Callable[..., None]:
    """Replies to a button: in the message's place (ephemeral) or, on the App Home, by DM."""
    user = body["user"]["id"]

    def tell(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        if body.get("response_url"):
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        else:
            client.chat_postMessage(channel=user, text=text, blocks=blocks, unfurl_links=False)

    return tell


def on_button(deps: Deps, ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    ack()
    user = body["user"]["id"]
    action = body["actions"][0]
    action_id, value = action.get("action_id"), str(action.get("value") or "")
    tell = _teller(client, body, respond)
    language = "ja"
    try:
        if deps.editor is None:
            tell(t("kb_unavailable", language))
            return
        if not deps.check_staff(user, attempted=f"{action_id} {value}"):
            tell(t("kb_refused", language))
            return
        editor = editor_of(deps)
        if action_id in (forms.EDIT, forms.RETIRE, forms.RESTORE, forms.HISTORY) and not RECORD_ID.match(value):
            raise ValueError(f"{value!r} is not a record id")
        if action_id == forms.EDIT:
            open_record_form(deps, client, trigger_id=body.get("trigger_id"), kind=None, record_id=value,
                             origin={"l": language}, user=user)
        elif action_id in (forms.RETIRE, forms.RESTORE):
            change = (editor.retire if action_id == forms.RETIRE else editor.restore)(value, actor=actor_for(user))
            announce_change(deps, client, user=user, change=change, language=language)
        elif action_id == forms.HISTORY:
            tell("history", forms.history_blocks(editor.history(value, limit=HISTORY_LIMIT + 1), record_id=value,
                                                 limit=HISTORY_LIMIT))
        elif action_id == forms.REVERT:
            change = editor.revert(int(value), actor=actor_for(user))
            announce_change(deps, client, user=user, change=change, language=language)
        elif action_id == forms.DOCUMENT_EDIT:
            uploads.open_document_form(deps, client, trigger_id=body.get("trigger_id"), value=value)
        elif action_id == forms.DOCUMENT_REPLACE:
            uploads.confirm_replace(deps, client, body, value=value, user=user)
    except Exception as exc:  # noqa: BLE001 - the Slack edge: only the staff member hears
        tell(_failure_text(deps, exc, language, what=f"kb button {action_id}"))


def submit_document(deps: Deps, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
    view = body["view"]
    user = body["user"]["id"]
    if deps.editor is None:
        _errors(ack, {"title": t("kb_unavailable", "ja")})
        return
    if not deps.check_staff(user, attempted="save document details"):
        _errors(ack, {"title": t("kb_refused", "ja")})
        return
    try:
        values = forms.document_from_form(view["state"]["values"])
    except forms.FormError as exc:
        _errors(ack, exc.errors)
        return
    ack()
    uploads.save_document_details(deps, client, user=user, meta=read_metadata(view), values=values)


def register(app: App, deps: Deps) -> None:
    app.view(forms.RECORD_VIEW)(lambda ack, body, client: submit_record(deps, ack, body, client))
    app.view(forms.DOCUMENT_VIEW)(lambda ack, body, client: submit_document(deps, ack, body, client))
    for action_id in (forms.EDIT, forms.RETIRE, forms.RESTORE, forms.HISTORY, forms.REVERT, forms.DOCUMENT_EDIT,
                      forms.DOCUMENT_REPLACE):
        app.action(action_id)(lambda ack, body, client, respond: on_button(deps, ack, body, client, respond))


def _failure_text(deps: Deps, exc: Exception, language: str, *, what: str) -> str:
    """What staff are told when a kb command or button fails: the editor's own words for what they can fix,
    an apology with a reference (and a log entry) for anything else."""
    if isinstance(exc, UnknownRecordError | ValueError):
        return t("kb_unknown", language, error=escape_mrkdwn(str(exc)))
    if isinstance(exc, NothingToChangeError):
        return t("kb_nothing", language, error=escape_mrkdwn(str(exc)))
    if isinstance(exc, KnowledgeError):
        return t("kb_failed", language, error=escape_mrkdwn(str(exc)))
    return t("apology", language, ref=log_failure(deps.logger, what=what, error=exc))
