"""What the subcommands (`cli`, `cli_match`, `cli_serve`) share: errors, input, wiring, evaluation helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from filelock import Timeout

from core.errors import KakehashiError
from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from knowledge.loader import KnowledgeBase
from retrieval.answer import Answerer
from retrieval.curated import CuratedAnswers, CuratedThreshold
from retrieval.engine import embedded_store_lock, ingest, open_index
from retrieval.index import SearchIndex


class CliError(KakehashiError):
    """A usage problem the user can fix; printed without a traceback."""


def stdin_lines(stream: TextIO) -> Iterator[str]:
    """Non-blank lines, stripped: one question or profile each."""
    for line in stream:
        line = line.strip()
        if line:
            yield line


@contextmanager
def embedded_store_held(settings: Settings) -> Iterator[bool]:
    """Hold the embedded store's lock for the block, if no one else does; yields False when a running bot
    has it. Always True with a Chroma server, which needs no lock."""
    lock = embedded_store_lock(settings)
    if lock is None:
        yield True
        return
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def make_editor(settings: Settings) -> KnowledgeEditor:
    return KnowledgeEditor(
        root=settings.storage.knowledge_dir, max_upload_bytes=settings.kb.max_upload_mb * 1024 * 1024
    )


def ready_index(settings: Settings, *, kb: KnowledgeBase | None = None) -> SearchIndex:
    """The index named by settings; an empty one is built first (from `kb` when the caller already read
    it), so a fresh machine answers from the knowledge base rather than from nothing. Refused while a
    bot serves from the embedded store: a second process opening it compacts the store's log under the
    bot, whose searches then intermittently miss passages."""
    with embedded_store_held(settings) as free:
        if not free:
            raise CliError(
                f"a running bot serves from the embedded index in {settings.storage.data_dir}; ask it in "
                "Slack, or run the bot against a Chroma server (KAKEHASHI_CHROMA_HOST) to use the "
                "command line alongside it"
            )
    index = open_index(settings)
    if len(index) == 0:
        report = ingest(settings, index, kb=kb)
        print(f"index was empty: ingested {report.embedded} passages in {report.seconds:.1f}s", file=sys.stderr)
    return index


def make_answerer(
    settings: Settings,
    index: SearchIndex,
    chat_model: Any = None,
    *,
    kb: KnowledgeBase | None = None,
    matcher: Any = None,
) -> Answerer:
    # Answers cite at least five passages, whatever top_k says: the JSON contract promises the top 5.
    curated = CuratedAnswers(
        embedder=index.embedder, threshold=CuratedThreshold.load(), stale_days=settings.kb.stale_days
    )
    return Answerer(
        index=index, kb=kb, matcher=matcher, chat_model=chat_model, k=max(settings.search.top_k, 5), curated=curated
    )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else 0.0


def read_jsonl(path: Path, *, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """An evaluation file, one JSON object a line; a bad line is named by file and line number."""
    if not path.exists():
        raise CliError(f"{path}: evaluation file not found (name the folder: kakehashi eval FOLDER)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        if required and (not isinstance(row, dict) or any(key not in row for key in required)):
            raise CliError(f"{path}:{number}: each line needs {' and '.join(f'`{k}`' for k in required)}")
        rows.append(row)
    return rows
