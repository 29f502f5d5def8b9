"""Record files as staff write and review them: reading a YAML or Markdown record file, writing a record laid
out like the hand-written ones, rewriting only the fields an edit changed, and the base line that guards an
update against a lost one. Pure: text in, text out; the editor decides what is written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from knowledge import yamlpatch
from knowledge.errors import RecordError
from knowledge.frontmatter import split_front_matter
from knowledge.loader import parse_record, record_from_node
from knowledge.schema import RECORD_TYPES, CuratedAnswer, DocumentMeta, Record
from knowledge.yamltext import load_yaml, load_yaml_all

BASE_HEADER = "# kakehashi-base: "
RECORD_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
_DATE_FIELDS = frozenset({"as_of", "opens", "closes", "announced", "date"})
_BODY_FIELD = {"program": "summary_ja", "vc": "notes_ja", "cdmo": "services_ja", "answer": "answer_ja"}
# Field order in written files: identity first, the facts, then provenance, as the seed files read.
_LEADING = ("id", "kind")
_TRAILING = ("status", "url", "notes_ja", "as_of", "sources")

AnyRecord = Record | CuratedAnswer
ParsedRecord = tuple[AnyRecord, str | None]
"""A record, and the text to keep verbatim for it (None: render it)."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def strip_base(text: str) -> tuple[str, str | None]:
    """The file without its `# kakehashi-base:` line, and the base that line named."""
    base = None
    kept = []
    for line in text.splitlines(keepends=True):
        if line.startswith(BASE_HEADER) and base is None:
            base = line[len(BASE_HEADER) :].strip()
            continue
        kept.append(line)
    return "".join(kept), base


class _RecordDumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RecordDumper.add_representer(str, _str_presenter)


def _dates_as_dates(value: Any, key: str | None = None) -> Any:
    """JSON mode turns dates into strings, which YAML would quote; the hand-written files use plain dates."""
    if isinstance(value, dict):
        return {k: _dates_as_dates(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_dates(v) for v in value]
    if key in _DATE_FIELDS and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def render_record(record: AnyRecord) -> str:
    """The YAML file for a record, laid out like the hand-written ones."""
    data = _dates_as_dates(record.model_dump(mode="json", exclude_none=True))
    ordered = {key: data[key] for key in _LEADING if key in data}
    ordered |= {key: value for key, value in data.items() if key not in _LEADING and key not in _TRAILING}
    ordered |= {key: data[key] for key in _TRAILING if key in data}
    body = yaml.dump(ordered, Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)
    return f"# {record.title}\n{body}"


def patch_record(before: str, record: AnyRecord) -> tuple[str, list[str]]:
    """The record's file with only its changed fields rewritten (knowledge.yamlpatch); the changed fields."""
    data = _dates_as_dates(record.model_dump(mode="json", exclude_none=True))
    defaults = {name: field.get_default(call_default_factory=True) for name, field in type(record).model_fields.items()}
    return yamlpatch.patch(before, data, defaults=defaults)


def with_status(text: str, status: str) -> str:
    """The record file with its `status:` line set, the rest untouched."""
    if re.search(r"^status:.*$", text, flags=re.MULTILINE):
        return re.sub(r"^status:.*$", f"status: {status}", text, count=1, flags=re.MULTILINE)
    return re.sub(r"^(id:.*\n)", rf"\1status: {status}\n", text, count=1, flags=re.MULTILINE)


def change_summary(kind: str, record: AnyRecord, before: str | None) -> str:
    """The history's one line for adding or updating a record: which fields changed."""
    if before is None:
        return f"add {kind} {record.id} ({record.title})"
    old = yaml.safe_load(before) or {}
    new = record.model_dump(mode="json", exclude_none=True)
    fields = sorted(
        k
        for k in set(old) | set(new)
        if json.dumps(old.get(k), default=str, ensure_ascii=False)
        != json.dumps(new.get(k), default=str, ensure_ascii=False)
    )
    return f"update {kind} {record.id} ({', '.join(fields) or 'layout only'})"


def is_record_markdown(head: str) -> bool:
    """Whether a Markdown file (its opening text) is a record, by the `kind` in its front matter, rather than
    a source document."""
    front = split_front_matter(head)
    return front is not None and front.fields().get("kind") in RECORD_TYPES


def kind_of(data: dict[str, Any], source: Path, line: int | None = None) -> str:
    kind = data.get("kind")
    if kind not in RECORD_TYPES:
        raise RecordError(
            f"kind must be one of {', '.join(RECORD_TYPES)} (got {kind!r})",
            path=source,
            line=line,
            record_id=data.get("id") if isinstance(data.get("id"), str) else None,
            field="kind",
        )
    return str(kind)


def parse_record_file(text: str, source: Path) -> list[ParsedRecord]:
    """Each record in a YAML file of one or more records, or in a Markdown file whose front matter is a
    record and whose body is its main text."""
    if source.suffix.lower() in MARKDOWN_SUFFIXES:
        front = split_front_matter(text)
        if front is None:
            raise RecordError(
                "a Markdown record file starts with YAML front matter between --- lines", path=source, line=1
            )
        data, node = load_yaml(front.block, path=source, first_line=front.first_line)
        if not isinstance(data, dict) or node is None:
            raise RecordError("the front matter must be a YAML mapping", path=source, line=2)
        kind = kind_of(data, source)
        field = _BODY_FIELD[kind]
        if front.body.strip():
            if data.get(field):
                raise RecordError(
                    f"{field} is given twice: in the front matter and as the body", path=source, field=field
                )
            data[field] = front.body.strip()
        return [(record_from_node(node, data, path=source, kind=kind), None)]
    documents = load_yaml_all(text, path=source)
    items: list[tuple[Any, yaml.Node]] = []
    for data, node in documents:
        if isinstance(data, list) and isinstance(node, yaml.SequenceNode):
            items += list(zip(data, node.value, strict=True))
        elif data is not None:
            items.append((data, node))
    if not items:
        raise RecordError("no record in the file", path=source, line=1)
    single = len(items) == 1 and isinstance(items[0][0], dict) and len(documents) == 1
    parsed: list[ParsedRecord] = []
    for data, node in items:
        if not isinstance(data, dict):
            raise RecordError("each record must be a YAML mapping", path=source, line=node.start_mark.line + 1)
        kind = kind_of(data, source, line=node.start_mark.line + 1)
        if single:
            # One record as staff wrote it: keep their layout and comments for review in git.
            parsed.append((parse_record(source, kind, text), text))
        else:
            parsed.append((record_from_node(node, data, path=source, kind=kind), None))
    return parsed


def manifest_with(text: str, meta: DocumentMeta) -> str:
    """documents.yaml with the entry for `meta` added, or put in place of the one with its id."""
    entry = meta.model_dump(mode="json", exclude_none=True)
    entries = yaml.safe_load(text) or []
    if not any(e.get("id") == meta.id for e in entries):
        block = yaml.dump([entry], Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)
        return (text if text.endswith("\n") or not text else text + "\n") + block
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    entries = [entry if e.get("id") == meta.id else e for e in entries]
    return header + yaml.dump(entries, Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)
