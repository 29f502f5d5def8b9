"""The knowledge folder's history, lock and write protocol: every change validated whole, written
atomically, serialized across processes, recorded with before and after, and reversible.

The knowledge files stay the plain YAML and text a reviewer reads in git; the history sits beside
them (`history/000001.json`, ...), so an export carries it along. A change is written in four
steps, each an atomic rename: a journal of every file's before and after, the files, the history
entry, then `HEAD` naming the change. Writing `HEAD` is the commit: after a crash, the next writer
that takes the lock removes the journal of a change `HEAD` names, and rolls any other back from it
(files, then its history entry), so a change is either whole and in the history or absent and its
number free. Temporary files a crash left behind are removed then too.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from knowledge.errors import ConflictError, KnowledgeError, NothingToChangeError, UnknownRecordError
from knowledge.files import write_atomic
from knowledge.loader import DOCUMENTS_DIR, load_knowledge

HISTORY_DIR = "history"
HEAD_FILE = "HEAD"
JOURNAL_FILE = "pending.json"
LOCK_FILE = ".kakehashi.lock"
IMPORT_STAGING_PREFIX = ".import-"
# What a knowledge folder consists of: what an export carries and an import replaces.
TREE_PARTS = ("programs", "vcs", "cdmos", "answers", DOCUMENTS_DIR, HISTORY_DIR)

JSON = dict[str, Any]


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

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": asdict(self.actor),
            "action": self.action,
            "summary": self.summary,
            "records": list(self.records),
            "reverts": self.reverts,
            "warnings": list(self.warnings),
            "files": [asdict(f) for f in self.files],
        }

    @classmethod
    def from_json(cls, data: JSON) -> Change:
        return cls(
            id=int(data["id"]),
            at=dt.datetime.fromisoformat(data["at"]),
            actor=Actor(**data["actor"]),
            action=data["action"],
            summary=data["summary"],
            records=tuple(data["records"]),
            files=tuple(FileChange(**f) for f in data["files"]),
            reverts=data.get("reverts"),
            warnings=tuple(data.get("warnings") or ()),
        )


class Journal:
    """The lock, the history and the one write path of a knowledge folder."""

    def __init__(self, root: Path, *, lock_timeout_s: float = 30.0) -> None:
        self.root = root
        self._lock = FileLock(str(root / LOCK_FILE), timeout=lock_timeout_s)
        self._lock_timeout_s = lock_timeout_s

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while changing or reading the files, across threads and processes."""
        try:
            with self._lock:
                self._recover()
                yield
        except Timeout as exc:
            raise KnowledgeError(
                f"another change to {self.root} has held the lock for over "
                f"{self._lock_timeout_s:.0f}s; try again in a moment"
            ) from exc

    def generation(self) -> str:
        """Changes whenever the knowledge changes (a change, a revert, an import): cheap to poll."""
        head = self.root / HISTORY_DIR / HEAD_FILE
        try:
            return head.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return "0"

    def head(self) -> int:
        return int(self.generation().split()[0])

    def mark_generation(self) -> None:
        """Move the generation even if the history ends at the same number (an import). Call with the lock held."""
        head = self.root / HISTORY_DIR / HEAD_FILE
        number = self.head() if head.is_file() else 0
        write_atomic(head, f"{number} {secrets.token_hex(4)}\n")

    def read(self, rel: str) -> str | None:
        path = self.root / rel
        return path.read_text(encoding="utf-8") if path.is_file() else None

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

    def last_change_of(self, rel: str) -> Change | None:
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
                    elif self.read(item["path"]) != item["before"]:
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
        for staging in self.root.glob(f"{IMPORT_STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)

    def commit(
        self,
        *,
        action: str,
        summary: str,
        records: tuple[str, ...],
        files: Mapping[str, str | None],
        actor: Actor,
        reverts: int | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Change:
        """Validate the knowledge base as it would be, then write. Call with the lock held."""
        changes = tuple(FileChange(path=rel, before=self.read(rel), after=after) for rel, after in files.items())
        changes = tuple(c for c in changes if c.before != c.after)
        if not changes:
            raise NothingToChangeError("nothing to change: the files already say that")
        load_knowledge(self.root, overlay={c.path: c.after for c in changes})
        change = Change(
            id=self.head() + 1,
            at=dt.datetime.now(dt.UTC),
            actor=actor,
            action=action,
            summary=summary,
            records=records,
            files=changes,
            reverts=reverts,
            warnings=warnings,
        )
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

    def revert(self, change_id: int, *, actor: Actor) -> Change:
        """Put back what a change replaced, as a new change; refused if a later change touched the same files."""
        with self.locked():
            change = self.get_change(change_id)
            files: dict[str, str | None] = {}
            for item in change.files:
                if self.read(item.path) != item.after:
                    later = self.last_change_of(item.path)
                    by = f" by change {later.id} ({later.summary})" if later and later.id != change.id else ""
                    raise ConflictError(f"{item.path} was changed again{by}; revert that change first", change=later)
                files[item.path] = item.before
            return self.commit(
                action="revert",
                summary=f"revert change {change.id}: {change.summary}",
                records=change.records,
                files=files,
                actor=actor,
                reverts=change.id,
            )
