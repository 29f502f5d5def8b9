"""A deployment's knowledge folder, outside the installed code, seeded from the shipped knowledge on first use.

By default the knowledge lives in `KAKEHASHI_DATA_DIR/knowledge`: staff changes, their history and the
editor's lock are written there, never into the package (the source tree, or site-packages). The first
command that finds that folder missing or empty copies `knowledge/seed/` into it, whole or not at all: the
copy is made in a folder beside it and renamed into place, so a crash leaves no folder (the next command
seeds again) or a complete one. A deployment that points `KAKEHASHI_KNOWLEDGE_DIR` at its own folder gets
that folder as it is: never seeded, never overwritten; a missing one is an error naming the variable.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.errors import KnowledgeError
from knowledge.files import sync_folder
from knowledge.loader import load_knowledge

KNOWLEDGE_DIR_VARIABLE = "KAKEHASHI_KNOWLEDGE_DIR"
_STAGING_MARK = "-seeding-"
_STALE_STAGING_S = 3600.0  # a copy this old belongs to a process that died; a live one takes a second


@dataclass(frozen=True)
class Seeded:
    """What seeding put into a deployment's knowledge folder."""

    folder: Path
    records: int
    documents: int
    was_empty: bool  # the folder existed, empty, rather than not at all

    def message(self) -> str:
        how = "was empty" if self.was_empty else "did not exist"
        return (
            f"kakehashi: knowledge folder {self.folder} {how}: seeded it from the shipped knowledge "
            f"({self.records} records, {self.documents} documents)"
        )


def prepare_knowledge_dir(settings: Settings) -> Seeded | None:
    """Make the knowledge folder the settings name ready for use; what was seeded, or None if nothing was.

    Called once by the entry points, before anything reads the knowledge."""
    folder = settings.storage.knowledge_dir
    if "knowledge_dir" in settings.storage.model_fields_set:
        # The deployment's own folder: used as it is, and not created, so that a typo does not quietly
        # start a second, seeded knowledge base beside the real one.
        if not folder.is_dir():
            raise KnowledgeError(
                f"{KNOWLEDGE_DIR_VARIABLE}={folder}: no such folder. Create it with the "
                "deployment's knowledge (or `kakehashi kb import` an export into an empty one), "
                f"or unset {KNOWLEDGE_DIR_VARIABLE} to use the default folder under "
                "KAKEHASHI_DATA_DIR, seeded from the shipped knowledge"
            )
        return None
    return seed_knowledge_dir(folder)


def seed_knowledge_dir(folder: Path, *, seed: Path = SEED_KNOWLEDGE_DIR) -> Seeded | None:
    """Copy `seed` into `folder` if `folder` is missing or empty; None if it already holds something
    (or another process seeded it meanwhile)."""
    if folder.is_dir():
        if any(folder.iterdir()):
            return None
        was_empty = True
    elif folder.exists():
        raise KnowledgeError(f"{folder}: the knowledge folder's path is taken by a file; move it away")
    else:
        was_empty = False
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KnowledgeError(f"cannot create {parent} for the knowledge folder: {exc.strerror or exc}") from exc
    _remove_stale_staging(folder)
    staging = parent / f".{folder.name}{_STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        try:
            shutil.copytree(seed, staging, ignore=shutil.ignore_patterns("__pycache__", ".*", "*.py", "*.pyc"))
            _make_writable_and_durable(staging)
        except OSError as exc:
            raise KnowledgeError(f"cannot seed the knowledge folder {folder}: {exc}") from exc
        kb = load_knowledge(staging)  # counts what was copied, and proves the copy whole before it is used
        try:
            # Atomic, and refused by a folder that is not empty: of two processes seeding at once, one wins.
            os.rename(staging, folder)
        except OSError:
            if folder.is_dir() and any(folder.iterdir()):
                return None
            raise
        sync_folder(parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return Seeded(
        folder=folder, records=len(kb.records) + len(kb.answers), documents=len(kb.documents), was_empty=was_empty
    )


def _make_writable_and_durable(root: Path) -> None:
    """Staff edit the copy, so it must be writable even where the installed package is read only; and
    on disk before the rename makes it the knowledge folder."""
    for path in sorted(root.rglob("*"), reverse=True):
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR)
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        else:
            sync_folder(path)
    root.chmod(root.stat().st_mode | stat.S_IWUSR)
    sync_folder(root)


def _remove_stale_staging(folder: Path) -> None:
    """Copies that a process killed mid-seeding left beside the folder."""
    now = time.time()
    for leftover in folder.parent.glob(f".{folder.name}{_STAGING_MARK}*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue
