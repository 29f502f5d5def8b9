"""The knowledge editor in Slack: one modal per record kind (prefilled for updates), the submitted
values turned back into a record dict, the editor's problems put on the right form field, and the
staff-only messages (show, history, list, stale). Pure builders and parsers: nothing here calls
Slack or writes a file.

Block ids are the record's field names, so a problem the editor reports on `summary_ja` or
`rounds[2].closes` lands on the block of that name; what the form does not show (budgets,
requirements, investments, earlier sources, notes) is carried over from the record untouched.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from bot.slack.blocks import button, json_metadata
from bot.slack.text import escape_mrkdwn, shorten, split_for_sections
from knowledge.normalize import nfkc
from knowledge.schema import (
    RECORD_TYPES,
    Applicant,
    DiseaseArea,
    Ministry,
    Modality,
    ProgramCategory,
    Stage,
    Support,
)
from retrieval.chunking import APPLICANT_JA, DISEASE_JA, MINISTRY_JA, MODALITY_JA, STAGE_JA, SUPPORT_JA

Block = dict[str, Any]

# callback_id / action_id values the kb listeners register on.
RECORD_VIEW = "kk_kb_record_view"
DOCUMENT_VIEW = "kk_kb_document_view"
EDIT = "kk_kb_edit"
RETIRE = "kk_kb_retire"
RESTORE = "kk_kb_restore"
HISTORY = "kk_kb_history"
REVERT = "kk_kb_revert"
DOCUMENT_EDIT = "kk_kb_document_edit"
DOCUMENT_REPLACE = "kk_kb_document_replace"

KINDS = ("program", "vc", "cdmo")
KIND_JA = {"program": "支援制度", "vc": "認定VC", "cdmo": "CDMO"}
CATEGORY_JA = {"program": "事業・制度", "fund": "基金", "tax": "税制", "consultation": "相談窓口",
               "policy": "政策・会議体"}
ACTION_JA = {"add": "追加", "update": "更新", "retire": "廃止", "restore": "復元", "revert": "取り消し",
             "add-document": "資料の追加", "update-document": "資料の更新", "import": "取り込み"}
ACTION_EN = {"add": "Added", "update": "Updated", "retire": "Retired", "restore": "Restored", "revert": "Reverted",
             "add-document": "Added the document", "update-document": "Updated the document", "import": "Imported"}

# Slack's limits (Block Kit reference): views hold 100 blocks, messages 50, a select 100 options,
# a text input 3,000 characters, an option's text 75 and its value 150.
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
MAX_OPTIONS = 100
MAX_INPUT_CHARS = 3000
MAX_OPTION_VALUE = 150
MAX_ERROR_CHARS = 500

_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
NO_CHOICE = "-"  # the one option of a select that has nothing to offer
_PATH = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?(?:\.([A-Za-z_]+))?")


class FormError(Exception):
    """The form is filled in wrongly before any record exists: block id -> message."""

    def __init__(self, errors: dict[str, str], *, data: dict[str, Any] | None = None) -> None:
        self.errors = errors
        self.data = data or {}  # the record as far as the form could be read, to check the rest of it
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class DocumentChoice:
    """A source document a new fact may cite (from the knowledge base's document manifest)."""

    file: str
    title: str
    date: dt.date | None = None


@dataclass(frozen=True)
class Certification:
    list_title: str
    document: str

    @property
    def value(self) -> str:
        return f"{self.document}|{self.list_title}"


@dataclass(frozen=True)
class FormField:
    """One input of a form; `block` is also the record field it edits (see module doc)."""

    block: str
    widget: str  # text | textarea | url | select | multi | date | lines | certs | doc
    label: str
    required: bool = False
    hint: str | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for select / multi
    placeholder: str | None = None
    new_only: bool = False  # shown only when adding (the id)
    max_length: int = MAX_INPUT_CHARS


def _enum_choices(values: Iterable[StrEnum], labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((v.value, f"{labels.get(v.value, v.value)} ({v.value})") for v in values)


_MINISTRIES = _enum_choices(Ministry, MINISTRY_JA)
_SOURCE_HINT_NEW = "根拠となる資料と、その資料からそのまま写した一節。すべての事実は出典をたどれる必要があります。"
_SOURCE_HINT_UPDATE = "変更した事実の根拠（任意）。入力すると出典に追加されます。"
_ID_HINT = "英小文字・数字・ハイフン（例: mhlw-new-program）。あとから変えられません。"

FORMS: dict[str, tuple[FormField, ...]] = {
    "program": (
        FormField("id", "text", "ID", required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name_ja", "text", "名称（日本語）", required=True, max_length=300),
        FormField("name_en", "text", "名称（英語）", max_length=300),
        FormField("aliases", "lines", "略称・別名（1行に1つ）", max_length=1000),
        FormField("ministry", "select", "所管府省", required=True, choices=_MINISTRIES),
        FormField("agency", "select", "実施機関", choices=_MINISTRIES),
        FormField("category", "select", "種別", required=True,
              choices=_enum_choices(ProgramCategory, CATEGORY_JA)),
        FormField("summary_ja", "textarea", "概要（日本語）", required=True),
        FormField("summary_en", "textarea", "概要（英語）"),
        FormField("eligible", "multi", "対象者", required=True, choices=_enum_choices(Applicant, APPLICANT_JA)),
        FormField("stages", "multi", "開発段階", choices=_enum_choices(Stage, STAGE_JA)),
        FormField("modalities", "multi", "モダリティ", hint="空欄は「限定なし」", choices=_enum_choices(Modality, MODALITY_JA)),
        FormField("disease_areas", "multi", "疾患領域", hint="空欄は「限定なし」",
              choices=_enum_choices(DiseaseArea, DISEASE_JA)),
        FormField("support", "multi", "支援内容", required=True, choices=_enum_choices(Support, SUPPORT_JA)),
        FormField("url", "url", "URL", placeholder="https://", max_length=2000),
        FormField("as_of", "date", "情報の日付（資料の日付）", required=True),
        FormField("rounds", "lines", "公募回（1行に1つ: 名称 開始日 締切日）",
              hint="例: 第5回 2026-04-01 2026-05-29 — 日付が分からなければ - と書きます", max_length=2000,
              placeholder="第5回 2026-04-01 2026-05-29"),
        FormField("source_document", "doc", "出典の資料", required=True),
        FormField("source_quote", "textarea", "出典の一節（資料からそのまま）", required=True, max_length=2000),
    ),
    "vc": (
        FormField("id", "text", "ID", required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name", "text", "名称（認定VC一覧の表記）", required=True, max_length=300),
        FormField("name_en", "text", "名称（英語）", max_length=300),
        FormField("aliases", "lines", "略称・別名（1行に1つ）", max_length=1000),
        FormField("certified_in", "certs", "掲載されている認定VC一覧", required=True),
        FormField("url", "url", "URL", placeholder="https://", max_length=2000),
        FormField("as_of", "date", "情報の日付（資料の日付）", required=True),
        FormField("source_document", "doc", "出典の資料", required=True),
        FormField("source_quote", "textarea", "出典の一節（資料からそのまま）", required=True, max_length=2000),
    ),
    "cdmo": (
        FormField("id", "text", "ID", required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name", "text", "名称", required=True, max_length=300),
        FormField("name_ja", "text", "名称（日本語）", max_length=300),
        FormField("aliases", "lines", "略称・別名（1行に1つ）", max_length=1000),
        FormField("modalities", "multi", "モダリティ", required=True, choices=_enum_choices(Modality, MODALITY_JA)),
        FormField("services_ja", "textarea", "サービス内容"),
        FormField("facilities", "lines", "施設（1行に1つ: 国コード 地域 面積m²）",
              hint="例: US 米国 1200 — 面積が分からなければ省略します", max_length=2000,
              placeholder="JP 日本 4400"),
        FormField("url", "url", "URL", placeholder="https://", max_length=2000),
        FormField("as_of", "date", "情報の日付（資料の日付）", required=True),
        FormField("source_document", "doc", "出典の資料", required=True),
        FormField("source_quote", "textarea", "出典の一節（資料からそのまま）", required=True, max_length=2000),
    ),
}
_ANY_WHEN_EMPTY = {("program", "modalities"), ("program", "disease_areas")}


# --- small Block Kit pieces -----------------------------------------------------------------------


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": shorten(text, limit) if len(text) > limit else text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": _mrkdwn(text[:3000]), **extra}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(x[:3000]) for x in texts if x][:10]}


section = _section  # for the modules that post these messages
context = _context


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value}


def _confirm(title: str, text: str, *, confirm: str, style: str = "danger") -> dict[str, Any]:
    return {"title": _plain(title, 100), "text": _mrkdwn(text[:300]), "confirm": _plain(confirm, 30),
            "deny": _plain("キャンセル", 30), "style": style}


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- the record modals ----------------------------------------------------------------------------


def document_choices(documents: Iterable[Any]) -> list[DocumentChoice]:
    """The manifest's documents (kb.documents items or DocumentMeta), newest first, as many as a select holds."""
    choices = []
    for document in documents:
        meta = getattr(document, "meta", document)
        if len(meta.file) <= MAX_OPTION_VALUE:
            choices.append(DocumentChoice(file=meta.file, title=meta.title, date=meta.date))
    choices.sort(key=lambda d: (d.date or dt.date.min, d.file), reverse=True)
    return choices[:MAX_OPTIONS]


def certification_choices(vcs: Iterable[Any]) -> list[Certification]:
    """The certified lists the knowledge base's VCs appear in (e.g. 認定VC (30社) in document 000)."""
    seen: dict[str, Certification] = {}
    for vc in vcs:
        for cert in vc.certified_in:
            c = Certification(list_title=cert.list_title, document=cert.document)
            seen.setdefault(c.value, c)
    return sorted(seen.values(), key=lambda c: (c.document, c.list_title))[:MAX_OPTIONS]


def _element(field: FormField, value: Any, *, documents: Sequence[DocumentChoice],
             certifications: Sequence[Certification]) -> Block:
    w = field.widget
    if w in ("text", "textarea", "lines"):
        element: Block = {"type": "plain_text_input", "action_id": "value", "max_length": field.max_length,
                          "multiline": w != "text"}
        if w == "lines" and isinstance(value, list):
            text = "\n".join(str(x) for x in value)
        else:
            text = _text_value(value)
        if text:
            element["initial_value"] = text
        if field.placeholder:
            element["placeholder"] = _plain(field.placeholder, 150)
        return element
    if w == "url":
        # A plain input, not url_text_input: Slack refuses to open a form whose stored URL it finds invalid.
        element = {"type": "plain_text_input", "action_id": "value", "max_length": field.max_length,
                   "placeholder": _plain(field.placeholder or "https://", 150)}
        if value:
            element["initial_value"] = str(value)
        return element
    if w == "date":
        element = {"type": "datepicker", "action_id": "value", "placeholder": _plain("日付を選ぶ")}
        if value:
            element["initial_date"] = _text_value(value)
        return element
    if w == "select":
        options = [_option(v, label) for v, label in field.choices]
        element = {"type": "static_select", "action_id": "value", "placeholder": _plain("選択してください"),
                   "options": options}
        chosen = next((o for o in options if o["value"] == _text_value(value)), None)
        if chosen:
            element["initial_option"] = chosen
        return element
    if w in ("multi", "certs"):
        if w == "multi":
            options = [_option(v, label) for v, label in field.choices]
            wanted = [_text_value(x) for x in (value or [])]
        else:
            certs = list(certifications)
            current = [Certification(list_title=str(c.get("list_title")), document=str(c.get("document")))
                       for c in (value or []) if isinstance(c, dict)]
            certs += [c for c in current if c not in certs]  # a list not in the choices stays selectable
            options = [_option(c.value, f"{c.list_title}（{c.document}）") for c in certs[:MAX_OPTIONS]]
            wanted = [c.value for c in current]
        if not options:  # Slack refuses a select without options
            options = [_option(NO_CHOICE, "（選択肢がありません）")]
        element = {"type": "multi_static_select", "action_id": "value", "placeholder": _plain("複数選べます"),
                   "options": options}
        by_value = {o["value"]: o for o in options}
        initial = [by_value[v] for v in dict.fromkeys(wanted) if v in by_value]  # in the record's order
        if initial:
            element["initial_options"] = initial
        return element
    if w == "doc":
        options = [_option(d.file, f"{d.title}（{d.file}）") for d in documents] or \
            [_option(NO_CHOICE, "（資料がありません）")]
        return {"type": "static_select", "action_id": "value", "placeholder": _plain("資料を選ぶ"),
                "options": options}
    raise ValueError(f"unknown widget {w!r}")


def _too_long(field: FormField, value: Any) -> bool:
    """A stored value the input cannot hold: it is left out of the form and kept as it is."""
    if field.widget in ("text", "textarea") and isinstance(value, str):
        return len(value) > field.max_length
    if field.widget == "lines" and isinstance(value, list):
        return len("\n".join(str(x) for x in value)) > field.max_length
    return False


def visible_fields(kind: str, *, is_update: bool) -> list[FormField]:
    return [f for f in FORMS[kind] if not (is_update and f.new_only)]


def general_block(kind: str, *, is_update: bool) -> str:
    """Where a problem that names no field of the form is shown: the form's first input."""
    return visible_fields(kind, is_update=is_update)[0].block


def record_modal(kind: str, *, data: dict[str, Any] | None = None, base: str | None = None,
                 documents: Sequence[DocumentChoice] = (), certifications: Sequence[Certification] = (),
                 origin: dict[str, Any] | None = None) -> Block:
    """The form for a new record of `kind` (data None) or an update of `data` (with its base hash)."""
    if kind not in FORMS:
        raise ValueError(f"unknown record kind {kind!r}")
    is_update = data is not None
    values = dict(_form_view_of(kind, data)) if data else {}
    blocks: list[Block] = []
    if is_update:
        assert data is not None
        status = "（廃止済み）" if data.get("status") == "retired" else ""
        blocks.append(_context(f"*{KIND_JA[kind]}* `{escape_mrkdwn(str(data.get('id')))}`{status} を編集します。"
                               "フォームにない項目（予算・要件・出資実績・既存の出典・メモなど）はそのまま残ります。"))
    else:
        blocks.append(_context(f"新しい{KIND_JA[kind]}を追加します。保存するとすぐに回答とおすすめに使われます。"))
    hidden: list[str] = []
    for field in visible_fields(kind, is_update=is_update):
        value = values.get(field.block)
        if field.block == "category" and value is None and not is_update:
            value = "program"
        if _too_long(field, value):
            hidden.append(field.block)
            blocks.append(_context(f"「{field.label}」は{field.max_length}文字を超えるため、ここでは編集できません"
                                   "（そのまま残ります）。コマンドラインで編集してください。"))
            continue
        block: Block = {"type": "input", "block_id": field.block, "label": _plain(field.label, 2000),
                        "optional": not field.required or (is_update and field.widget == "doc")
                        or (is_update and field.block == "source_quote"),
                        "element": _element(field, value, documents=documents, certifications=certifications)}
        hint = field.hint
        if field.block == "source_document":
            hint = _SOURCE_HINT_UPDATE if is_update else _SOURCE_HINT_NEW
        if hint:
            block["hint"] = _plain(hint, 2000)
        blocks.append(block)
    metadata = {"k": kind, "id": data.get("id") if data else None, "b": base, "x": hidden, **(origin or {})}
    title = f"{KIND_JA[kind]}を{'編集' if is_update else '追加'}"
    return {
        "type": "modal",
        "callback_id": RECORD_VIEW,
        "private_metadata": json_metadata(metadata),
        "title": _plain(title, 24),
        "submit": _plain("保存", 24),
        "close": _plain("キャンセル", 24),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }


def _form_view_of(kind: str, data: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """What the form shows for a stored record: its fields, rounds and facilities as lines."""
    for field in FORMS[kind]:
        if field.block == "rounds":
            yield "rounds", [format_round(r) for r in data.get("rounds") or [] if isinstance(r, dict)]
        elif field.block == "facilities":
            yield "facilities", [format_facility(f) for f in data.get("facilities") or [] if isinstance(f, dict)]
        elif field.widget != "doc" and field.block != "source_quote":
            yield field.block, data.get(field.block)


# --- rounds and facilities as lines ---------------------------------------------------------------


def _date_text(value: Any) -> str:
    return _text_value(value) if value else "-"


def format_round(round_: dict[str, Any]) -> str:
    return f"{round_.get('name', '')} {_date_text(round_.get('opens'))} {_date_text(round_.get('closes'))}"


def _parse_date(token: str) -> dt.date | None:
    token = nfkc(token).replace("/", "-")
    if token in ("-", "−", "ー", "未定"):
        return None
    if not _DATE.match(token):
        raise ValueError(f"「{token}」は日付ではありません（YYYY-MM-DD、不明なら -）")
    try:
        return dt.date.fromisoformat("-".join(part.zfill(2) for part in token.split("-")))
    except ValueError:
        raise ValueError(f"「{token}」はありえない日付です") from None


def parse_rounds(text: str, *, existing: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Lines "名称 開始日 締切日" as application rounds. A line equal to a stored round keeps that round
    whole (its source wording and announcement date); a new line is its own wording. Raises
    ValueError naming each bad line."""
    kept = {format_round(r): r for r in existing if isinstance(r, dict)}
    rounds, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = " ".join(raw.split())
        if not line:
            continue
        if line in kept:
            rounds.append(copy.deepcopy(kept[line]))
            continue
        parts = line.split(" ")
        if len(parts) < 3:
            problems.append(f"{number}行目: 「名称 開始日 締切日」の形で書いてください（例: 第5回 2026-04-01 2026-05-29）")
            continue
        name, opens_text, closes_text = " ".join(parts[:-2]), parts[-2], parts[-1]
        try:
            opens, closes = _parse_date(opens_text), _parse_date(closes_text)
        except ValueError as exc:
            problems.append(f"{number}行目: {exc}")
            continue
        if opens and closes and closes < opens:
            problems.append(f"{number}行目: 締切日 {closes} が開始日 {opens} より前です")
            continue
        round_: dict[str, Any] = {"name": name}
        if opens:
            round_["opens"] = opens
        if closes:
            round_["closes"] = closes
        round_["text"] = line
        rounds.append(round_)
    if problems:
        raise ValueError("\n".join(problems))
    return rounds


def format_facility(facility: dict[str, Any]) -> str:
    area = facility.get("area_m2")
    area_text = "" if area is None else (f"{int(area)}" if float(area).is_integer() else f"{area}")
    return " ".join(x for x in (str(facility.get("country", "")), str(facility.get("region_ja", "")), area_text) if x)


def parse_facilities(text: str, *, existing: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Lines "国コード 地域 面積" (area optional) as facilities; notes of a facility already stored
    (same country and region) are kept. Raises ValueError naming each bad line."""
    notes = {(f.get("country"), f.get("region_ja")): f for f in existing if isinstance(f, dict)}
    kept = {format_facility(f): f for f in existing if isinstance(f, dict)}
    facilities, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if " ".join(raw.split()) in kept:
            facilities.append(copy.deepcopy(kept[" ".join(raw.split())]))
            continue
        parts = nfkc(raw).split()
        if not parts:
            continue
        country = parts[0].upper()
        if not re.fullmatch(r"[A-Z]{2}", country) or len(parts) < 2:
            problems.append(f"{number}行目: 「国コード 地域 面積」の形で書いてください（例: US 米国 1200）")
            continue
        area: float | int | None = None
        rest = parts[1:]
        if len(rest) >= 2 and re.fullmatch(r"[\d,]+(\.\d+)?(m2|m²|㎡)?", rest[-1]):
            number_text = re.sub(r"[^\d.]", "", rest[-1])
            area = int(number_text) if number_text.isdigit() else float(number_text)
            rest = rest[:-1]
        region = " ".join(rest)
        facility: dict[str, Any] = {"country": country, "region_ja": region}
        if area is not None:
            facility["area_m2"] = area
        before = notes.get((country, region))
        if before and before.get("notes_ja"):
            facility["notes_ja"] = before["notes_ja"]
        facilities.append(facility)
    if problems:
        raise ValueError("\n".join(problems))
    return facilities


# --- the submitted form as a record ---------------------------------------------------------------


def _picked(state_values: dict[str, Any], block: str) -> dict[str, Any]:
    return (state_values.get(block) or {}).get("value") or {}


def read_field(field: FormField, state_values: dict[str, Any]) -> Any:
    """One input's submitted value: str | None, list[str], or a date string."""
    picked = _picked(state_values, field.block)
    if field.widget in ("text", "textarea", "lines", "url"):
        return (picked.get("value") or "").strip() or None
    if field.widget in ("select", "doc"):
        value = (picked.get("selected_option") or {}).get("value")
        return None if value in (None, NO_CHOICE) else value
    if field.widget in ("multi", "certs"):
        return [o["value"] for o in picked.get("selected_options") or [] if o.get("value") not in (None, NO_CHOICE)]
    if field.widget == "date":
        return picked.get("selected_date") or None
    raise ValueError(f"unknown widget {field.widget!r}")


@dataclass(frozen=True)
class FormRecord:
    data: dict[str, Any]  # the whole record dict to hand to the editor
    new_source: int | None  # index in data["sources"] of the source the form added, if any


def record_from_form(kind: str, state_values: dict[str, Any], *, original: dict[str, Any] | None,
                     hidden: Sequence[str] = ()) -> FormRecord:
    """The record the form describes. An update starts from the stored record and overwrites only
    the fields on the form. Raises FormError for what cannot even be read (bad lines, a quote
    without its document); everything else is for the editor to judge."""
    data: dict[str, Any] = copy.deepcopy(original) if original else {"kind": kind}
    data["kind"] = kind
    errors: dict[str, str] = {}
    document = quote = None
    for field in visible_fields(kind, is_update=original is not None):
        if field.block in hidden:
            continue
        value = read_field(field, state_values)
        key = field.block
        if original is not None and key not in original and not value:
            continue  # left empty and absent before: the file stays as it was (defaults apply)
        if key == "source_document":
            document = value
            continue
        if key == "source_quote":
            quote = value
            continue
        if key == "rounds":
            try:
                data["rounds"] = parse_rounds(value or "", existing=(original or {}).get("rounds") or [])
            except ValueError as exc:
                errors["rounds"] = str(exc)
            continue
        if key == "facilities":
            try:
                data["facilities"] = parse_facilities(value or "", existing=(original or {}).get("facilities") or [])
            except ValueError as exc:
                errors["facilities"] = str(exc)
            continue
        if key == "aliases":
            data["aliases"] = [x.strip() for x in (value or "").splitlines() if x.strip()]
            continue
        if key == "certified_in":
            certs = []
            for item in value:
                doc, _, title = item.partition("|")
                certs.append({"list_title": title, "document": doc})
            data["certified_in"] = certs
            continue
        if field.widget == "multi":
            data[key] = value or (["any"] if (kind, key) in _ANY_WHEN_EMPTY else [])
            continue
        if field.widget == "date":
            if value:
                try:
                    data[key] = dt.date.fromisoformat(value)
                except ValueError:
                    errors[key] = f"「{value}」は日付ではありません"
            else:
                data.pop(key, None)
            continue
        if key == "url" and value and not re.fullmatch(r"https?://[^\s<>|]+", value):
            errors["url"] = "http:// か https:// で始まるURLを入力してください / Enter an http(s) URL"
            continue
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    new_source = None
    if document and quote:
        sources = data.setdefault("sources", [])
        new_source = len(sources)
        sources.append({"document": document, "quote": quote})
    elif document and not quote:
        errors["source_quote"] = "資料から根拠の一節をそのまま貼り付けてください / Paste the supporting passage"
    elif quote and not document:
        errors["source_document"] = "一節を含む資料を選んでください / Choose the document the passage is from"
    elif original is None:
        errors.setdefault("source_document", "新しい記録には出典（資料と一節）が必要です / A new record needs a source")
        errors.setdefault("source_quote", "資料から根拠の一節をそのまま貼り付けてください / Paste the supporting passage")
    if errors:
        raise FormError(errors, data=data)
    return FormRecord(data=data, new_source=new_source)


# --- the editor's problems on the form ------------------------------------------------------------

_FRIENDLY = (
    (re.compile(r"^Field required"), "入力してください（必須） / Required"),
    (re.compile(r"^List should have at least 1 item"), "1つ以上選んでください / Choose at least one"),
    (re.compile(r"^String should match pattern '\^\[a-z0-9\]"),
     ("英小文字・数字・ハイフンで2〜81文字にしてください（例: mhlw-new-program） / "
      "lowercase letters, digits and hyphens, 2-81 characters")),
    (re.compile(r"^String should match pattern '\^\[A-Z\]\{2\}\$'"),
     "国コードは英大文字2文字です（例: JP, US） / a two-letter country code"),
    (re.compile(r"^Input should be a valid date"), "日付が正しくありません / Not a valid date"),
)


def friendly(message: str) -> str:
    for pattern, text in _FRIENDLY:
        if pattern.search(message):
            return text
    return message


def errors_for_problems(kind: str, problems: Iterable[tuple[str, int | None, str]], *, is_update: bool,
                        new_source: int | None, hidden: Sequence[str] = ()) -> dict[str, str]:
    """The editor's (field path, line, message) problems as Slack's `errors`: block id -> message."""
    blocks = {f.block for f in visible_fields(kind, is_update=is_update)} - set(hidden)
    general = general_block(kind, is_update=is_update)
    collected: dict[str, list[str]] = {}
    for path, _line, message in problems:
        text = friendly(message)
        match = _PATH.match(path or "")
        head, index, sub = (match.group(1), match.group(2), match.group(3)) if match else ("", None, None)
        if head == "sources" and index is not None and new_source is not None and int(index) >= new_source:
            target = "source_document" if sub == "document" else "source_quote"
        elif head in ("rounds", "facilities") and head in blocks:
            target = head
            if index is not None:
                text = f"{int(index) + 1}行目{f'（{sub}）' if sub else ''}: {text}"
        elif head in blocks and head not in ("source_document", "source_quote"):
            target = head
            if index is not None and head not in ("eligible", "stages", "modalities", "disease_areas", "support"):
                text = f"{int(index) + 1}番目: {text}"
        else:
            target = general
            text = f"{path or '(record)'}: {text}"
        if text not in collected.setdefault(target, []):
            collected[target].append(text)
    return {block: shorten(" / ".join(texts), MAX_ERROR_CHARS) for block, texts in collected.items()}


def schema_problems(kind: str, data: dict[str, Any]) -> list[tuple[str, int | None, str]]:
    """The schema's verdict on a record dict, as (field path, line, message): lets a form that also has
    unreadable lines show every other problem at once."""
    try:
        RECORD_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        return [(_field_path(tuple(p["loc"])), None, str(p["msg"])) for p in exc.errors()]
    return []


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(record)"


# --- documents ------------------------------------------------------------------------------------


def document_modal(*, file: str, title: str, ministry: str | None, date: Any, description: str | None,
                   doc_id: str | None, origin: dict[str, Any] | None = None) -> Block:
    """Details of an uploaded document (what citations show): title, ministry, date, description."""
    ministry_field = FormField("ministry", "select", "発行府省", required=True, choices=_MINISTRIES)
    date_field = FormField("date", "date", "資料の日付", required=True)
    blocks: list[Block] = [
        _context(f"資料 `{escape_mrkdwn(file)}` の情報を編集します。回答の出典にはこの題名が表示されます。"),
        {"type": "input", "block_id": "title", "label": _plain("題名"),
         "element": {"type": "plain_text_input", "action_id": "value", "max_length": 300,
                     **({"initial_value": title} if title else {})}},
        {"type": "input", "block_id": "ministry", "label": _plain("発行府省"),
         "element": _element(ministry_field, ministry, documents=(), certifications=())},
        {"type": "input", "block_id": "date", "label": _plain("資料の日付"),
         "element": _element(date_field, date, documents=(), certifications=())},
        {"type": "input", "block_id": "description_ja", "optional": True, "label": _plain("説明"),
         "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 2000,
                     **({"initial_value": description[:2000]} if description else {})}},
    ]
    return {
        "type": "modal",
        "callback_id": DOCUMENT_VIEW,
        "private_metadata": json_metadata({"f": file, "d": doc_id, **(origin or {})}),
        "title": _plain("資料の情報", 24),
        "submit": _plain("保存", 24),
        "close": _plain("キャンセル", 24),
        "blocks": blocks,
    }


def document_from_form(state_values: dict[str, Any]) -> dict[str, Any]:
    """title, ministry, date (a date), description_ja; raises FormError for a missing title or date."""
    title = (_picked(state_values, "title").get("value") or "").strip()
    ministry = (_picked(state_values, "ministry").get("selected_option") or {}).get("value")
    date_text = _picked(state_values, "date").get("selected_date")
    description = (_picked(state_values, "description_ja").get("value") or "").strip()  # "" clears it
    errors = {}
    if not title:
        errors["title"] = "題名を入力してください / Enter a title"
    if not ministry:
        errors["ministry"] = "発行府省を選んでください / Choose the ministry"
    date = None
    try:
        date = dt.date.fromisoformat(date_text) if date_text else None
    except ValueError:
        pass
    if date is None:
        errors["date"] = "資料の日付を選んでください / Choose the document's date"
    if errors:
        raise FormError(errors)
    return {"title": title, "ministry": ministry, "date": date, "description_ja": description}


# --- staff messages: show, history, list, stale, help -----------------------------------------------


def _when(moment: dt.datetime) -> str:
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def actor_text(actor: Any) -> str:
    if getattr(actor, "via", "") == "slack" and re.fullmatch(r"[UW][A-Z0-9]+", str(actor.id)):
        return f"<@{actor.id}>"
    name = getattr(actor, "name", None) or actor.id
    return escape_mrkdwn(f"{name}（{getattr(actor, 'via', '')}）")


def change_line(change: Any) -> str:
    action = ACTION_JA.get(change.action, change.action)
    reverts = f" · 変更 #{change.reverts} の取り消し" if change.reverts else ""
    return (f"*#{change.id}* {escape_mrkdwn(action)} · {actor_text(change.actor)} · {_when(change.at)}{reverts}\n"
            f"{escape_mrkdwn(shorten(change.summary, 300))}")


def revert_button(change: Any) -> Block:
    return button("取り消す", REVERT, str(change.id), confirm=_confirm(
        f"変更 #{change.id} を取り消しますか？",
        f"{escape_mrkdwn(shorten(change.summary, 200))}\nこの変更の前の状態に戻します（取り消しも履歴に残ります）。",
        confirm="取り消す"))


def history_blocks(changes: Sequence[Any], *, record_id: str | None, limit: int = 20) -> list[Block]:
    what = f"`{escape_mrkdwn(record_id)}` の" if record_id else ""
    blocks: list[Block] = [_section(f"*{what}変更履歴*（新しい順） / History, newest first")]
    if not changes:
        blocks.append(_section("変更はまだありません。 / No changes yet."))
    for change in list(changes)[:limit]:
        blocks.append(_section(change_line(change), accessory=revert_button(change)))
    if len(changes) > limit:
        blocks.append(_context(f"ほか {len(changes) - limit} 件。`/kakehashi kb history ID` で記録ごとに見られます。"))
    return blocks[:MAX_MESSAGE_BLOCKS]


def revert_prompt_blocks(change: Any) -> list[Block]:
    files = ", ".join(f"`{escape_mrkdwn(f.path)}`" for f in change.files[:5])
    return [
        _section(f"次の変更を取り消しますか？ / Revert this change?\n{change_line(change)}"),
        _context(f"ファイル: {files}" if files else ""),
        {"type": "actions", "block_id": "kk_kb_revert", "elements": [revert_button(change)]},
    ]


def record_blocks(record_id: str, yaml_text: str, *, kind: str, title: str, status: str) -> list[Block]:
    retired = status == "retired"
    blocks: list[Block] = [
        _section(f"*{escape_mrkdwn(title)}*\n{KIND_JA.get(kind, kind)} · `{escape_mrkdwn(record_id)}`"
                 + (" · :no_entry: 廃止済み（おすすめしません） / retired" if retired else "")),
    ]
    pieces = split_for_sections(yaml_text.replace("```", "'''"), 2800)
    for piece in pieces[:6]:
        blocks.append(_section(f"```{escape_mrkdwn(piece)}```"))
    if len(pieces) > 6:
        blocks.append(_context("（長いため途中までです。全文はコマンドラインの `kakehashi kb show` で）"))
    elements = [button("編集", EDIT, record_id, style="primary"), button("履歴", HISTORY, record_id)]
    if retired:
        elements.append(button("復元", RESTORE, record_id, confirm=_confirm(
            "記録を復元しますか？", f"`{escape_mrkdwn(record_id)}` をふたたび回答とおすすめに使います。",
            confirm="復元", style="primary")))
    else:
        elements.append(button("廃止", RETIRE, record_id, style="danger", confirm=_confirm(
            "記録を廃止しますか？", f"`{escape_mrkdwn(record_id)}` は履歴に残りますが、おすすめしなくなります。",
            confirm="廃止")))
    blocks.append({"type": "actions", "block_id": "kk_kb_record_actions", "elements": elements})
    return blocks


def list_blocks(records: Sequence[Any], *, kind: str | None) -> list[Block]:
    blocks: list[Block] = []
    for k in (kind,) if kind else KINDS:
        chosen = [r for r in records if r.kind == k]
        lines = [f"• `{escape_mrkdwn(r.id)}` {escape_mrkdwn(shorten(r.title, 60))}"
                 + (" :no_entry: 廃止" if r.status == "retired" else "") for r in chosen]
        blocks.append(_section(f"*{KIND_JA[k]}*（{len(chosen)} 件）"))
        for piece in split_for_sections("\n".join(lines) or "（なし）"):
            blocks.append(_section(piece))
    return blocks[:MAX_MESSAGE_BLOCKS]


def stale_lines(stale: Sequence[Any], *, limit: int) -> list[Block]:
    blocks: list[Block] = []
    for item in list(stale)[:limit]:
        record = item.record
        reasons = "；".join(escape_mrkdwn(r) for r in item.reasons)
        blocks.append(_section(
            f"*{escape_mrkdwn(shorten(record.title, 80))}* `{escape_mrkdwn(record.id)}`\n{shorten(reasons, 600)}",
            accessory=button("更新", EDIT, record.id)))
    return blocks


def stale_blocks(stale: Sequence[Any], *, max_age_days: int, limit: int = 40) -> list[Block]:
    blocks: list[Block] = [_section(f"*更新が必要かもしれない記録*（{len(stale)} 件: 情報が {max_age_days} 日より古い、"
                                    "または公募の締切が過ぎている） / Records that may be out of date")]
    if not stale:
        blocks.append(_section("ありません。すべての記録が新しい状態です。 / Nothing is out of date."))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(_context(f"ほか {len(stale) - limit} 件"))
    return blocks[:MAX_MESSAGE_BLOCKS]


def home_freshness_blocks(stale: Sequence[Any], *, max_age_days: int, limit: int = 10) -> list[Block]:
    """The App Home section for staff: the most out-of-date records first, each with an update button."""
    blocks: list[Block] = [
        {"type": "divider"},
        {"type": "header", "text": _plain("相談員向け: 知識の鮮度")},
        _context(f"情報が {max_age_days} 日より古い記録と、公募の締切が過ぎた記録: {len(stale)} 件。"
                 "`/kakehashi kb stale` で一覧、`/kakehashi kb help` で使い方。"),
    ]
    if not stale:
        blocks.append(_section("更新が必要な記録はありません。"))
    blocks += stale_lines(stale, limit=limit)
    if len(stale) > limit:
        blocks.append(_context(f"ほか {len(stale) - limit} 件は `/kakehashi kb stale` で"))
    return blocks


def kb_help_blocks() -> list[Block]:
    return [
        _section("*ナレッジの編集（相談員のみ） / Editing the knowledge base (staff only)*"),
        _section("• `/kakehashi kb add program|vc|cdmo` — 新しい記録をフォームで追加\n"
                 "• `/kakehashi kb edit ID` — 記録を編集（現在の内容が入ったフォーム）\n"
                 "• `/kakehashi kb show ID` — 記録の内容\n"
                 "• `/kakehashi kb retire ID` / `restore ID` — 廃止（履歴に残し、おすすめしない）／復元\n"
                 "• `/kakehashi kb history [ID]` — 変更履歴（誰が・いつ・何を）\n"
                 "• `/kakehashi kb revert 変更番号` — 変更を取り消す\n"
                 "• `/kakehashi kb stale` — 古くなった記録\n"
                 "• `/kakehashi kb list [program|vc|cdmo]` — 記録の一覧\n"
                 "• 相談員チャンネルかボットとのDMに PDF・Word（.docx）・Markdown・テキストを投稿すると、"
                 "資料として追加され、すぐに回答に使われます。"),
        _context("日本語でも: `kb 追加 制度`・`kb 編集 ID`・`kb 廃止 ID`・`kb 復元 ID`・`kb 表示 ID`・`kb 履歴`・"
                 "`kb 取り消し 12`・`kb 鮮度`・`kb 一覧`"),
    ]


def change_done_text(change: Any, *, searchable: str, language: str = "ja") -> str:
    summary = escape_mrkdwn(shorten(change.summary, 300))
    if language != "ja":
        action = ACTION_EN.get(change.action, change.action)
        return f":white_check_mark: {action} (change *#{change.id}*): {summary}\n{searchable}"
    action = ACTION_JA.get(change.action, change.action)
    return f":white_check_mark: {escape_mrkdwn(action)}しました（変更 *#{change.id}*）: {summary}\n{searchable}"
