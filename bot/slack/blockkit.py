"""The one set of Block Kit helpers every feature builds its messages, modals and Home tab from.

Each helper makes one Block Kit object and enforces Slack's documented limit for it, so a builder
cannot produce JSON Slack refuses: a plain_text object is cut with an ellipsis to the limit of the
field it fills (button and option text 75, modal title/submit/close 24, confirm button 30, confirm
title 100, header and placeholder 150, input label and hint 2,000); mrkdwn in a section or context
is cut at 3,000 characters. Callers shorten user text for reading before; these cuts only guard
Slack's limits. Builders are pure: nothing here calls Slack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from bot.slack.text import shorten

JSON = dict[str, Any]  # Slack's JSON as it arrives or leaves: payloads, views, state values
Block = JSON  # one Block Kit block, element or composition object

# Slack's limits (Block Kit reference).
BUTTON_TEXT = 75
OPTION_TEXT = 75
OPTION_VALUE = 150
BUTTON_VALUE = 2000
MODAL_TITLE = 24  # also submit and close
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
HEADER_TEXT = 150
PLACEHOLDER = 150
LABEL = 2000  # input labels and hints
MRKDWN_TEXT = 3000  # section and context text
CONTEXT_ELEMENTS = 10
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
MAX_OPTIONS = 100  # static selects
MAX_CHECKBOXES = 10
MAX_INPUT_CHARS = 3000  # plain_text_input max_length
PRIVATE_METADATA = 3000


def plain_text(text: str, limit: int = BUTTON_TEXT, *, emoji: bool = True) -> Block:
    """A plain_text object, cut with an ellipsis to `limit` (the limit of the field it fills)."""
    return {"type": "plain_text", "text": shorten(text, limit) if len(text) > limit else text, "emoji": emoji}


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text[:MRKDWN_TEXT]}


def section(text: str, **extra: Any) -> Block:
    """A section of mrkdwn text; `extra` adds e.g. an accessory."""
    return {"type": "section", "text": mrkdwn(text), **extra}


def fields_section(*fields: str) -> Block:
    return {"type": "section", "fields": [mrkdwn(f) for f in fields]}


def context(*texts: str) -> Block:
    """A context block of mrkdwn lines; empty lines are left out."""
    return {"type": "context", "elements": [mrkdwn(x) for x in texts if x][:CONTEXT_ELEMENTS]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain_text(text, HEADER_TEXT)}


def divider() -> Block:
    return {"type": "divider"}


def actions(elements: Sequence[Block], *, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions"}
    if block_id:
        block["block_id"] = block_id
    block["elements"] = list(elements)
    return block


def confirm_dialog(title: str, text: str, *, confirm: str, deny: str = "キャンセル", style: str = "danger") -> Block:
    return {
        "title": plain_text(title, CONFIRM_TITLE),
        "text": mrkdwn(text[:CONFIRM_TEXT]),
        "confirm": plain_text(confirm, CONFIRM_BUTTON),
        "deny": plain_text(deny, CONFIRM_BUTTON),
        "style": style,
    }


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: Block | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "text": plain_text(text, BUTTON_TEXT),
        "action_id": action_id,
        "value": value[:BUTTON_VALUE],
    }
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    if confirm:
        element["confirm"] = confirm
    return element


def option(text: str, value: str) -> Block:
    """An option object: what the user reads, then the value we get back (Slack's field order)."""
    return {"text": plain_text(text, OPTION_TEXT), "value": value[:OPTION_VALUE]}


def text_input(*, max_length: int, multiline: bool | None = None, initial: str = "", placeholder: str = "") -> Block:
    """A plain_text_input; `multiline` None leaves Slack's default (one line) unsaid."""
    element: Block = {"type": "plain_text_input", "action_id": "value"}
    if multiline is not None:
        element["multiline"] = multiline
    element["max_length"] = max_length
    if placeholder:
        element["placeholder"] = plain_text(placeholder, PLACEHOLDER)
    if initial:
        element["initial_value"] = initial[:max_length]
    return element


def static_select(options: Sequence[Block], *, placeholder: str = "選択してください", multi: bool = False) -> Block:
    return {
        "type": "multi_static_select" if multi else "static_select",
        "action_id": "value",
        "placeholder": plain_text(placeholder, PLACEHOLDER),
        "options": list(options)[:MAX_OPTIONS],
    }


def datepicker(*, placeholder: str = "日付を選ぶ", initial: str = "") -> Block:
    element: Block = {"type": "datepicker", "action_id": "value", "placeholder": plain_text(placeholder, PLACEHOLDER)}
    if initial:
        element["initial_date"] = initial  # YYYY-MM-DD
    return element


def checkboxes(options: Sequence[Block]) -> Block:
    return {"type": "checkboxes", "action_id": "value", "options": list(options)[:MAX_CHECKBOXES]}


def input_block(block_id: str, label: str, element: Block, *, optional: bool | None = None, hint: str = "") -> Block:
    """An input block; `optional` None leaves Slack's default (required) unsaid."""
    block: Block = {"type": "input", "block_id": block_id}
    if optional is not None:
        block["optional"] = optional
    block["label"] = plain_text(label, LABEL)
    block["element"] = element
    if hint:
        block["hint"] = plain_text(hint, LABEL)
    return block


def modal(
    *,
    title: str,
    blocks: Sequence[Block],
    close: str,
    submit: str | None = None,
    callback_id: str | None = None,
    private_metadata: JSON | None = None,
) -> Block:
    view: Block = {"type": "modal"}
    if callback_id:
        view["callback_id"] = callback_id
    if private_metadata is not None:
        view["private_metadata"] = json_metadata(private_metadata)
    view["title"] = plain_text(title, MODAL_TITLE)
    if submit:
        view["submit"] = plain_text(submit, MODAL_TITLE)
    view["close"] = plain_text(close, MODAL_TITLE)
    view["blocks"] = list(blocks)[:MAX_VIEW_BLOCKS]
    return view


def safe_url(url: str | None) -> str | None:
    """A link we may put in mrkdwn or a button: http(s), no characters that would break the markup."""
    if not url or not re.match(r"^https?://[^\s<>|]+$", url):
        return None
    return url


def json_metadata(data: JSON) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(text) > PRIVATE_METADATA:
        raise ValueError("private_metadata over Slack's 3,000 characters")
    return text


def read_metadata(view: JSON) -> JSON:
    """What a modal of ours carried in private_metadata; {} when it is missing or not ours."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def picked(state_values: JSON, block_id: str) -> JSON:
    """The submitted state of an input block's element (our elements all use action_id "value")."""
    value = (state_values.get(block_id) or {}).get("value") or {}
    return value if isinstance(value, dict) else {}
