"""The form for an uploaded document's details (what citations show: title, ministry, date, description)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TypedDict

from bot.slack.blockkit import JSON, Block, context, input_block, modal, picked, text_input
from bot.slack.ids import KB_DOCUMENT_VIEW
from bot.slack.kb.forms import MINISTRIES, FormError, FormField, element
from bot.slack.text import escape_mrkdwn


class DocumentDetails(TypedDict):
    title: str
    ministry: str
    date: dt.date
    description_ja: str


def document_modal(*, file: str, title: str, ministry: str | None, date: dt.date | None, description: str | None,
                   doc_id: str | None, origin: JSON | None = None) -> Block:
    """Details of an uploaded document (what citations show): title, ministry, date, description."""
    ministry_field = FormField("ministry", "select", "発行府省", required=True, choices=MINISTRIES)
    date_field = FormField("date", "date", "資料の日付", required=True)
    return modal(
        callback_id=KB_DOCUMENT_VIEW, private_metadata={"f": file, "d": doc_id, **(origin or {})},
        title="資料の情報", submit="保存", close="キャンセル",
        blocks=[
            context(f"資料 `{escape_mrkdwn(file)}` の情報を編集します。回答の出典にはこの題名が表示されます。"),
            input_block("title", "題名", text_input(max_length=300, initial=title)),
            input_block("ministry", "発行府省", element(ministry_field, ministry, documents=(), certifications=())),
            input_block("date", "資料の日付", element(date_field, date, documents=(), certifications=())),
            input_block("description_ja", "説明", text_input(max_length=2000, multiline=True, initial=description or ""),
                        optional=True),
        ])


def document_from_form(state_values: JSON) -> DocumentDetails:
    """title, ministry, date (a date), description_ja; raises FormError for a missing title or date."""
    title = (picked(state_values, "title").get("value") or "").strip()
    ministry = (picked(state_values, "ministry").get("selected_option") or {}).get("value")
    date_text = picked(state_values, "date").get("selected_date")
    description = (picked(state_values, "description_ja").get("value") or "").strip()  # "" clears it
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "題名を入力してください / Enter a title"
    if not ministry:
        errors["ministry"] = "発行府省を選んでください / Choose the ministry"
    date = None
    with contextlib.suppress(ValueError):
        date = dt.date.fromisoformat(date_text) if date_text else None
    if date is None:
        errors["date"] = "資料の日付を選んでください / Choose the document's date"
    if errors or ministry is None or date is None:
        raise FormError(errors)
    return {"title": title, "ministry": ministry, "date": date, "description_ja": description}
