"""Load and validate the knowledge base: records, documents, and the passages they cite."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from knowledge.errors import KnowledgeError, RecordError
from knowledge.normalize import squash
from knowledge.schema import (
    CDMO,
    RECORD_DIRS,
    RECORD_TYPES,
    VC,
    AnswerSource,
    CuratedAnswer,
    DocumentMeta,
    Program,
    Record,
    Source,
)
from knowledge.yamltext import load_yaml

DOCUMENTS_DIR = "documents"
DOCUMENTS_MANIFEST = "documents.yaml"
_UNQUOTED_QUOTE_WITH_HASH = re.compile(r"^\s*(?:-\s+)?quote:\s+[^\"'\s|>].*\s#")


@dataclass(frozen=True)
class Document:
    meta: DocumentMeta
    path: Path
    text: str


@dataclass
class KnowledgeBase:
    root: Path
    programs: list[Program] = field(default_factory=list)
    vcs: list[VC] = field(default_factory=list)
    cdmos: list[CDMO] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    record_paths: dict[str, Path] = field(default_factory=dict)
    # Kept out of `records`: matching, chunking and the entity catalog read programs, VCs and CDMOs only.
    answers: list[CuratedAnswer] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        return [*self.programs, *self.vcs, *self.cdmos]

    def get(self, record_id: str) -> Record:
        for record in self.records:
            if record.id == record_id:
                return record
        raise KeyError(record_id)

    def answer(self, answer_id: str) -> CuratedAnswer:
        for answer in self.answers:
            if answer.id == answer_id:
                return answer
        raise KeyError(answer_id)

    def document(self, name: str) -> Document:
        for document in self.documents:
            if document.meta.file == name:
                return document
        raise KeyError(name)


class _Tree:
    """The knowledge folder as it is, or as it would be with `overlay` applied (relative posix path -> new text,
    None for a removed file): a change is validated as a whole before anything is written."""

    def __init__(self, root: Path, overlay: Mapping[str, str | None] | None = None) -> None:
        self.root = root
        self.overlay = dict(overlay or {})

    def exists(self, rel: str) -> bool:
        if rel in self.overlay:
            return self.overlay[rel] is not None
        return (self.root / rel).is_file()

    def read(self, rel: str) -> str:
        if rel in self.overlay:
            text = self.overlay[rel]
            if text is None:
                raise FileNotFoundError(self.root / rel)
            return text
        return (self.root / rel).read_text(encoding="utf-8")

    def yaml_files(self, folder: str) -> list[str]:
        on_disk = {f"{folder}/{p.name}" for p in (self.root / folder).glob("*.yaml")}
        added = {
            rel
            for rel, text in self.overlay.items()
            if text is not None and rel.startswith(f"{folder}/") and rel.endswith(".yaml") and rel.count("/") == 1
        }
        removed = {rel for rel, text in self.overlay.items() if text is None}
        return sorted((on_disk | added) - removed)


def _line_of(node: yaml.Node, location: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it resolves."""
    line = node.start_mark.line + 1
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(record)"


def parse_record(path: Path, kind: str, text: str | None = None) -> Record | CuratedAnswer:
    """Parse one record file; every problem names the file, line, record and field."""
    text = path.read_text(encoding="utf-8") if text is None else text
    data, node = load_yaml(text, path=path)
    if not isinstance(data, dict) or node is None:
        raise RecordError("a record file must hold one YAML mapping", path=path, line=1)
    for number, line in enumerate(text.splitlines(), 1):
        # In YAML " #" starts a comment, which would silently cut a quoted passage short.
        if _UNQUOTED_QUOTE_WITH_HASH.match(line):
            raise RecordError(
                "this quote contains ' #', which YAML reads as a comment; put the quote in double quotes",
                path=path,
                line=number,
                record_id=data.get("id"),
                field="quote",
            )
    return record_from_node(node, data, path=path, kind=kind)


def record_from_node(node: yaml.Node, data: dict[str, Any], *, path: Path, kind: str) -> Record | CuratedAnswer:
    """Validate one record mapping; `node` is its YAML node, for the line of each problem."""
    record_id = data.get("id") if isinstance(data.get("id"), str) else None
    declared = data.get("kind", kind)
    if declared != kind:
        raise RecordError(
            f"kind is {declared!r} but the file is under {RECORD_DIRS[kind]}/",
            path=path,
            line=_line_of(node, ("kind",)),
            record_id=record_id,
            field="kind",
        )
    try:
        return RECORD_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        location = tuple(first["loc"])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecordError(
            f"{first['msg']}{more}",
            path=path,
            line=_line_of(node, location),
            record_id=record_id,
            field=_field_path(location),
            problems=[(_field_path(tuple(p["loc"])), _line_of(node, tuple(p["loc"])), p["msg"]) for p in problems],
        ) from exc


def _load_documents(tree: _Tree) -> list[Document]:
    manifest_rel = f"{DOCUMENTS_DIR}/{DOCUMENTS_MANIFEST}"
    manifest = tree.root / manifest_rel
    if not tree.exists(manifest_rel):
        raise KnowledgeError(f"{manifest}: the document manifest is missing")
    text = tree.read(manifest_rel)
    entries, node = load_yaml(text, path=manifest)
    entries = entries or []
    if not isinstance(entries, list):
        raise RecordError("the document manifest must be a YAML list", path=manifest, line=1)
    if node is None:
        return []  # an empty manifest
    documents: list[Document] = []
    for index, entry in enumerate(entries):
        try:
            meta = DocumentMeta.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            location = (index, *first["loc"])
            raise RecordError(
                first["msg"],
                path=manifest,
                line=_line_of(node, location),
                record_id=entry.get("id") if isinstance(entry, dict) else None,
                field=_field_path(tuple(first["loc"])),
            ) from exc
        rel = f"{DOCUMENTS_DIR}/{meta.file}"
        if not tree.exists(rel):
            raise RecordError(
                f"document file {meta.file} does not exist",
                path=manifest,
                line=_line_of(node, (index, "file")),
                record_id=meta.id,
                field="file",
            )
        if any(d.meta.id == meta.id for d in documents):
            raise RecordError(
                f"duplicate document id {meta.id!r}",
                path=manifest,
                line=_line_of(node, (index, "id")),
                record_id=meta.id,
                field="id",
            )
        documents.append(Document(meta=meta, path=tree.root / rel, text=tree.read(rel)))
    return documents


def load_documents(root: Path) -> list[Document]:
    """The source documents alone, without parsing every record: what a change that leaves the documents
    as they are needs (its whole-knowledge check loads the records with the change in place)."""
    return _load_documents(_Tree(root))


def check_sources(record: Record | CuratedAnswer, path: Path, documents: dict[str, str]) -> None:
    """Every cited passage must stand in its document, so each fact stays traceable."""
    if isinstance(record, CuratedAnswer):
        # A cited record is checked once every record is loaded (_check_answer_records).
        cited: list[tuple[str, int | None, Source | AnswerSource]] = [
            ("sources", i, s) for i, s in enumerate(record.sources) if s.document is not None
        ]
    else:
        cited = [("sources", i, s) for i, s in enumerate(record.sources)]
    if isinstance(record, VC):
        cited += [
            (f"investments[{j}].sources", i, s)
            for j, inv in enumerate(record.investments)
            for i, s in enumerate(inv.sources)
        ]
    if isinstance(record, Program):
        # A value marked as stated stands on its passage like any other fact.
        cited += [
            (f"basis.{field_name}.{value}", None, entry)
            for field_name, entries in record.basis.items()
            for value, entry in entries.items()
            if not isinstance(entry, str)
        ]
    if isinstance(record, VC):
        for j, inv in enumerate(record.investments):
            if inv.subsidy_ended and not any("補助事業廃止" in squash(s.quote) for s in inv.sources):
                raise RecordError(
                    "subsidy_ended is true but no source of this adoption says ※補助事業廃止",
                    path=path,
                    record_id=record.id,
                    field=f"investments[{j}].subsidy_ended",
                )
    for prefix, index, source in cited:
        where = prefix if index is None else f"{prefix}[{index}]"
        if source.document is None or source.quote is None:
            continue  # a curated answer citing a record (excluded above; its schema gives a document a quote)
        if source.document not in documents:
            raise RecordError(
                f"unknown document {source.document!r}", path=path, record_id=record.id, field=f"{where}.document"
            )
        if squash(source.quote) not in documents[source.document]:
            raise RecordError(
                f"quote not found in {source.document}: {source.quote[:60]!r}",
                path=path,
                record_id=record.id,
                field=f"{where}.quote",
            )


def load_knowledge(root: Path, *, overlay: Mapping[str, str | None] | None = None) -> KnowledgeBase:
    """Load every record and document under `root` (with `overlay`'s files in place of the disk's, to
    check a change before it is written), failing on the first invalid file."""
    if not root.is_dir():
        raise KnowledgeError(f"{root}: knowledge directory does not exist (set KAKEHASHI_KNOWLEDGE_DIR)")
    tree = _Tree(root, overlay)
    kb = KnowledgeBase(root=root, documents=_load_documents(tree))
    squashed = {d.meta.file: squash(d.text) for d in kb.documents}
    seen: dict[str, Path] = {}
    for kind, folder in RECORD_DIRS.items():
        for rel in tree.yaml_files(folder):
            path = root / rel
            record = parse_record(path, kind, tree.read(rel))
            if record.id in seen:
                raise RecordError(
                    f"duplicate id, also in {seen[record.id]}", path=path, record_id=record.id, field="id"
                )
            if path.stem != record.id:
                raise RecordError(
                    f"file name must be the record id ({record.id}.yaml)", path=path, record_id=record.id, field="id"
                )
            check_sources(record, path, squashed)
            seen[record.id] = path
            kb.record_paths[record.id] = path
            getattr(kb, {"program": "programs", "vc": "vcs", "cdmo": "cdmos", "answer": "answers"}[kind]).append(record)
    _check_answer_records(kb)
    return kb


def _check_answer_records(kb: KnowledgeBase) -> None:
    """A curated answer's record sources must name records that exist (retired ones included: the answer
    may still hold, and retiring is reversible)."""
    ids = {record.id for record in kb.records}
    for answer in kb.answers:
        for i, source in enumerate(answer.sources):
            if source.record is not None and source.record not in ids:
                raise RecordError(
                    f"no program, VC or CDMO has the id {source.record!r}",
                    path=kb.record_paths[answer.id],
                    record_id=answer.id,
                    field=f"sources[{i}].record",
                )
