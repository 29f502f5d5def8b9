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
from knowledge.editor import Actor, Change
from knowledge.freshness import StaleRecord
from knowledge.labels import label
from knowledge.loader import Record

KINDS = ("program", "vc", "cdmo")
ACTION_JA = {"add": "追加", "update": "更新", "retire": "廃止", "restore": "復元", "revert": "取り消し",
             "add-document": "資料の追加", "update-document": "資料の更新", "import": "取り込み"}
ACTION_EN = {"add": "Added", "update": "Updated", "retire": "Retired", "restore": "Restored", "revert": "Reverted",
             "add-document": "Added the document", "update-document": "Updated the document", "import": "Imported"}

def _when(moment: dt.datetime) -> str:
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def actor_text(actor: Actor) -> str:
    if getattr(actor, "via", "") == "slack" and re.fullmatch(r"[UW][A-Z0-9]+", str(actor.id)):
        return f"<@{actor.id}>"
    name = getattr(actor, "name", None) or actor.id
    return escape_mrkdwn(f"{name}（{getattr(actor, 'via', '')}）")


def change_line(change: Change) -> str:
    action = ACTION_JA.get(change.action, change.action)
    reverts = f" · 変更 #{change.reverts} の取り消し" if change.reverts else ""
    return (f"*#{change.id}* {escape_mrkdwn(action)} · {actor_text(change.actor)} · {_when(change.at)}{reverts}\n"
            f"{escape_mrkdwn(shorten(change.summary, 300))}")


def revert_button(change: Change) -> Block:
    return button("取り消す", KB_REVERT, str(change.id), confirm=confirm_dialog(
        f"変更 #{change.id} を取り消しますか？",
        f"{escape_mrkdwn(shorten(change.summary, 200))}\nこの変更の前の状態に戻します（取り消しも履歴に残ります）。",
        confirm="取り消す"))


def history_blocks(changes: Sequence[Change], *, record_id: str | None, limit: int = 20) -> list[Block]:
    what = f"`{escape_mrkdwn(record_id)}` の" if record_id else ""
    blocks: list[Block] = [section(f"*{what}変更履歴*（新しい順） / History, newest first")]
    if not changes:
        blocks.append(section("変更はまだありません。 / No changes yet."))
    for change in list(changes)[:limit]:
        blocks.append(section(change_line(change), accessory=revert_button(change)))
    if len(changes) > limit:
        blocks.append(context(f"ほか {len(changes) - limit} 件。`/kakehashi kb history ID` で記録ごとに見られます。"))
    return blocks[:MAX_MESSAGE_BLOCKS]


def revert_prompt_blocks(change: Change) -> list[Block]:
    files = ", ".join(f"`{escape_mrkdwn(f.path)}`" for f in change.files[:5])
    return [
        section(f"次の変更を取り消しますか？ / Revert this change?\n{change_line(change)}"),
        context(f"ファイル: {files}" if files else ""),
        actions([revert_button(change)], block_id="kk_kb_revert"),
    ]


def record_blocks(record_id: str, yaml_text: str, *, kind: str, title: str, status: str) -> list[Block]:
    retired = status == "retired"
    blocks: list[Block] = [
        section(f"*{escape_mrkdwn(title)}*\n{label('record_kind', kind)} · `{escape_mrkdwn(record_id)}`"
                 + (" · :no_entry: 廃止済み（おすすめしません） / retired" if retired else "")),
    ]
    pieces = split_for_sections(yaml_text.replace("```", "'''"), 2800)
    for piece in pieces[:6]:
        blocks.append(section(f"```{escape_mrkdwn(piece)}```"))
    if len(pieces) > 6:
        blocks.append(context("（長いため途中までです。全文はコマンドラインの `kakehashi kb show` で）"))
    elements = [button("編集", KB_EDIT, record_id, style="primary"), button("履歴", KB_HISTORY, record_id)]
    if retired:
        elements.append(button("復元", KB_RESTORE, record_id, confirm=confirm_dialog(
            "記録を復元しますか？", f"`{escape_mrkdwn(record_id)}` をふたたび回答とおすすめに使います。",
            confirm="復元", style="primary")))
    else:
        elements.append(button("廃止", KB_RETIRE, record_id, style="danger", confirm=confirm_dialog(
            "記録を廃止しますか？", f"`{escape_mrkdwn(record_id)}` は履歴に残りますが、おすすめしなくなります。",
            confirm="廃止")))
    blocks.append(actions(elements, block_id="kk_kb_record_actions"))
    return blocks


def list_blocks(records: Sequence[Record], *, kind: str | None) -> list[Block]:
    blocks: list[Block] = []
    for k in (kind,) if kind else KINDS:
        chosen = [r for r in records if r.kind == k]
        lines = [f"• `{escape_mrkdwn(r.id)}` {escape_mrkdwn(shorten(r.title, 60))}"
                 + (" :no_entry: 廃止" if r.status == "retired" else "") for r in chosen]
        blocks.append(section(f"*{label('record_kind', k)}*（{len(chosen)} 件）"))
        for piece in split_for_sections("\n".join(lines) or "（なし）"):
            blocks.append(section(piece))
    return blocks[:MAX_MESSAGE_BLOCKS]


def stale_lines(stale: Sequence[StaleRecord], *, limit: int) -> list[Block]:
    blocks: list[Block] = []
    for item in list(stale)[:limit]:
        record = item.record
        reasons = "；".join(escape_mrkdwn(r) for r in item.reasons)
        blocks.append(section(
            f"*{escape_mrkdwn(shorten(record.title, 80))}* `{escape_mrkdwn(record.id)}`\n{shorten(reasons, 600)}",
            accessory=button("更新", KB_EDIT, record.id)))
    return blocks


def stale_blocks(stale: Sequence[StaleRecord], *, max_age_days: int, limit: int = 40) -> list[Block]:
    blocks: list[Block] = [section(f"*更新が必要かもしれない記録*（{len(stale)} 件: 情報が {max_age_days} 日より古い、"
                                    "または公募の締切が過ぎている） / Records that may be out of date")]
    if not stale:
        blocks.append(section("ありません。すべての記録が新しい状態です。 / Nothing is out of date."))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(context(f"ほか {len(stale) - limit} 件"))
    return blocks[:MAX_MESSAGE_BLOCKS]


def home_freshness_blocks(stale: Sequence[StaleRecord], *, max_age_days: int, limit: int = 10) -> list[Block]:
    """The App Home section for staff: the most out-of-date records first, each with an update button."""
    blocks: list[Block] = [
        divider(),
        header("相談員向け: 知識の鮮度"),
        context(f"情報が {max_age_days} 日より古い記録と、公募の締切が過ぎた記録: {len(stale)} 件。"
                 "`/kakehashi kb stale` で一覧、`/kakehashi kb help` で使い方。"),
    ]
    if not stale:
        blocks.append(section("更新が必要な記録はありません。"))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(context(f"ほか {len(stale) - limit} 件は `/kakehashi kb stale` で"))
    return blocks


def kb_help_blocks() -> list[Block]:
    return [
        section("*ナレッジの編集（相談員のみ） / Editing the knowledge base (staff only)*"),
        section("• `/kakehashi kb add program|vc|cdmo` — 新しい記録をフォームで追加\n"
                 "• `/kakehashi kb edit ID` — 記録を編集（現在の内容が入ったフォーム）\n"
                 "• `/kakehashi kb show ID` — 記録の内容\n"
                 "• `/kakehashi kb retire ID` / `restore ID` — 廃止（履歴に残し、おすすめしない）／復元\n"
                 "• `/kakehashi kb history [ID]` — 変更履歴（誰が・いつ・何を）\n"
                 "• `/kakehashi kb revert 変更番号` — 変更を取り消す\n"
                 "• `/kakehashi kb stale` — 古くなった記録\n"
                 "• `/kakehashi kb list [program|vc|cdmo]` — 記録の一覧\n"
                 "• 相談員チャンネルかボットとのDMに PDF・Word（.docx）・Markdown・テキストを投稿すると、"
                 "資料として追加され、すぐに回答に使われます。"),
        context("日本語でも: `kb 追加 制度`・`kb 編集 ID`・`kb 廃止 ID`・`kb 復元 ID`・`kb 表示 ID`・`kb 履歴`・"
                 "`kb 取り消し 12`・`kb 鮮度`・`kb 一覧`"),
    ]


def change_done_text(change: Change, *, searchable: str, language: str = "ja") -> str:
    summary = escape_mrkdwn(shorten(change.summary, 300))
    if language != "ja":
        action = ACTION_EN.get(change.action, change.action)
        return f":white_check_mark: {action} (change *#{change.id}*): {summary}\n{searchable}"
    action = ACTION_JA.get(change.action, change.action)
    return f":white_check_mark: {escape_mrkdwn(action)}しました（変更 *#{change.id}*）: {summary}\n{searchable}"
