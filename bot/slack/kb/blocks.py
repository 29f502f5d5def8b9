"""The knowledge editor's staff messages: a record shown, its history and revert, the list, the stale
records (also on the App Home), help, and what a change did."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from bot.slack.blockkit import (
    MAX_MESSAGE_BLOCKS,
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    divider,
    header,
    section,
)
from bot.slack.ids import KB_EDIT, KB_HISTORY, KB_RESTORE, KB_RETIRE, KB_REVERT
from bot.slack.text import escape_mrkdwn, shorten, split_for_sections
from knowledge.freshness import StaleRecord
from knowledge.journal import Actor, Change
from knowledge.labels import label
from knowledge.loader import Record
from prompts.messages import MESSAGES, t

KINDS = ("program", "vc", "cdmo")


def _t(key: str, **values: object) -> str:
    """Staff messages are in Japanese (with English where staff may not read it)."""
    return t(f"slack_kb_{key}", "ja", **values)


def _when(moment: dt.datetime) -> str:
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def action_label(action: str, language: str = "ja") -> str:
    key = f"slack_kb_action_{action}"
    return t(key, language) if key in MESSAGES else action


def actor_text(actor: Actor) -> str:
    if actor.via == "slack" and re.fullmatch(r"[UW][A-Z0-9]+", str(actor.id)):
        return f"<@{actor.id}>"
    return escape_mrkdwn(f"{actor.name or actor.id}（{actor.via}）")


def change_line(change: Change) -> str:
    reverts = _t("reverts", change=change.reverts) if change.reverts else ""
    return (
        f"*#{change.id}* {escape_mrkdwn(action_label(change.action))} · {actor_text(change.actor)} · "
        f"{_when(change.at)}{reverts}\n{escape_mrkdwn(shorten(change.summary, 300))}"
    )


def revert_button(change: Change) -> Block:
    return button(
        _t("revert_button"),
        KB_REVERT,
        str(change.id),
        confirm=confirm_dialog(
            _t("revert_title", change=change.id),
            _t("revert_text", summary=escape_mrkdwn(shorten(change.summary, 200))),
            confirm=_t("revert_button"),
        ),
    )


def history_blocks(changes: Sequence[Change], *, record_id: str | None, limit: int = 20) -> list[Block]:
    what = _t("history_of", id=escape_mrkdwn(record_id)) if record_id else ""
    blocks: list[Block] = [section(_t("history_title", what=what))]
    if not changes:
        blocks.append(section(_t("history_none")))
    for change in list(changes)[:limit]:
        blocks.append(section(change_line(change), accessory=revert_button(change)))
    if len(changes) > limit:
        blocks.append(context(_t("history_more", n=len(changes) - limit)))
    return blocks[:MAX_MESSAGE_BLOCKS]


def revert_prompt_blocks(change: Change) -> list[Block]:
    files = ", ".join(f"`{escape_mrkdwn(f.path)}`" for f in change.files[:5])
    return [
        section(_t("revert_prompt", line=change_line(change))),
        context(_t("files", files=files) if files else ""),
        actions([revert_button(change)], block_id="kk_kb_revert"),
    ]


def record_blocks(record_id: str, yaml_text: str, *, kind: str, title: str, status: str) -> list[Block]:
    retired = status == "retired"
    blocks: list[Block] = [
        section(
            f"*{escape_mrkdwn(title)}*\n{label('record_kind', kind)} · `{escape_mrkdwn(record_id)}`"
            + (_t("retired_mark") if retired else "")
        ),
    ]
    pieces = split_for_sections(yaml_text.replace("```", "'''"), 2800)
    for piece in pieces[:6]:
        blocks.append(section(f"```{escape_mrkdwn(piece)}```"))
    if len(pieces) > 6:
        blocks.append(context(_t("show_cut")))
    elements = [
        button(_t("edit_button"), KB_EDIT, record_id, style="primary"),
        button(_t("history_button"), KB_HISTORY, record_id),
    ]
    shown_id = escape_mrkdwn(record_id)
    if retired:
        elements.append(
            button(
                _t("restore_button"),
                KB_RESTORE,
                record_id,
                confirm=confirm_dialog(
                    _t("restore_title"), _t("restore_text", id=shown_id), confirm=_t("restore_button"), style="primary"
                ),
            )
        )
    else:
        elements.append(
            button(
                _t("retire_button"),
                KB_RETIRE,
                record_id,
                style="danger",
                confirm=confirm_dialog(_t("retire_title"), _t("retire_text", id=shown_id), confirm=_t("retire_button")),
            )
        )
    blocks.append(actions(elements, block_id="kk_kb_record_actions"))
    return blocks


def list_blocks(records: Sequence[Record], *, kind: str | None) -> list[Block]:
    blocks: list[Block] = []
    for k in (kind,) if kind else KINDS:
        chosen = [r for r in records if r.kind == k]
        lines = [
            f"• `{escape_mrkdwn(r.id)}` {escape_mrkdwn(shorten(r.title, 60))}"
            + (_t("list_retired") if r.status == "retired" else "")
            for r in chosen
        ]
        blocks.append(section(_t("list_heading", kind=label("record_kind", k), n=len(chosen))))
        for piece in split_for_sections("\n".join(lines) or _t("list_none")):
            blocks.append(section(piece))
    return blocks[:MAX_MESSAGE_BLOCKS]


def stale_lines(stale: Sequence[StaleRecord], *, limit: int) -> list[Block]:
    blocks: list[Block] = []
    for item in list(stale)[:limit]:
        record = item.record
        reasons = "；".join(escape_mrkdwn(r) for r in item.reasons)
        blocks.append(
            section(
                f"*{escape_mrkdwn(shorten(record.title, 80))}* `{escape_mrkdwn(record.id)}`\n{shorten(reasons, 600)}",
                accessory=button(_t("update_button"), KB_EDIT, record.id),
            )
        )
    return blocks


def stale_blocks(stale: Sequence[StaleRecord], *, max_age_days: int, limit: int = 40) -> list[Block]:
    blocks: list[Block] = [section(_t("stale_title", n=len(stale), days=max_age_days))]
    if not stale:
        blocks.append(section(_t("stale_none")))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(context(_t("more", n=len(stale) - limit)))
    return blocks[:MAX_MESSAGE_BLOCKS]


def home_freshness_blocks(stale: Sequence[StaleRecord], *, max_age_days: int, limit: int = 10) -> list[Block]:
    """The App Home section for staff: the most out-of-date records first, each with an update button."""
    blocks: list[Block] = [
        divider(),
        header(_t("freshness_title")),
        context(_t("freshness_intro", days=max_age_days, n=len(stale))),
    ]
    if not stale:
        blocks.append(section(_t("freshness_none")))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(context(_t("freshness_more", n=len(stale) - limit)))
    return blocks


def kb_help_blocks() -> list[Block]:
    return [section(_t("help_title")), section(_t("help_commands")), context(_t("help_japanese"))]


def change_done_text(change: Change, *, searchable: str, language: str = "ja") -> str:
    language = "ja" if language == "ja" else "en"
    return t(
        "slack_kb_change_done",
        language,
        action=escape_mrkdwn(action_label(change.action, language)),
        change=change.id,
        summary=escape_mrkdwn(shorten(change.summary, 300)),
        searchable=searchable,
    )
