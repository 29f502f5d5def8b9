"""`/kakehashi kb …` for staff: add and edit records in a form, retire, restore, show, history,
revert, stale, list. Every entry point checks staff again (a form can stay open while someone
leaves the staff group); the forms' submissions and buttons are in kb/listeners.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import yaml
from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from bot.slack.blockkit import JSON
from bot.slack.deps import Deps
from bot.slack.edge import log_failure
from bot.slack.handoff import curate
from bot.slack.kb import blocks as kb_blocks
from bot.slack.kb import forms
from bot.slack.kb.flow import (
    actor_for,
    announce_change,
    current_kb,
    editor_of,
)
from bot.slack.locale import user_language
from bot.slack.text import command_words, escape_mrkdwn
from knowledge.errors import KnowledgeError, NothingToChangeError, UnknownRecordError
from knowledge.freshness import stale_records
from knowledge.schema import RECORD_ID
from prompts.messages import t
from retrieval.language import detect_language

SUBCOMMANDS = command_words(
    "slack_kb_words_", ("add", "edit", "retire", "restore", "show", "history", "revert", "stale", "list", "help")
)
KIND_WORDS = command_words("slack_kb_kind_words_", ("program", "vc", "cdmo"))
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


def acknowledge(deps: Deps, ack: Ack, command: JSON, rest: str) -> None:
    """Within Slack's three seconds: refuse non-staff at once, give help, or let the work follow."""
    language = language_of(rest)
    if deps.editor is None:
        ack(text=t("slack_kb_unavailable", language))
        return
    if not deps.check_staff(command.get("user_id"), attempted=f"/kakehashi kb {rest}"):
        ack(text=t("slack_kb_refused", language))
        return
    sub, _ = parse_kb(rest)
    if sub == "help":
        ack(text="/kakehashi kb", blocks=kb_blocks.kb_help_blocks())
    else:
        ack()


def work(deps: Deps, client: WebClient, command: JSON, rest: str, respond: Respond) -> None:
    """After the acknowledgement (a lazy listener): staff checked again, then the subcommand."""
    user = command["user_id"]
    if deps.editor is None or not deps.is_staff(user):
        return  # the acknowledgement already refused, and logged
    sub, args = parse_kb(rest)
    # "edit mhlw-mediso" says nothing about the staff member's language: their Slack locale does.
    language = user_language(deps, client, user)

    def say(text: str, blocks: list[JSON] | None = None) -> None:
        respond(text=text, blocks=blocks, response_type="ephemeral")

    try:
        _run(
            deps,
            client,
            sub,
            args,
            user=user,
            language=language,
            say=say,
            trigger_id=command["trigger_id"],
            origin={"c": command["channel_id"], "l": language},
        )
    except Exception as exc:  # noqa: BLE001 - the Slack edge: only the staff member hears
        say(failure_text(deps, exc, language, what=f"/kakehashi kb {sub}"))


def _run(
    deps: Deps,
    client: WebClient,
    sub: str,
    args: list[str],
    *,
    user: str,
    language: str,
    say: Callable[..., None],
    trigger_id: str | None,
    origin: JSON,
) -> None:
    editor = editor_of(deps)
    needs_arg = {"add", "edit", "retire", "restore", "show", "revert"}
    if sub in needs_arg and not args:
        say(t("slack_kb_usage", language, usage=t("slack_kb_usage_" + sub, language)))
        return
    takes_id = sub in needs_arg - {"add", "revert"} or (sub == "history" and args)
    if takes_id and not RECORD_ID.match(args[0]):
        raise ValueError(f"{args[0]!r} is not a record id (lowercase letters, digits and hyphens)")
    if sub == "unknown":
        say(t("slack_kb_usage", language, usage=t("slack_kb_usage_help", language)), kb_blocks.kb_help_blocks())
    elif sub == "add":
        kind = KIND_WORDS.get(args[0].lower())
        if kind is None:
            say(t("slack_kb_usage", language, usage=t("slack_kb_usage_add", language)))
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
        say(
            f"{args[0]}",
            kb_blocks.record_blocks(
                args[0], text, kind=str(data.get("kind")), title=title, status=str(data.get("status") or "active")
            ),
        )
    elif sub == "history":
        record_id = args[0] if args else None
        changes = editor.history(record_id, limit=HISTORY_LIMIT + 1)
        say("history", kb_blocks.history_blocks(changes, record_id=record_id, limit=HISTORY_LIMIT))
    elif sub == "revert":
        number = args[0].lstrip("#")
        if not number.isdigit():
            say(t("slack_kb_usage", language, usage=t("slack_kb_usage_revert", language)))
            return
        say(f"revert {number}?", kb_blocks.revert_prompt_blocks(editor.get_change(int(number))))
    elif sub == "stale":
        stale = stale_records(current_kb(deps), today=dt.date.today(), max_age_days=deps.settings.kb.stale_days)
        say(f"{len(stale)} stale", kb_blocks.stale_blocks(stale, max_age_days=deps.settings.kb.stale_days))
    elif sub == "list":
        kind = KIND_WORDS.get(args[0].lower()) if args else None
        if args and kind is None:
            say(t("slack_kb_usage", language, usage=t("slack_kb_usage_list", language)))
            return
        say("records", kb_blocks.list_blocks(current_kb(deps).records, kind=kind))


def open_record_form(
    deps: Deps,
    client: WebClient,
    *,
    trigger_id: str | None,
    kind: str | None,
    record_id: str | None,
    origin: JSON,
    user: str,
) -> None:
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
    view = forms.record_modal(
        kind,
        data=data,
        base=base,
        documents=forms.document_choices(kb.documents),
        certifications=forms.certification_choices(kb.vcs),
        origin=origin,
    )
    client.views_open(trigger_id=trigger_id, view=view)


# --- the record form ------------------------------------------------------------------------------


def failure_text(deps: Deps, exc: Exception, language: str, *, what: str) -> str:
    """What staff are told when a kb command or button fails: the editor's own words for what they can fix,
    an apology with a reference (and a log entry) for anything else."""
    if isinstance(exc, UnknownRecordError | ValueError):
        return t("slack_kb_unknown", language, error=escape_mrkdwn(str(exc)))
    if isinstance(exc, NothingToChangeError):
        return t("slack_kb_nothing", language, error=escape_mrkdwn(str(exc)))
    if isinstance(exc, KnowledgeError):
        return t("slack_kb_failed", language, error=escape_mrkdwn(str(exc)))
    return t("slack_apology", language, ref=log_failure(deps.logger, what=what, error=exc))
