"""Staff changes to the knowledge base: records added, updated, retired and restored, source documents added
and described, changes reverted, the whole folder exported and imported.

Each change is validated whole, written atomically, serialized across processes and recorded with its before
and after by the folder's journal (knowledge.journal); record files are read and written as staff write them
(knowledge.recordfiles); archives are knowledge.archive's. This module decides what each change writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict, Unpack

import yaml

from knowledge.archive import export_knowledge, import_knowledge
from knowledge.dates import stated_date
from knowledge.errors import (
    ConflictError,
    KnowledgeError,
    NothingToChangeError,
    RecordError,
    ReplaceNotConfirmedError,
    UnknownRecordError,
)
from knowledge.extract import DocumentReadError, extract_document
from knowledge.journal import Actor, Change, Journal
from knowledge.loader import (
    DOCUMENTS_DIR,
    DOCUMENTS_MANIFEST,
    KnowledgeBase,
    check_sources,
    load_documents,
    load_knowledge,
    record_from_node,
)
from knowledge.normalize import squash
from knowledge.recordfiles import (
    MARKDOWN_SUFFIXES,
    RECORD_SUFFIXES,
    change_summary,
    content_hash,
    is_record_markdown,
    manifest_with,
    parse_record_file,
    patch_record,
    render_record,
    strip_base,
    with_status,
)
from knowledge.schema import RECORD_DIRS, RECORD_ID, RECORD_TYPES, DocumentMeta, Ministry


class DocumentDetails(TypedDict, total=False):
    """What staff may say about a document they add; the rest is read from the file."""

    title: str
    ministry: str
    date: dt.date
    doc_id: str
    description_ja: str


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
        self._journal = Journal(root, lock_timeout_s=lock_timeout_s)

    # --- reading ----------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while changing or reading the files, across threads and processes."""
        with self._journal.locked():
            yield

    def generation(self) -> str:
        """Changes whenever the knowledge changes (a change, a revert, an import): cheap to poll."""
        return self._journal.generation()

    def head(self) -> int:
        return self._journal.head()

    def load(self) -> KnowledgeBase:
        with self.locked():
            return load_knowledge(self.root)

    def _record_rel(self, record_id: str) -> tuple[str, str]:
        if not RECORD_ID.match(record_id):
            raise UnknownRecordError(f"{record_id!r} is not a record id (lowercase letters, digits and hyphens)")
        for kind, folder in RECORD_DIRS.items():
            rel = f"{folder}/{record_id}.yaml"
            if (self.root / rel).is_file():
                return kind, rel
        raise UnknownRecordError(
            f"no program, VC, CDMO or curated answer has the id {record_id!r} (see `kakehashi kb list`)"
        )

    def record_text(self, record_id: str) -> tuple[str, str]:
        """The record file and its base: hand the base back with an update so a lost update is caught."""
        _, rel = self._record_rel(record_id)
        text = self._journal.read(rel) or ""
        return text, content_hash(text)

    def record_data(self, record_id: str) -> tuple[dict[str, Any], str]:
        text, base = self.record_text(record_id)
        return yaml.safe_load(text), base

    def history(self, record_id: str | None = None, *, limit: int | None = None) -> list[Change]:
        return self._journal.history(record_id, limit=limit)

    def get_change(self, change_id: int) -> Change:
        return self._journal.get_change(change_id)

    # --- records ----------------------------------------------------------------------------------

    def _check_base(self, rel: str, base: str | None, *, record_id: str, new: bool) -> None:
        current = self._journal.read(rel)
        if new and current is not None:
            raise ConflictError(f"{record_id} already exists; open it for editing instead (kb edit {record_id})")
        if base is not None and current is not None and content_hash(current) != base:
            later = self._journal.last_change_of(rel)
            who = f" by {later.actor.label} at {later.at:%Y-%m-%d %H:%M} UTC (change {later.id})" if later else ""
            raise ConflictError(
                f"{record_id} was changed{who} after you opened it; nothing was saved. "
                "Open it again to see the new version and reapply your edit.",
                change=later,
            )

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
            # Sources are checked by the journal's whole-knowledge validation (one load, inside Slack's 3 s).
            before = self._journal.read(rel)
            if before is None:
                return self._journal.commit(
                    action="add",
                    summary=change_summary(kind, record, before),
                    records=(record.id,),
                    files={rel: render_record(record)},
                    actor=actor,
                )
            # An edit rewrites only the fields that changed: the rest of the file stays byte for byte.
            text, changed = patch_record(before, record)
            summary = f"update {kind} {record.id} ({', '.join(changed) or 'nothing'})"
            return self._journal.commit(
                action="update", summary=summary, records=(record.id,), files={rel: text}, actor=actor
            )

    def add_records(self, text: str, *, name: str, actor: Actor) -> Change:
        """A YAML file of one or more records, or a Markdown file whose front matter is a record and whose
        body is its main text. Existing ids are updated; a `# kakehashi-base:` line guards against lost updates."""
        source = Path(name)
        text, base = strip_base(text)
        parsed = parse_record_file(text, source)
        if base is not None and len(parsed) != 1:
            raise RecordError("a kakehashi-base line applies to a file with exactly one record", path=source, line=1)
        with self.locked():
            # Quotes are checked here too, so a bad one is named in the staff member's own file; only the
            # documents are read, as the journal's commit loads the records once, with the change in place.
            squashed = {d.meta.file: squash(d.text) for d in load_documents(self.root)}
            files: dict[str, str | None] = {}
            actions, ids = [], []
            for record, verbatim in parsed:
                check_sources(record, source, squashed)
                rel = f"{RECORD_DIRS[record.kind]}/{record.id}.yaml"
                for other_kind, folder in RECORD_DIRS.items():
                    if other_kind != record.kind and (self.root / folder / f"{record.id}.yaml").is_file():
                        raise RecordError(
                            f"the id is already used by a {other_kind}", path=source, record_id=record.id, field="id"
                        )
                if rel in files:
                    raise RecordError(
                        "the same id appears twice in this file", path=source, record_id=record.id, field="id"
                    )
                self._check_base(rel, base, record_id=record.id, new=False)
                before = self._journal.read(rel)
                files[rel] = verbatim if verbatim is not None else render_record(record)
                actions.append(change_summary(record.kind, record, before))
                ids.append(record.id)
            all_new = all(a.startswith("add ") for a in actions)
            return self._journal.commit(
                action="add" if all_new else "update",
                summary="; ".join(actions),
                records=tuple(ids),
                files=files,
                actor=actor,
            )

    def _set_status(self, record_id: str, status: str, *, actor: Actor) -> Change:
        with self.locked():
            kind, rel = self._record_rel(record_id)
            text = self._journal.read(rel) or ""
            current = (yaml.safe_load(text) or {}).get("status", "active")
            if current == status:
                raise NothingToChangeError(f"{record_id} is already {status}")
            action = "retire" if status == "retired" else "restore"
            return self._journal.commit(
                action=action,
                summary=f"{action} {kind} {record_id}",
                records=(record_id,),
                files={rel: with_status(text, status)},
                actor=actor,
            )

    def retire(self, record_id: str, *, actor: Actor) -> Change:
        """Kept for history and still listed, no longer indexed or recommended."""
        return self._set_status(record_id, "retired", actor=actor)

    def restore(self, record_id: str, *, actor: Actor) -> Change:
        return self._set_status(record_id, "active", actor=actor)

    # --- documents --------------------------------------------------------------------------------

    def add_document(
        self,
        *,
        name: str,
        data: bytes,
        actor: Actor,
        title: str | None = None,
        ministry: str | None = None,
        date: dt.date | None = None,
        doc_id: str | None = None,
        description_ja: str | None = None,
        replace: bool = False,
    ) -> Change:
        """Extract the text of an uploaded file and add it as a source document, or replace the text of the
        one with `doc_id` (naming it is the confirmation). A file whose name alone matches an existing
        document's id raises ReplaceNotConfirmedError unless `replace`; text identical to a document's
        raises NothingToChangeError. An unreadable file raises DocumentReadError. Nothing is written then."""
        extracted = extract_document(name, data, max_bytes=self.max_upload_bytes)
        slug = doc_id or slugify(name, data)
        with self.locked():
            documents = load_documents(self.root)
            existing = next((d for d in documents if d.meta.id == slug), None)
            same = next((d for d in documents if d.text == extracted.text), None)
            if same is not None and (existing is None or same is existing):
                raise NothingToChangeError(
                    f"the same text is already the document {same.meta.id} ({same.meta.title}); nothing changed"
                )
            if existing is not None and doc_id is None and not replace:
                raise ReplaceNotConfirmedError(
                    f"a document with the id {slug} ({existing.meta.title}) exists already; to replace its text "
                    f"say so (`kakehashi kb add {name} --id {slug}`, or the Replace button in Slack); to add a new "
                    "document, rename the file",
                    doc_id=slug,
                    title=existing.meta.title,
                )
            file = existing.meta.file if existing else f"{slug}.txt"
            if existing is None and (self.root / DOCUMENTS_DIR / file).exists():
                file = f"{slug}-{secrets.token_hex(3)}.txt"
            entry = {
                "file": file,
                "id": slug,
                "title": title or (existing.meta.title if existing else None) or extracted.title or Path(name).stem,
                "ministry": ministry or (existing.meta.ministry.value if existing else Ministry.OTHER.value),
                # The date the document states on its cover, before the file's metadata (when it was saved)
                # and, only when neither says, today.
                "date": date
                or (existing.meta.date if existing else None)
                or stated_date(extracted.text)
                or extracted.date
                or dt.date.today(),
                "description_ja": description_ja or (existing.meta.description_ja if existing else None),
                "original": name,
                "added_by": actor.id,
            }
            meta = DocumentMeta.model_validate({k: v for k, v in entry.items() if v is not None})
            manifest_rel = f"{DOCUMENTS_DIR}/{DOCUMENTS_MANIFEST}"
            manifest = manifest_with(self._journal.read(manifest_rel) or "", meta)
            action = "update-document" if existing else "add-document"
            return self._journal.commit(
                action=action,
                summary=f"{action} {slug} ({meta.title}, from {name})",
                records=(slug,),
                actor=actor,
                warnings=extracted.warnings,
                files={f"{DOCUMENTS_DIR}/{file}": extracted.text, manifest_rel: manifest},
            )

    def update_document_details(
        self,
        doc_id: str,
        *,
        actor: Actor,
        title: str | None = None,
        ministry: str | None = None,
        date: dt.date | None = None,
        description_ja: str | None = None,
    ) -> Change:
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
            return self._journal.commit(
                action="update-document",
                summary=f"update-document {doc_id} (details)",
                records=(doc_id,),
                actor=actor,
                files={manifest_rel: manifest_with(self._journal.read(manifest_rel) or "", meta)},
            )

    # --- files from the command line --------------------------------------------------------------

    def add_file(self, path: Path, *, actor: Actor, **document_meta: Unpack[DocumentDetails]) -> Change:
        """A record file (YAML, or Markdown with record front matter) or a source document."""
        if not path.is_file():
            raise KnowledgeError(f"{path}: no such file")
        suffix = path.suffix.lower()
        size = path.stat().st_size
        if suffix in RECORD_SUFFIXES:
            return self.add_records(self._small_text(path, size), name=str(path), actor=actor)
        if (
            suffix in MARKDOWN_SUFFIXES
            and size <= self.max_upload_bytes
            and is_record_markdown(path.read_bytes()[:4096].decode("utf-8-sig", errors="replace"))
        ):
            return self.add_records(self._small_text(path, size), name=str(path), actor=actor)
        if size > self.max_upload_bytes:
            raise DocumentReadError(
                f"{path.name} is {size / 1024 / 1024:.1f} MB, over the {self.max_upload_bytes / 1024 / 1024:.0f} MB "
                "limit",
                reason="too_large",
                name=path.name,
            )
        return self.add_document(name=path.name, data=path.read_bytes(), actor=actor, **document_meta)

    def _small_text(self, path: Path, size: int) -> str:
        if size > self.max_upload_bytes:
            raise RecordError(f"record file is {size} bytes, over the limit", path=path)
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RecordError(f"not UTF-8 text (byte {exc.start})", path=path) from exc

    # --- revert, export, import -------------------------------------------------------------------

    def revert(self, change_id: int, *, actor: Actor) -> Change:
        """Put back what a change replaced, as a new change; refused if a later change touched the same files."""
        return self._journal.revert(change_id, actor=actor)

    def export(self, destination: Path) -> int:
        """A .tar.gz of records, documents and history; returns the number of files."""
        return export_knowledge(self._journal, destination)

    def import_archive(self, archive_path: Path) -> KnowledgeBase:
        """Replace records, documents and history with an export's, after checking it loads cleanly.
        The replaced folders are kept in `.replaced-<time>/` beside them, so nothing is lost."""
        return import_knowledge(self._journal, archive_path)
