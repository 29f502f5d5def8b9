"""A whole knowledge folder as one .tar.gz: records, documents and history out, and back in to replace them."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from knowledge.errors import KnowledgeError
from knowledge.journal import IMPORT_STAGING_PREFIX, JOURNAL_FILE, TREE_PARTS, Journal
from knowledge.loader import KnowledgeBase, load_knowledge

EXPORT_META = "kakehashi-export.json"


def export_knowledge(journal: Journal, destination: Path) -> int:
    """A .tar.gz of records, documents and history; returns the number of files."""
    root = journal.root
    with journal.locked():
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
        os.close(fd)
        count = 0
        try:
            with tarfile.open(tmp, "w:gz") as archive:
                meta = json.dumps(
                    {"format": 1, "head": journal.head(), "exported_at": dt.datetime.now(dt.UTC).isoformat()}
                ).encode()
                info = tarfile.TarInfo(EXPORT_META)
                info.size = len(meta)
                archive.addfile(info, io.BytesIO(meta))
                for part in TREE_PARTS:
                    folder = root / part
                    if not folder.is_dir():
                        continue
                    for path in sorted(folder.rglob("*")):
                        if path.is_file() and path.name != JOURNAL_FILE and not path.name.endswith(".tmp"):
                            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
                            count += 1
            os.replace(tmp, destination)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count


def import_knowledge(journal: Journal, archive_path: Path) -> KnowledgeBase:
    """Replace records, documents and history with an export's, after checking it loads cleanly.
    The replaced folders are kept in `.replaced-<time>/` beside them, so nothing is lost."""
    if not archive_path.is_file():
        raise KnowledgeError(f"{archive_path}: no such file")
    root = journal.root
    with journal.locked():
        staging = Path(tempfile.mkdtemp(dir=root, prefix=IMPORT_STAGING_PREFIX))
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
            _swap_in(root, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        # The generation must move even if the imported history ends at the same number.
        journal.mark_generation()
        return load_knowledge(root)


def _swap_in(root: Path, staging: Path) -> None:
    backup = root / f".replaced-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    backup.mkdir()
    moved: list[str] = []
    try:
        for part in TREE_PARTS:
            if (root / part).exists():
                os.replace(root / part, backup / part)
            moved.append(part)
            os.replace(staging / part, root / part)
    except BaseException:
        for part in moved:
            if (backup / part).exists():
                shutil.rmtree(root / part, ignore_errors=True)
                os.replace(backup / part, root / part)
        raise
