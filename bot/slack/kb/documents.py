"""The form for an uploaded document's details (what citations show: title, ministry, date, description)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TypedDict

from bot.slack.blockkit import JSON, Block, context, input_block, modal, picked, text_input
from bot.slack.ids import KB_DOCUMENT_VIEW
from bot.slack.kb.forms import MINISTRIES, FormError, FormField, element
from bot.slack.text import escape_mrkdwn
from prompts.messages import t


class DocumentDetails(TypedDict):
    title: str
    ministry: str
    date: dt.date
    description_ja: str


def _t(key: str, **values: object) -> str:
    return t(f"slack_kb_doc_{key}", "ja", **values)


def document_modal(
    *,
    file: str,
    title: str,
    ministry: str | None,
    date: dt.date | str | None,
    description: str | None,
    doc_id: str | None,
    origin: JSON | None = None,
) -> Block:
    """Details of an uploaded document (what citations show): title, ministry, date, description."""
    ministry_field = FormField("ministry", "select", _t("field_ministry"), required=True, choices=MINISTRIES)
    date_field = FormField("date", "date", _t("field_date"), required=True)
    return modal(
        callback_id=KB_DOCUMENT_VIEW,
        private_metadata={"f": file, "d": doc_id, **(origin or {})},
        title=_t("title"),
        submit=t("slack_kb_save", "ja"),
        close=t("slack_cancel", "ja"),
        blocks=[
            context(_t("intro", file=escape_mrkdwn(file))),
            input_block("title", _t("field_title"), text_input(max_length=300, initial=title)),
            input_block(
                "ministry", ministry_field.label, element(ministry_field, ministry, documents=(), certifications=())
            ),
            input_block("date", date_field.label, element(date_field, date, documents=(), certifications=())),
            input_block(
                "description_ja",
                _t("field_description"),
                text_input(max_length=2000, multiline=True, initial=description or ""),
                optional=True,
            ),
        ],
    )


def document_from_form(state_values: JSON) -> DocumentDetails:
    """title, ministry, date (a date), description_ja; raises FormError for a missing title or date."""
    title = (picked(state_values, "title").get("value") or "").strip()
    ministry = (picked(state_values, "ministry").get("selected_option") or {}).get("value")
    date_text = picked(state_values, "date").get("selected_date")
    description = (picked(state_values, "description_ja").get("value") or "").strip()  # "" clears it
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = _t("no_title")
    if not ministry:
        errors["ministry"] = _t("no_ministry")
    date = None
    with contextlib.suppress(ValueError):
        date = dt.date.fromisoformat(date_text) if date_text else None
    if date is None:
        errors["date"] = _t("no_date")
    if errors or ministry is None or date is None:
        raise FormError(errors)
    return {"title": title, "ministry": ministry, "date": date, "description_ja": description}
