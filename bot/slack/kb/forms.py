"""The knowledge editor's record forms: one modal per record kind (prefilled for updates), the submitted
values turned back into a record dict, and the editor's problems put on the right form field. Pure
builders and parsers: nothing here calls Slack or writes a file.

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

from bot.slack.blockkit import (
    JSON,
    MAX_INPUT_CHARS,
    MAX_OPTIONS,
    OPTION_VALUE,
    Block,
    context,
    datepicker,
    input_block,
    modal,
    option,
    picked,
    static_select,
    text_input,
)
from bot.slack.errors import SlackError
from bot.slack.ids import KB_RECORD_VIEW
from bot.slack.kb.lines import format_facility, format_round, parse_facilities, parse_rounds, text_value
from bot.slack.text import escape_mrkdwn, shorten
from knowledge.labels import label, labels
from knowledge.loader import Document
from knowledge.schema import (
    RECORD_TYPES,
    VC,
    Applicant,
    DiseaseArea,
    DocumentMeta,
    Ministry,
    Modality,
    ProgramCategory,
    Stage,
    Support,
)
from prompts.messages import t

MAX_ERROR_CHARS = 500

NO_CHOICE = "-"  # the one option of a select that has nothing to offer
_PATH = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?(?:\.([A-Za-z_]+))?")


class FormError(SlackError):
    """The form is filled in wrongly before any record exists: block id -> message."""

    def __init__(self, errors: dict[str, str], *, data: JSON | None = None) -> None:
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


def _label(key: str) -> str:
    """A form's wording (staff read the forms in Japanese)."""
    return t(f"slack_kb_{key}", "ja")


MINISTRIES = _enum_choices(Ministry, labels("ministry"))
CATEGORIES = tuple((c.value, f"{_label(f'category_{c.value}')} ({c.value})") for c in ProgramCategory)
_SOURCE_HINT_NEW = _label("hint_source_new")
_SOURCE_HINT_UPDATE = _label("hint_source_update")
_ID_HINT = _label("hint_id")
_ANY_HINT = _label("hint_any_when_empty")

FORMS: dict[str, tuple[FormField, ...]] = {
    "program": (
        FormField("id", "text", _label("field_id"), required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name_ja", "text", _label("field_name_ja"), required=True, max_length=300),
        FormField("name_en", "text", _label("field_name_en"), max_length=300),
        FormField("aliases", "lines", _label("field_aliases"), max_length=1000),
        FormField("ministry", "select", _label("field_ministry"), required=True, choices=MINISTRIES),
        FormField("agency", "select", _label("field_agency"), choices=MINISTRIES),
        FormField("category", "select", _label("field_category"), required=True, choices=CATEGORIES),
        FormField("summary_ja", "textarea", _label("field_summary_ja"), required=True),
        FormField("summary_en", "textarea", _label("field_summary_en")),
        FormField(
            "eligible",
            "multi",
            _label("field_eligible"),
            required=True,
            choices=_enum_choices(Applicant, labels("applicant")),
        ),
        FormField("stages", "multi", _label("field_stages"), choices=_enum_choices(Stage, labels("stage"))),
        FormField(
            "modalities",
            "multi",
            _label("field_modalities"),
            hint=_ANY_HINT,
            choices=_enum_choices(Modality, labels("modality")),
        ),
        FormField(
            "disease_areas",
            "multi",
            _label("field_disease_areas"),
            hint=_ANY_HINT,
            choices=_enum_choices(DiseaseArea, labels("disease_area")),
        ),
        FormField(
            "support",
            "multi",
            _label("field_support"),
            required=True,
            choices=_enum_choices(Support, labels("support")),
        ),
        FormField("url", "url", _label("field_url"), placeholder="https://", max_length=2000),
        FormField("as_of", "date", _label("field_as_of"), required=True),
        FormField(
            "rounds",
            "lines",
            _label("field_rounds"),
            hint=_label("hint_rounds"),
            max_length=2000,
            placeholder="第5回 2026-04-01 2026-05-29",
        ),
        FormField("source_document", "doc", _label("field_source_document"), required=True),
        FormField("source_quote", "textarea", _label("field_source_quote"), required=True, max_length=2000),
    ),
    "vc": (
        FormField("id", "text", _label("field_id"), required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name", "text", _label("field_vc_name"), required=True, max_length=300),
        FormField("name_en", "text", _label("field_name_en"), max_length=300),
        FormField("aliases", "lines", _label("field_aliases"), max_length=1000),
        FormField("certified_in", "certs", _label("field_certified_in"), required=True),
        FormField("url", "url", _label("field_url"), placeholder="https://", max_length=2000),
        FormField("as_of", "date", _label("field_as_of"), required=True),
        FormField("source_document", "doc", _label("field_source_document"), required=True),
        FormField("source_quote", "textarea", _label("field_source_quote"), required=True, max_length=2000),
    ),
    "cdmo": (
        FormField("id", "text", _label("field_id"), required=True, hint=_ID_HINT, new_only=True, max_length=81),
        FormField("name", "text", _label("field_name"), required=True, max_length=300),
        FormField("name_ja", "text", _label("field_name_ja"), max_length=300),
        FormField("aliases", "lines", _label("field_aliases"), max_length=1000),
        FormField(
            "modalities",
            "multi",
            _label("field_modalities"),
            required=True,
            choices=_enum_choices(Modality, labels("modality")),
        ),
        FormField("services_ja", "textarea", _label("field_services_ja")),
        FormField(
            "facilities",
            "lines",
            _label("field_facilities"),
            hint=_label("hint_facilities"),
            max_length=2000,
            placeholder="JP 日本 4400",
        ),
        FormField("url", "url", _label("field_url"), placeholder="https://", max_length=2000),
        FormField("as_of", "date", _label("field_as_of"), required=True),
        FormField("source_document", "doc", _label("field_source_document"), required=True),
        FormField("source_quote", "textarea", _label("field_source_quote"), required=True, max_length=2000),
    ),
}
_ANY_WHEN_EMPTY = {("program", "modalities"), ("program", "disease_areas")}


# --- the record modals ----------------------------------------------------------------------------


def document_choices(documents: Iterable[Document | DocumentMeta]) -> list[DocumentChoice]:
    """The manifest's documents (kb.documents items or DocumentMeta), newest first, as many as a select holds."""
    choices = []
    for document in documents:
        meta = document.meta if isinstance(document, Document) else document
        if len(meta.file) <= OPTION_VALUE:
            choices.append(DocumentChoice(file=meta.file, title=meta.title, date=meta.date))
    choices.sort(key=lambda d: (d.date or dt.date.min, d.file), reverse=True)
    return choices[:MAX_OPTIONS]


def certification_choices(vcs: Iterable[VC]) -> list[Certification]:
    """The certified lists the knowledge base's VCs appear in (e.g. 認定VC (30社) in document 000)."""
    seen: dict[str, Certification] = {}
    for vc in vcs:
        for cert in vc.certified_in:
            c = Certification(list_title=cert.list_title, document=cert.document)
            seen.setdefault(c.value, c)
    return sorted(seen.values(), key=lambda c: (c.document, c.list_title))[:MAX_OPTIONS]


def element(
    field: FormField, value: Any, *, documents: Sequence[DocumentChoice], certifications: Sequence[Certification]
) -> Block:
    """The input element of one form field, showing the stored `value`."""
    w = field.widget
    if w in ("text", "textarea", "lines"):
        text = "\n".join(str(x) for x in value) if w == "lines" and isinstance(value, list) else text_value(value)
        return text_input(
            max_length=field.max_length, multiline=w != "text", initial=text, placeholder=field.placeholder or ""
        )
    if w == "url":
        # A plain input, not url_text_input: Slack refuses to open a form whose stored URL it finds invalid.
        return text_input(
            max_length=field.max_length,
            placeholder=field.placeholder or "https://",
            initial=str(value) if value else "",
        )
    if w == "date":
        return datepicker(initial=text_value(value) if value else "")
    if w == "select":
        options = [option(text, v) for v, text in field.choices]
        select = static_select(options)
        chosen = next((o for o in options if o["value"] == text_value(value)), None)
        if chosen:
            select["initial_option"] = chosen
        return select
    if w in ("multi", "certs"):
        if w == "multi":
            options = [option(text, v) for v, text in field.choices]
            wanted = [text_value(x) for x in (value or [])]
        else:
            certs = list(certifications)
            current = [
                Certification(list_title=str(c.get("list_title")), document=str(c.get("document")))
                for c in (value or [])
                if isinstance(c, dict)
            ]
            certs += [c for c in current if c not in certs]  # a list not in the choices stays selectable
            options = [option(f"{c.list_title}（{c.document}）", c.value) for c in certs[:MAX_OPTIONS]]
            wanted = [c.value for c in current]
        if not options:  # Slack refuses a select without options
            options = [option(_label("no_choices"), NO_CHOICE)]
        select = static_select(options, placeholder=_label("choose_many"), multi=True)
        by_value = {o["value"]: o for o in options}
        initial = [by_value[v] for v in dict.fromkeys(wanted) if v in by_value]  # in the record's order
        if initial:
            select["initial_options"] = initial
        return select
    if w == "doc":
        return static_select(
            [option(f"{d.title}（{d.file}）", d.file) for d in documents]
            or [option(_label("no_documents"), NO_CHOICE)],
            placeholder=_label("choose_document"),
        )
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


def record_modal(
    kind: str,
    *,
    data: JSON | None = None,
    base: str | None = None,
    documents: Sequence[DocumentChoice] = (),
    certifications: Sequence[Certification] = (),
    origin: JSON | None = None,
) -> Block:
    """The form for a new record of `kind` (data None) or an update of `data` (with its base hash)."""
    if kind not in FORMS:
        raise ValueError(f"unknown record kind {kind!r}")
    is_update = data is not None
    values = dict(_form_view_of(kind, data)) if data else {}
    blocks: list[Block] = []
    if is_update:
        assert data is not None
        status = _label("form_retired") if data.get("status") == "retired" else ""
        blocks.append(
            context(
                t(
                    "slack_kb_form_editing",
                    "ja",
                    kind=label("record_kind", kind),
                    id=escape_mrkdwn(str(data.get("id"))),
                    status=status,
                )
            )
        )
    else:
        blocks.append(context(t("slack_kb_form_adding", "ja", kind=label("record_kind", kind))))
    hidden: list[str] = []
    for field in visible_fields(kind, is_update=is_update):
        value = values.get(field.block)
        if field.block == "category" and value is None and not is_update:
            value = "program"
        if _too_long(field, value):
            hidden.append(field.block)
            blocks.append(context(t("slack_kb_form_too_long", "ja", label=field.label, limit=field.max_length)))
            continue
        hint = field.hint
        if field.block == "source_document":
            hint = _SOURCE_HINT_UPDATE if is_update else _SOURCE_HINT_NEW
        optional = (
            not field.required or (is_update and field.widget == "doc") or (is_update and field.block == "source_quote")
        )
        blocks.append(
            input_block(
                field.block,
                field.label,
                element(field, value, documents=documents, certifications=certifications),
                optional=optional,
                hint=hint or "",
            )
        )
    metadata = {"k": kind, "id": data.get("id") if data else None, "b": base, "x": hidden, **(origin or {})}
    title = t(f"slack_kb_form_title_{'edit' if is_update else 'add'}", "ja", kind=label("record_kind", kind))
    return modal(
        callback_id=KB_RECORD_VIEW,
        private_metadata=metadata,
        title=title,
        submit=_label("save"),
        close=t("slack_cancel", "ja"),
        blocks=blocks,
    )


def _form_view_of(kind: str, data: JSON) -> Iterable[tuple[str, Any]]:
    """What the form shows for a stored record: its fields, rounds and facilities as lines."""
    for field in FORMS[kind]:
        if field.block == "rounds":
            yield "rounds", [format_round(r) for r in data.get("rounds") or [] if isinstance(r, dict)]
        elif field.block == "facilities":
            yield "facilities", [format_facility(f) for f in data.get("facilities") or [] if isinstance(f, dict)]
        elif field.widget != "doc" and field.block != "source_quote":
            yield field.block, data.get(field.block)


# --- the submitted form as a record ---------------------------------------------------------------


def read_field(field: FormField, state_values: JSON) -> Any:
    """One input's submitted value: str | None, list[str], or a date string."""
    state = picked(state_values, field.block)
    if field.widget in ("text", "textarea", "lines", "url"):
        return (state.get("value") or "").strip() or None
    if field.widget in ("select", "doc"):
        value = (state.get("selected_option") or {}).get("value")
        return None if value in (None, NO_CHOICE) else value
    if field.widget in ("multi", "certs"):
        return [o["value"] for o in state.get("selected_options") or [] if o.get("value") not in (None, NO_CHOICE)]
    if field.widget == "date":
        return state.get("selected_date") or None
    raise ValueError(f"unknown widget {field.widget!r}")


@dataclass(frozen=True)
class FormRecord:
    data: JSON  # the whole record dict to hand to the editor
    new_source: int | None  # index in data["sources"] of the source the form added, if any


def record_from_form(kind: str, state_values: JSON, *, original: JSON | None, hidden: Sequence[str] = ()) -> FormRecord:
    """The record the form describes. An update starts from the stored record and overwrites only
    the fields on the form. Raises FormError for what cannot even be read (bad lines, a quote
    without its document); everything else is for the editor to judge."""
    data: JSON = copy.deepcopy(original) if original else {"kind": kind}
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
                    errors[key] = t("slack_kb_not_a_date", "ja", value=value)
            else:
                data.pop(key, None)
            continue
        if key == "url" and value and not re.fullmatch(r"https?://[^\s<>|]+", value):
            errors["url"] = _label("bad_url")
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
        errors["source_quote"] = _label("paste_passage")
    elif quote and not document:
        errors["source_document"] = _label("choose_passage_document")
    elif original is None:
        errors.setdefault("source_document", _label("needs_source"))
        errors.setdefault("source_quote", _label("paste_passage"))
    if errors:
        raise FormError(errors, data=data)
    return FormRecord(data=data, new_source=new_source)


# --- the editor's problems on the form ------------------------------------------------------------

# pydantic's messages staff would not understand, and what to say instead (slack_kb_error_<key>).
_FRIENDLY = (
    (re.compile(r"^Field required"), "required"),
    (re.compile(r"^List should have at least 1 item"), "at_least_one"),
    (re.compile(r"^String should match pattern '\^\[a-z0-9\]"), "id"),
    (re.compile(r"^String should match pattern '\^\[A-Z\]\{2\}\$'"), "country"),
    (re.compile(r"^Input should be a valid date"), "date"),
)


def friendly(message: str) -> str:
    for pattern, key in _FRIENDLY:
        if pattern.search(message):
            return _label(f"error_{key}")
    return message


def errors_for_problems(
    kind: str,
    problems: Iterable[tuple[str, int | None, str]],
    *,
    is_update: bool,
    new_source: int | None,
    hidden: Sequence[str] = (),
) -> dict[str, str]:
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
                text = t("slack_kb_error_line", "ja", n=int(index) + 1, sub=f"（{sub}）" if sub else "", text=text)
        elif head in blocks and head not in ("source_document", "source_quote"):
            target = head
            if index is not None and head not in ("eligible", "stages", "modalities", "disease_areas", "support"):
                text = t("slack_kb_error_item", "ja", n=int(index) + 1, text=text)
        else:
            target = general
            text = f"{path or '(record)'}: {text}"
        if text not in collected.setdefault(target, []):
            collected[target].append(text)
    return {block: shorten(" / ".join(texts), MAX_ERROR_CHARS) for block, texts in collected.items()}


def schema_problems(kind: str, data: JSON) -> list[tuple[str, int | None, str]]:
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
