"""The knowledge a running bot answers from, kept in step with staff changes without a restart.

Every few seconds (at most) a question checks the knowledge folder's generation, a one-line file
that each change rewrites. When it moved, this process reloads the records, indexes what changed
(passages another process already embedded are not embedded again; only changed passages are
tokenized) and swaps in the new records and matcher whole. Questions asked meanwhile are answered
from the previous state, never from a half-built one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.language_models import BaseChatModel

from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from knowledge.loader import KnowledgeBase
from retrieval import retired
from retrieval.answer import Answer, Answerer, Turn
from retrieval.engine import ingest, open_index
from retrieval.index import Filters, IngestReport, SearchIndex
from retrieval.match import Limits, Matcher, MatchResult
from retrieval.profile import Profile

log = logging.getLogger("kakehashi.live")


@dataclass(frozen=True)
class _Snapshot:
    kb: KnowledgeBase
    matcher: Matcher
    generation: str


class LiveKnowledge:
    """Answers and matches from the current knowledge. Safe to share between threads."""

    def __init__(
        self,
        *,
        settings: Settings,
        editor: KnowledgeEditor,
        index: SearchIndex,
        answerer: Answerer,
        chat_model: BaseChatModel | None = None,
        kb: KnowledgeBase | None = None,
        check_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.editor = editor
        self.index = index
        self.answerer = answerer
        self._chat_model = chat_model
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._refresh_lock = threading.Lock()
        self._vector_cache: dict[str, np.ndarray] = {}
        generation = editor.generation()
        kb = kb or editor.load()
        self._snapshot = _Snapshot(kb=kb, matcher=self._matcher(kb), generation=generation)
        self._checked_at = clock()
        # The index's folders as they are now: one removed while serving is rebuilt (see _rebuild).
        folders = [settings.storage.lexical_path] + ([] if settings.chroma.host else [settings.storage.chroma_path])
        self._watched = [folder for folder in folders if folder.is_dir()]
        self._rebuilder: threading.Thread | None = None

    def _matcher(self, kb: KnowledgeBase) -> Matcher:
        return Matcher(kb=kb, index=self.index, chat_model=self._chat_model, vector_cache=self._vector_cache)

    @property
    def kb(self) -> KnowledgeBase:
        return self._snapshot.kb

    @property
    def matcher(self) -> Matcher:
        return self._snapshot.matcher

    @property
    def generation(self) -> str:
        return self._snapshot.generation

    def refresh(self, *, force: bool = False) -> IngestReport | None:
        """Bring this process up to the knowledge on disk; None when it already was. Raises on failure,
        leaving the previous state in service."""
        with self._refresh_lock:
            generation = self.editor.generation()
            if generation == self._snapshot.generation and not force:
                return None
            kb = self.editor.load()
            report = ingest(self.settings, self.index, kb=kb)
            self._snapshot = _Snapshot(kb=kb, matcher=self._matcher(kb), generation=generation)
            log.info(
                "knowledge refreshed to generation %s: %d added, %d updated, %d removed, %d embedded in %.2fs",
                generation,
                len(report.added),
                len(report.updated),
                len(report.removed),
                report.embedded,
                report.seconds,
            )
            return report

    def maybe_refresh(self) -> None:
        """A cheap check before each question; a failed refresh is logged and retried at the next check,
        and questions go on being answered from the previous state."""
        now = self._clock()
        if now - self._checked_at < self._check_interval_s:
            return
        self._checked_at = now
        gone = next((folder for folder in self._watched if not folder.is_dir()), None)
        if gone is not None:
            self._start_rebuild(gone)
            return
        try:
            if self.editor.generation() != self._snapshot.generation:
                self.refresh()
        except Exception as exc:  # noqa: BLE001 - keep answering from the last good state
            log.error(
                "could not refresh the knowledge base (answering from generation %s): %s",
                self._snapshot.generation,
                exc,
            )

    def _start_rebuild(self, gone: Path) -> None:
        with self._refresh_lock:
            if self._rebuilder is not None and self._rebuilder.is_alive():
                return
            log.error(
                "the index folder %s was removed while serving; rebuilding the index in the background "
                "(until it is done, answers come from what this process still holds, or fail)",
                gone,
            )
            self._rebuilder = threading.Thread(target=self._rebuild, name="kakehashi-index-rebuild", daemon=True)
            self._rebuilder.start()

    def _rebuild(self) -> None:
        """A new index in the recreated folders, filled from the knowledge on disk, then swapped in whole
        (answerer and matcher with it). A failure is logged; the next check tries again."""
        try:
            old = self.index
            if self.settings.chroma.host:  # a Chroma server keeps its vectors: only the lexical index went
                index = open_index(self.settings, embedder=old.embedder, store=old.store)
            else:
                old.store.close()
                index = open_index(self.settings, embedder=old.embedder)
            generation = self.editor.generation()
            kb = self.editor.load()
            report = ingest(self.settings, index, kb=kb)
            with self._refresh_lock:
                self.index = index
                self.answerer.index = index
                self._snapshot = _Snapshot(kb=kb, matcher=self._matcher(kb), generation=generation)
            log.info(
                "index folder rebuilt: %d passages, %d embedded in %.1fs; serving generation %s",
                len(index),
                report.embedded,
                report.seconds,
                generation,
            )
        except Exception as exc:  # noqa: BLE001 - tried again at the next check
            log.error(
                "rebuilding the removed index folder failed (tried again shortly): %s: %s", type(exc).__name__, exc
            )

    def ask(self, question: str, *, filters: Filters | None = None, history: Sequence[Turn] = ()) -> Answer:
        self.maybe_refresh()
        snapshot = self._snapshot  # the knowledge this answer comes from, even if a refresh lands meanwhile
        return retired.ask(
            self.answerer, question, filters=filters, history=history, kb=snapshot.kb, matcher=snapshot.matcher
        )

    def match(self, text: str, *, limits: Limits | None = None) -> MatchResult:
        self.maybe_refresh()
        return self._snapshot.matcher.match(text, limits=limits)

    def match_profile(self, profile: Profile, *, limits: Limits | None = None) -> MatchResult:
        self.maybe_refresh()
        return self._snapshot.matcher.match_profile(profile, limits=limits)
