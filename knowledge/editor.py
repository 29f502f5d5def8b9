"""Staff changes to the knowledge base: validated whole, written atomically, serialized across
processes, recorded with before and after, and reversible.

The knowledge files stay the plain YAML and text a reviewer reads in git; the history sits beside
them (`history/000001.json`, ...), so an export carries it along. A change is written in four
steps, each an atomic rename: a journal of every file's before and after, the files, the history
entry, then `HEAD` naming the change. Writing `HEAD` is the commit: after a crash, the next editor
that takes the lock removes the journal of a change `HEAD` names, and rolls any other back from it
(files, then its history entry), so a change is either whole and in the history or absent and its
number free. Temporary files a crash left behind are removed then too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from filelock import FileLock, Timeout

from knowledge import yamlpatch
from knowledge.dates import stated_date
from knowledge.errors import KnowledgeError, RecordError
from knowledge.files import write_atomic
from knowledge.frontmatter import split_front_matter
from knowledge.loader import (
    DOCUMENTS_DIR,
    DOCUMENTS_MANIFEST,
    KnowledgeBase,
    check_sources,
    load_documents,
    load_knowledge,
    parse_record,
    record_from_node,
)
from knowledge.normalize import squash
from knowledge.schema import RECORD_DIRS, RECORD_ID, RECORD_TYPES, CuratedAnswer, DocumentMeta, Ministry, Record
from knowledge.yamltext import load_yaml, load_yaml_all

HISTORY_DIR = "history"
HEAD_FILE = "HEAD"
JOURNAL_FILE = "pending.json"
LOCK_FILE = ".kakehashi.lock"
BASE_HEADER = "# kakehashi-base: "
TREE_PARTS = ("programs", "vcs", "cdmos", "answers", DOCUMENTS_DIR, HISTORY_DIR)
EXPORT_META = "kakehashi-export.json"
RECORD_SUFFIXES = (".yaml", ".yml")
_DATE_FIELDS = frozenset({"as_of", "opens", "closes", "announced", "date"})
_BODY_FIELD = {"program": "summary_ja", "vc": "notes_ja", "cdmo": "services_ja", "answer": "answer_ja"}
# Field order in written files: identity first, the facts, then provenance, as the seed files read.
_LEADING = ("id", "kind")
_TRAILING = ("status", "url", "notes_ja", "as_of", "sources")


class ConflictError(KnowledgeError):
    """Someone changed the record after the caller read it; nothing was written."""

    def __init__(self, message: str, *, change: Change | None = None) -> None:
        super().__init__(message)
        self.change = change


class UnknownRecordError(KnowledgeError):
    """No record, document or change has that id."""


class NothingToChangeError(KnowledgeError):
    """The change would leave every file as it is."""


class ReplaceNotConfirmedError(KnowledgeError):
    """An upload would replace the text of an existing document; staff must say that they mean it."""

    def __init__(self, message: str, *, doc_id: str, title: str) -> None:
        super().__init__(message)
        self.doc_id = doc_id
        self.title = title


@dataclass(frozen=True)
class Actor:
    id: str
    name: str | None = None
    via: str = "cli"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Change:
    id: int
    at: dt.datetime
    actor: Actor
    action: str
    summary: str
    records: tuple[str, ...]
    files: tuple[FileChange, ...]
    reverts: int | None = None
    warnings: tuple[str, ...] = ()  # what staff should know about an added document (e.g. pages skipped)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": asdict(self.actor), "action": self.action,
                "summary": self.summary, "records": list(self.records), "reverts": self.reverts,
                "warnings": list(self.warnings), "files": [asdict(f) for f in self.files]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(id=int(data["id"]), at=dt.datetime.fromisoformat(data["at"]), actor=Actor(**data["actor"]),
                   action=data["action"], summary=data["summary"], records=tuple(data["records"]),
                   files=tuple(FileChange(**f) for f in data["files"]), reverts=data.get("reverts"),
                   warnings=tuple(data.get("warnings") or ()))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _strip_base(text: str) -> tuple[str, str | None]:
    base = None
    kept = []
    for line in text.splitlines(keepends=True):
        if line.startswith(BASE_HEADER) and base is None:
            base = line[len(BASE_HEADER):].strip()
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


def render_record(record: Record | CuratedAnswer) -> str:
    """The YAML file for a record, laid out like the hand-written ones."""
    data = _dates_as_dates(record.model_dump(mode="json", exclude_none=True))
    ordered = {key: data[key] for key in _LEADING if key in data}
    ordered |= {key: value for key, value in data.items() if key not in _LEADING and key not in _TRAILING}
    ordered |= {key: data[key] for key in _TRAILING if key in data}
    body = yaml.dump(ordered, Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)
    return f"# {record.title}\n{body}"


def patch_record(before: str, record: Record) -> tuple[str, list[str]]:
    """The record's file with only its changed fields rewritten (knowledge.yamlpatch); the changed fields."""
    data = _dates_as_dates(record.model_dump(mode="json", exclude_none=True))
    defaults = {name: field.get_default(call_default_factory=True) for name, field in type(record).model_fields.items()}
    return yamlpatch.patch(before, data, defaults=defaults)


def slugify(name: str, data: bytes) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", PurePosixPath(name).stem.lower()).strip("-")[:60]
    return stem if len(stem) >= 3 else f"doc-{hashlib.sha256(data).hexdigest()[:10]}"


class KnowledgeEditor:
    """Every change to the knowledge folder goes through here."""

    def __init__(self, *, root: Path, max_upload_bytes: int = 20 * 1024 * 1024, lock_timeout_s: float = 30.0) -> None:
        if not root.is_dir():
            raise KnowledgeError(f"{root}: knowledge directory does not exist (set KAKEHASHI_KNOWLEDGE_DIR)")
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self._lock = FileLock(str(root / LOCK_FILE), timeout=lock_timeout_s)
        self._lock_timeout_s = lock_timeout_s

    # --- reading ----------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while changing or reading the files, across threads and processes."""
        try:
            with self._lock:
                self._recover()
                yield
        except Timeout as exc:
            raise KnowledgeError(f"another change to {self.root} has held the lock for over "
                                 f"{self._lock_timeout_s:.0f}s; try again in a moment") from exc

    def generation(self) -> str:
        """Changes whenever the knowledge changes (a change, a revert, an import): cheap to poll."""
        head = self.root / HISTORY_DIR / HEAD_FILE
        try:
            return head.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return "0"

    def head(self) -> int:
        return int(self.generation().split()[0])

    def load(self) -> KnowledgeBase:
        with self.locked():
            return load_knowledge(self.root)

    def _read(self, rel: str) -> str | None:
        path = self.root / rel
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def _record_rel(self, record_id: str) -> tuple[str, str]:
        if not RECORD_ID.match(record_id):
            raise UnknownRecordError(f"{record_id!r} is not a record id (lowercase letters, digits and hyphens)")
        for kind, folder in RECORD_DIRS.items():
            rel = f"{folder}/{record_id}.yaml"
            if (self.root / rel).is_file():
                return kind, rel
        raise UnknownRecordError(f"no program, VC, CDMO or curated answer has the id {record_id!r} "
                                 "(see `kakehashi kb list`)")

    def record_text(self, record_id: str) -> tuple[str, str]:
        """The record file and its base: hand the base back with an update so a lost update is caught."""
        _, rel = self._record_rel(record_id)
        text = self._read(rel) or ""
        return text, content_hash(text)

    def record_data(self, record_id: str) -> tuple[dict[str, Any], str]:
        text, base = self.record_text(record_id)
        return yaml.safe_load(text), base

    # --- history ----------------------------------------------------------------------------------

    def _history_files(self) -> list[Path]:
        folder = self.root / HISTORY_DIR
        return sorted(folder.glob("[0-9]*.json")) if folder.is_dir() else []

    def history(self, record_id: str | None = None, *, limit: int | None = None) -> list[Change]:
        changes = []
        for path in reversed(self._history_files()):
            change = Change.from_json(json.loads(path.read_text(encoding="utf-8")))
            if record_id is None or record_id in change.records:
                changes.append(change)
                if limit is not None and len(changes) >= limit:
                    break
        return changes

    def get_change(self, change_id: int) -> Change:
        path = self.root / HISTORY_DIR / f"{change_id:06d}.json"
        if not path.is_file():
            raise UnknownRecordError(f"no change {change_id} (see `kakehashi kb history`)")
        return Change.from_json(json.loads(path.read_text(encoding="utf-8")))

    def _last_change_of(self, rel: str) -> Change | None:
        for path in reversed(self._history_files()):
            change = Change.from_json(json.loads(path.read_text(encoding="utf-8")))
            if any(f.path == rel for f in change.files):
                return change
        return None

    # --- the write path ---------------------------------------------------------------------------

    def _recover(self) -> None:
        """Finish what a crash interrupted: a journal whose change HEAD names only needs removing; any
        other change is undone from it. Runs with the lock held, so nobody else is writing."""
        history = self.root / HISTORY_DIR
        journal = history / JOURNAL_FILE
        if journal.is_file():
            pending = json.loads(journal.read_text(encoding="utf-8"))
            change_id = int(pending["id"])
            if self.head() < change_id:
                for item in pending["files"]:
                    path = self.root / item["path"]
                    if item["before"] is None:
                        path.unlink(missing_ok=True)
                    elif self._read(item["path"]) != item["before"]:
                        write_atomic(path, item["before"])
                # Its entry, if written, goes too: the number is the next change's, and no entry may
                # describe a change that is not on disk.
                (history / f"{change_id:06d}.json").unlink(missing_ok=True)
            journal.unlink()
        else:
            self._repair_head()
        self._sweep_temporaries()

    def _repair_head(self) -> None:
        """An entry one past HEAD with no journal is a change that is whole on disk (an editor before this
        protocol removed its journal before moving HEAD): HEAD moves to it rather than the next change
        overwriting it."""
        head = self.head()
        newest = head
        while (self.root / HISTORY_DIR / f"{newest + 1:06d}.json").is_file():
            newest += 1
        if newest != head:
            write_atomic(self.root / HISTORY_DIR / HEAD_FILE, f"{newest} {secrets.token_hex(4)}\n")

    def _sweep_temporaries(self) -> None:
        """Half-written `.NAME.*.tmp` files and import staging folders of a process that died mid-write."""
        for part in TREE_PARTS:
            folder = self.root / part
            if folder.is_dir():
                for leftover in folder.glob(".*.tmp"):
                    leftover.unlink(missing_ok=True)
        for staging in self.root.glob(".import-*"):
            shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, *, action: str, summary: str, records: tuple[str, ...], files: Mapping[str, str | None],
                actor: Actor, reverts: int | None = None, warnings: tuple[str, ...] = ()) -> Change:
        """Validate the knowledge base as it would be, then write. Call with the lock held."""
        changes = tuple(FileChange(path=rel, before=self._read(rel), after=after) for rel, after in files.items())
        changes = tuple(c for c in changes if c.before != c.after)
        if not changes:
            raise NothingToChangeError("nothing to change: the files already say that")
        load_knowledge(self.root, overlay={c.path: c.after for c in changes})
        change = Change(id=self.head() + 1, at=dt.datetime.now(dt.UTC), actor=actor, action=action,
                        summary=summary, records=records, files=changes, reverts=reverts, warnings=warnings)
        history = self.root / HISTORY_DIR
        journal = history / JOURNAL_FILE
        write_atomic(journal, json.dumps(change.to_json(), ensure_ascii=False))
        for item in changes:
            path = self.root / item.path
            if item.after is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, item.after)
        write_atomic(history / f"{change.id:06d}.json", json.dumps(change.to_json(), ensure_ascii=False, indent=1))
        write_atomic(history / HEAD_FILE, f"{change.id} {secrets.token_hex(4)}\n")
        journal.unlink()
        return change

    # --- records ----------------------------------------------------------------------------------

    def _check_base(self, rel: str, base: str | None, *, record_id: str, new: bool) -> None:
        current = self._read(rel)
        if new and current is not None:
            raise ConflictError(f"{record_id} already exists; open it for editing instead (kb edit {record_id})")
        if base is not None and current is not None and content_hash(current) != base:
            later = self._last_change_of(rel)
            who = f" by {later.actor.label} at {later.at:%Y-%m-%d %H:%M} UTC (change {later.id})" if later else ""
            raise ConflictError(f"{record_id} was changed{who} after you opened it; nothing was saved. "
                                "Open it again to see the new version and reapply your edit.", change=later)

    def save_record(self, data: Mapping[str, Any], *, actor: Actor, base: str | None = None) -> Change:
        """A record from a form: new when `base` is None, else an update of the version `base` names."""
        kind = data.get("kind")
        if kind not in RECORD_TYPES:
            raise RecordError(f"kind must be one of {', '.join(RECORD_TYPES)}", path=Path("(form)"), field="kind")
        record_id = str(data.get("id") or "")
        rel = f"{RECORD_DIRS[kind]}/{record_id}.yaml"
        node = yaml.compose(yaml.safe_dump(dict(data), allow_unicode=True))
        assert node is not None
        record = record_from_node(node, dict(data), path=Path(rel), kind=kind)
        with self.locked():
            self._check_base(rel, base, record_id=record.id, new=base is None)
            # Sources are checked by _commit's whole-knowledge validation (one load, inside Slack's 3 s).
            before = self._read(rel)
            if before is None:
                return self._commit(action="add", summary=self._summary(kind, record, before), records=(record.id,),
                                    files={rel: render_record(record)}, actor=actor)
            # An edit rewrites only the fields that changed: the rest of the file stays byte for byte.
            text, changed = patch_record(before, record)
            summary = f"update {kind} {record.id} ({', '.join(changed) or 'nothing'})"
            return self._commit(action="update", summary=summary, records=(record.id,), files={rel: text},
                                actor=actor)

    @staticmethod
    def _summary(kind: str, record: Record | CuratedAnswer, before: str | None) -> str:
        if before is None:
            return f"add {kind} {record.id} ({record.title})"
        old = yaml.safe_load(before) or {}
        new = record.model_dump(mode="json", exclude_none=True)
        fields = sorted(k for k in set(old) | set(new)
                        if json.dumps(old.get(k), default=str, ensure_ascii=False)
                        != json.dumps(new.get(k), default=str, ensure_ascii=False))
        return f"update {kind} {record.id} ({', '.join(fields) or 'layout only'})"

    def add_records(self, text: str, *, name: str, actor: Actor) -> Change:
        """A YAML file of one or more records, or a Markdown file whose front matter is a record and whose
        body is its main text. Existing ids are updated; a `# kakehashi-base:` line guards against lost updates."""
        source = Path(name)
        text, base = _strip_base(text)
        parsed = self._parse_record_file(text, source)
        if base is not None and len(parsed) != 1:
            raise RecordError("a kakehashi-base line applies to a file with exactly one record", path=source, line=1)
        with self.locked():
            # Quotes are checked here too, so a bad one is named in the staff member's own file; only the
            # documents are read, as _commit loads the records once, with the change in place.
            squashed = {d.meta.file: squash(d.text) for d in load_documents(self.root)}
            files: dict[str, str | None] = {}
            actions, ids = [], []
            for record, verbatim in parsed:
                check_sources(record, source, squashed)
                rel = f"{RECORD_DIRS[record.kind]}/{record.id}.yaml"
                for other_kind, folder in RECORD_DIRS.items():
                    if other_kind != record.kind and (self.root / folder / f"{record.id}.yaml").is_file():
                        raise RecordError(f"the id is already used by a {other_kind}", path=source,
                                          record_id=record.id, field="id")
                if rel in files:
                    raise RecordError("the same id appears twice in this file", path=source, record_id=record.id,
                                      field="id")
                self._check_base(rel, base, record_id=record.id, new=False)
                before = self._read(rel)
                files[rel] = verbatim if verbatim is not None else render_record(record)
                actions.append(self._summary(record.kind, record, before))
                ids.append(record.id)
            all_new = all(a.startswith("add ") for a in actions)
            return self._commit(action="add" if all_new else "update", summary="; ".join(actions),
                                records=tuple(ids), files=files, actor=actor)

    def _parse_record_file(self, text: str, source: Path) -> list[tuple[Record | CuratedAnswer, str | None]]:
        """(record, the text to keep verbatim or None to render it) for each record in the file."""
        if source.suffix.lower() in (".md", ".markdown"):
            front = split_front_matter(text)
            if front is None:
                raise RecordError("a Markdown record file starts with YAML front matter between --- lines",
                                  path=source, line=1)
            body = front.body
            data, node = load_yaml(front.block, path=source, first_line=front.first_line)
            if not isinstance(data, dict) or node is None:
                raise RecordError("the front matter must be a YAML mapping", path=source, line=2)
            kind = self._kind_of(data, source)
            field = _BODY_FIELD[kind]
            if body.strip():
                if data.get(field):
                    raise RecordError(f"{field} is given twice: in the front matter and as the body", path=source,
                                      field=field)
                data[field] = body.strip()
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
        parsed = []
        for data, node in items:
            if not isinstance(data, dict):
                raise RecordError("each record must be a YAML mapping", path=source, line=node.start_mark.line + 1)
            kind = self._kind_of(data, source, line=node.start_mark.line + 1)
            if single:
                # One record as staff wrote it: keep their layout and comments for review in git.
                parsed.append((parse_record(source, kind, text), text))
            else:
                parsed.append((record_from_node(node, data, path=source, kind=kind), None))
        return parsed

    @staticmethod
    def _kind_of(data: dict[str, Any], source: Path, line: int | None = None) -> str:
        kind = data.get("kind")
        if kind not in RECORD_TYPES:
            raise RecordError(f"kind must be one of {', '.join(RECORD_TYPES)} (got {kind!r})", path=source,
                              line=line, record_id=data.get("id") if isinstance(data.get("id"), str) else None,
                              field="kind")
        return str(kind)

    def _set_status(self, record_id: str, status: str, *, actor: Actor) -> Change:
        with self.locked():
            kind, rel = self._record_rel(record_id)
            text = self._read(rel) or ""
            current = (yaml.safe_load(text) or {}).get("status", "active")
            if current == status:
                raise NothingToChangeError(f"{record_id} is already {status}")
            if re.search(r"^status:.*$", text, flags=re.MULTILINE):
                new_text = re.sub(r"^status:.*$", f"status: {status}", text, count=1, flags=re.MULTILINE)
            else:
                new_text = re.sub(r"^(id:.*\n)", rf"\1status: {status}\n", text, count=1, flags=re.MULTILINE)
            action = "retire" if status == "retired" else "restore"
            return self._commit(action=action, summary=f"{action} {kind} {record_id}", records=(record_id,),
                                files={rel: new_text}, actor=actor)

    def retire(self, record_id: str, *, actor: Actor) -> Change:
        """Kept for history and still listed, no longer indexed or recommended."""
        return self._set_status(record_id, "retired", actor=actor)

    def restore(self, record_id: str, *, actor: Actor) -> Change:
        return self._set_status(record_id, "active", actor=actor)

    # --- documents --------------------------------------------------------------------------------

    def add_document(self, *, name: str, data: bytes, actor: Actor, title: str | None = None,
                     ministry: str | None = None, date: dt.date | None = None, doc_id: str | None = None,
                     description_ja: str | None = None, replace: bool = False) -> Change:
        """Extract the text of an uploaded file and add it as a source document, or replace the text of the
        one with `doc_id` (naming it is the confirmation). A file whose name alone matches an existing
        document's id raises ReplaceNotConfirmedError unless `replace`; text identical to a document's
        raises NothingToChangeError. An unreadable file raises DocumentReadError. Nothing is written then."""
        from knowledge.extract import extract_document

        extracted = extract_document(name, data, max_bytes=self.max_upload_bytes)
        slug = doc_id or slugify(name, data)
        with self.locked():
            documents = load_documents(self.root)
            existing = next((d for d in documents if d.meta.id == slug), None)
            same = next((d for d in documents if d.text == extracted.text), None)
            if same is not None and (existing is None or same is existing):
                raise NothingToChangeError(f"the same text is already the document {same.meta.id} "
                                           f"({same.meta.title}); nothing changed")
            if existing is not None and doc_id is None and not replace:
                raise ReplaceNotConfirmedError(
                    f"a document with the id {slug} ({existing.meta.title}) exists already; to replace its text "
                    f"say so (`kakehashi kb add {name} --id {slug}`, or the Replace button in Slack); to add a new "
                    "document, rename the file", doc_id=slug, title=existing.meta.title)
            file = existing.meta.file if existing else f"{slug}.txt"
            if existing is None and (self.root / DOCUMENTS_DIR / file).exists():
                file = f"{slug}-{secrets.token_hex(3)}.txt"
            entry = {
                "file": file, "id": slug,
                "title": title or (existing.meta.title if existing else None) or extracted.title or Path(name).stem,
                "ministry": ministry or (existing.meta.ministry.value if existing else Ministry.OTHER.value),
                # The date the document states on its cover, before the file's metadata (when it was saved)
                # and, only when neither says, today.
                "date": date or (existing.meta.date if existing else None) or stated_date(extracted.text)
                or extracted.date or dt.date.today(),
                "description_ja": description_ja or (existing.meta.description_ja if existing else None),
                "original": name, "added_by": actor.id,
            }
            meta = DocumentMeta.model_validate({k: v for k, v in entry.items() if v is not None})
            manifest_rel = f"{DOCUMENTS_DIR}/{DOCUMENTS_MANIFEST}"
            manifest = self._manifest_with(self._read(manifest_rel) or "", meta)
            action = "update-document" if existing else "add-document"
            return self._commit(action=action, summary=f"{action} {slug} ({meta.title}, from {name})",
                                records=(slug,), actor=actor, warnings=extracted.warnings,
                                files={f"{DOCUMENTS_DIR}/{file}": extracted.text, manifest_rel: manifest})

    def update_document_details(self, doc_id: str, *, actor: Actor, title: str | None = None,
                                ministry: str | None = None, date: dt.date | None = None,
                                description_ja: str | None = None) -> Change:
        """New title, ministry, date or description for a document, its text untouched. An empty
        description clears it; None leaves a field as it is."""
        with self.locked():
            document = next((d for d in load_documents(self.root) if d.meta.id == doc_id), None)
            if document is None:
                raise UnknownRecordError(f"no document has the id {doc_id!r} (see `kakehashi kb list --kind document`)")
            updates: dict[str, Any] = {"title": title, "ministry": ministry, "date": date}
            updates = {k: v for k, v in updates.items() if v is not None}
            if description_ja is not None:
                updates["description_ja"] = description_ja.strip() or None
            meta = DocumentMeta.model_validate({**document.meta.model_dump(), **updates})
            manifest_rel = f"{DOCUMENTS_DIR}/{DOCUMENTS_MANIFEST}"
            return self._commit(action="update-document", summary=f"update-document {doc_id} (details)",
                                records=(doc_id,), actor=actor,
                                files={manifest_rel: self._manifest_with(self._read(manifest_rel) or "", meta)})

    @staticmethod
    def _manifest_with(text: str, meta: DocumentMeta) -> str:
        entry = meta.model_dump(mode="json", exclude_none=True)
        entries = yaml.safe_load(text) or []
        if not any(e.get("id") == meta.id for e in entries):
            block = yaml.dump([entry], Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)
            return (text if text.endswith("\n") or not text else text + "\n") + block
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
        entries = [entry if e.get("id") == meta.id else e for e in entries]
        return header + yaml.dump(entries, Dumper=_RecordDumper, allow_unicode=True, sort_keys=False, width=4096)

    # --- files from the command line --------------------------------------------------------------

    def add_file(self, path: Path, *, actor: Actor, **document_meta: Any) -> Change:
        """A record file (YAML, or Markdown with record front matter) or a source document."""
        if not path.is_file():
            raise KnowledgeError(f"{path}: no such file")
        suffix = path.suffix.lower()
        size = path.stat().st_size
        if suffix in RECORD_SUFFIXES:
            return self.add_records(self._small_text(path, size), name=str(path), actor=actor)
        if suffix in (".md", ".markdown") and size <= self.max_upload_bytes:
            front = split_front_matter(path.read_bytes()[:4096].decode("utf-8-sig", errors="replace"))
            if front is not None and front.fields().get("kind") in RECORD_TYPES:
                return self.add_records(self._small_text(path, size), name=str(path), actor=actor)
        if size > self.max_upload_bytes:
            from knowledge.extract import DocumentReadError

            raise DocumentReadError(
                f"{path.name} is {size / 1024 / 1024:.1f} MB, over the {self.max_upload_bytes / 1024 / 1024:.0f} MB "
                "limit", reason="too_large", name=path.name)
        return self.add_document(name=path.name, data=path.read_bytes(), actor=actor, **document_meta)

    def _small_text(self, path: Path, size: int) -> str:
        if size > self.max_upload_bytes:
            raise RecordError(f"record file is {size} bytes, over the limit", path=path)
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RecordError(f"not UTF-8 text (byte {exc.start})", path=path) from exc

    # --- revert -----------------------------------------------------------------------------------

    def revert(self, change_id: int, *, actor: Actor) -> Change:
        """Put back what a change replaced, as a new change; refused if a later change touched the same files."""
        with self.locked():
            change = self.get_change(change_id)
            files: dict[str, str | None] = {}
            for item in change.files:
                if self._read(item.path) != item.after:
                    later = self._last_change_of(item.path)
                    by = f" by change {later.id} ({later.summary})" if later and later.id != change.id else ""
                    raise ConflictError(f"{item.path} was changed again{by}; revert that change first", change=later)
                files[item.path] = item.before
            return self._commit(action="revert", summary=f"revert change {change.id}: {change.summary}",
                                records=change.records, files=files, actor=actor, reverts=change.id)

    # --- export / import --------------------------------------------------------------------------

    def export(self, destination: Path) -> int:
        """A .tar.gz of records, documents and history; returns the number of files."""
        with self.locked():
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
            os.close(fd)
            count = 0
            try:
                with tarfile.open(tmp, "w:gz") as archive:
                    meta = json.dumps({"format": 1, "head": self.head(), "exported_at": dt.datetime.now(dt.UTC)
                                       .isoformat()}).encode()
                    info = tarfile.TarInfo(EXPORT_META)
                    info.size = len(meta)
                    archive.addfile(info, io.BytesIO(meta))
                    for part in TREE_PARTS:
                        folder = self.root / part
                        if not folder.is_dir():
                            continue
                        for path in sorted(folder.rglob("*")):
                            if path.is_file() and path.name != JOURNAL_FILE and not path.name.endswith(".tmp"):
                                archive.add(path, arcname=str(path.relative_to(self.root)), recursive=False)
                                count += 1
                os.replace(tmp, destination)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return count

    def import_archive(self, archive_path: Path) -> KnowledgeBase:
        """Replace records, documents and history with an export's, after checking it loads cleanly.
        The replaced folders are kept in `.replaced-<time>/` beside them, so nothing is lost."""
        if not archive_path.is_file():
            raise KnowledgeError(f"{archive_path}: no such file")
        with self.locked():
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".import-"))
            try:
                try:
                    with tarfile.open(archive_path, "r:*") as archive:
                        names = archive.getnames()
                        if EXPORT_META not in names:
                            raise KnowledgeError(f"{archive_path}: not a kakehashi export ({EXPORT_META} missing)")
                        stray = [n for n in names if n != EXPORT_META and PurePosixPath(n).parts[0] not in TREE_PARTS]
                        if stray:
                            raise KnowledgeError(f"{archive_path}: unexpected entries, e.g. {stray[0]}")
                        archive.extractall(staging, filter="data")
                except (tarfile.TarError, OSError, EOFError) as exc:
                    raise KnowledgeError(f"{archive_path}: cannot read the archive: {exc}") from exc
                for part in TREE_PARTS:
                    (staging / part).mkdir(exist_ok=True)
                load_knowledge(staging)
                self._swap_in(staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            # The generation must move even if the imported history ends at the same number.
            head = self.root / HISTORY_DIR / HEAD_FILE
            number = self.head() if head.is_file() else 0
            write_atomic(head, f"{number} {secrets.token_hex(4)}\n")
            return load_knowledge(self.root)

    def _swap_in(self, staging: Path) -> None:
        backup = self.root / f".replaced-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
        backup.mkdir()
        moved: list[str] = []
        try:
            for part in TREE_PARTS:
                if (self.root / part).exists():
                    os.replace(self.root / part, backup / part)
                moved.append(part)
                os.replace(staging / part, self.root / part)
        except BaseException:
            for part in moved:
                if (backup / part).exists():
                    shutil.rmtree(self.root / part, ignore_errors=True)
                    os.replace(backup / part, self.root / part)
            raise
