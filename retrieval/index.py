"""Hybrid search: dense vectors in the vector store + BM25, fused by reciprocal rank.

Ingestion is incremental: a passage's id carries a hash of its content, so only
new or changed passages are embedded, and gone ones are deleted.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock

from retrieval.chunking import Chunk
from retrieval.embeddings import Embedder
from retrieval.glossary import expand
from retrieval.lexical import LexicalIndex, Metadata
from retrieval.sentences import SentenceVectors
from retrieval.store import VectorStore, Where
from retrieval.tokenize import char_bigrams

KINDS = ("program", "vc", "cdmo", "document")


@dataclass(frozen=True)
class Filters:
    """Metadata filters; each set field must match."""

    kind: str | None = None
    ministry: str | None = None
    stage: str | None = None
    modality: str | None = None

    def _conditions(self) -> list[tuple[str, str | bool]]:
        conditions: list[tuple[str, str | bool]] = []
        if self.kind:
            conditions.append(("kind", self.kind))
        if self.ministry:
            conditions.append(("ministry", self.ministry))
        if self.stage:
            conditions.append((f"stage_{self.stage}", True))
        if self.modality:
            conditions.append((f"modality_{self.modality}", True))
        return conditions

    def chroma_where(self) -> Where | None:
        clauses: list[Where] = [{key: {"$eq": value}} for key, value in self._conditions()]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, metadata: Metadata) -> bool:
        return all(metadata.get(key) == value for key, value in self._conditions())

    @property
    def empty(self) -> bool:
        return not self._conditions()


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    dense: float | None = None
    lexical: float | None = None


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: int = 0
    embedded: int = 0
    seconds: float = 0.0
    sentences_embedded: int = 0

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """Slides repeated with small edits; overlap of character bigrams catches them."""
    grams_a, grams_b = char_bigrams(a), char_bigrams(b)
    if not grams_a or not grams_b:
        return a == b
    return len(grams_a & grams_b) / min(len(grams_a), len(grams_b)) >= threshold


class SearchIndex:
    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        lexical: LexicalIndex,
        lexical_path: Path,
        rrf_k: int = 60,
        candidates: int = 40,
        for_rebuild: bool = False,
        sentences: SentenceVectors | None = None,
    ) -> None:
        """`for_rebuild`: the index is about to be built again (`ingest(rebuild=True)`), so the stored
        collection is not opened and not checked: it may have been built with another model."""
        self.embedder = embedder
        self.store = store
        self.lexical = lexical
        self._lexical_path = lexical_path
        self._rrf_k = rrf_k
        self._candidates = candidates
        self._ingest_lock = threading.Lock()
        self._bigram_cache: dict[str, frozenset[str]] = {}
        self.sentences = (
            sentences
            if sentences is not None
            else SentenceVectors(None, dim=embedder.dim, signature=str(embedder.signature))
        )
        if not for_rebuild:
            store.ensure(embedder.signature)

    def __len__(self) -> int:
        return len(self.lexical)

    def ingest(self, chunks: Sequence[Chunk], *, rebuild: bool = False, prune: bool = False) -> IngestReport:
        """Bring the index to exactly `chunks`. Only passages missing from the vector store are embedded
        (another process may have embedded them already) and only passages missing from this process's
        lexical index are tokenized. Searches running meanwhile keep using the old lexical index, which is
        swapped for the new one whole, so they never see a half-applied change.

        Vectors are deleted only for passages this process saw go: with a shared Chroma server another
        host may be a change ahead, and its new passages must not be taken for strays. `prune` also
        deletes every stored vector the knowledge does not hold (an explicit `kakehashi ingest`)."""
        with self._ingest_lock, FileLock(str(self._lexical_path) + ".lock"):
            if not rebuild:
                return self._apply(chunks, self.lexical, prune=prune)
            # Everything again, built aside: the vector store swaps its new collection in as the block ends,
            # and the lexical index is swapped whole like any other change.
            with self.store.rebuilding(self.embedder.signature):
                return self._apply(chunks, LexicalIndex(self.lexical.tokenizer), prune=prune)

    def _apply(self, chunks: Sequence[Chunk], current: LexicalIndex, *, prune: bool) -> IngestReport:
        started = time.perf_counter()
        desired = {c.id: c for c in chunks}
        existing = current.ids()
        in_store = self.store.ids()
        to_embed = [c for i, c in desired.items() if i not in in_store]
        to_tokenize = [c for i, c in desired.items() if i not in existing]
        gone = sorted(existing - desired.keys())

        report = IngestReport()
        existing_origins = {current.get(i).origin for i in existing}
        desired_origins = {c.origin for c in desired.values()}
        changed_origins = {c.origin for c in to_tokenize} | {current.get(i).origin for i in gone}
        report.added = sorted(changed_origins - existing_origins)
        report.updated = sorted((changed_origins & existing_origins) & desired_origins)
        report.removed = sorted(existing_origins - desired_origins)
        report.skipped = len(desired) - len(to_tokenize)

        if to_embed:
            self.store.upsert(to_embed, self.embedder.embed_passages([c.embed_text for c in to_embed]))
        report.embedded = len(to_embed)
        # Metadata can change without the text (e.g. where else a slide is repeated): both stores take
        # the new metadata, nothing is embedded or tokenized again.
        relabeled = [c for i, c in desired.items() if i in existing and current.get(i).metadata != c.metadata]
        self.store.update_metadata([c for c in relabeled if c.id in in_store])
        # A rebuild (into a new index) swaps even when it holds nothing.
        if to_tokenize or gone or relabeled or current is not self.lexical:
            updated = current.copy()
            for chunk_id in gone:
                updated.remove(chunk_id)
            for chunk in to_tokenize:
                updated.add(chunk)
            for chunk in relabeled:
                updated.relabel(chunk)
            updated.save(self._lexical_path)
            updated.prepare()
            self.lexical = updated
        # Answers pick quotes by meaning: each new document sentence is embedded once, here, not per question.
        report.sentences_embedded = self.sentences.update(desired.values(), self.embedder)
        # Vectors of gone passages go last: until the swap above, searches may still cite them.
        strays = in_store - desired.keys() if prune else set()
        self.store.delete(sorted(strays | (set(gone) & in_store)))
        report.seconds = time.perf_counter() - started
        return report

    def _near_duplicate(self, a: Chunk, b: Chunk) -> bool:
        """near_duplicate with each passage's bigrams computed once per process, not per search."""
        grams = []
        for chunk in (a, b):
            cached = self._bigram_cache.get(chunk.id)
            if cached is None:
                cached = self._bigram_cache[chunk.id] = frozenset(char_bigrams(chunk.text))
            grams.append(cached)
        if not grams[0] or not grams[1]:
            return a.text == b.text
        return len(grams[0] & grams[1]) / min(len(grams[0]), len(grams[1])) >= 0.8

    def search(
        self, query: str, *, k: int = 8, filters: Filters | None = None, query_vector: np.ndarray | None = None
    ) -> list[Hit]:
        """`query_vector`: the query already embedded by the caller (an answer reuses it to rank sentences)."""
        filters = filters or Filters()
        lexical_index = self.lexical  # one snapshot for the whole search: an ingest may swap it meanwhile
        vector = self.embedder.embed_query(query) if query_vector is None else query_vector
        dense = self.store.query(vector, limit=self._candidates, where=filters.chroma_where())
        lexical = lexical_index.search(
            expand(query), limit=self._candidates, where=None if filters.empty else filters.matches
        )
        fused: dict[str, float] = defaultdict(float)
        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        for ranking in (dense, lexical):
            for rank, (chunk_id, _) in enumerate(ranking):
                fused[chunk_id] += 1.0 / (self._rrf_k + rank + 1)
        kept: list[Hit] = []
        for chunk_id, score in sorted(fused.items(), key=lambda item: -item[1]):
            if chunk_id not in lexical_index:
                continue  # in the vector store only: a half-finished ingest, reconciled by the next one
            chunk = lexical_index.get(chunk_id)
            if any(self._near_duplicate(chunk, hit.chunk) for hit in kept):
                continue
            kept.append(
                Hit(chunk=chunk, score=score, dense=dense_scores.get(chunk_id), lexical=lexical_scores.get(chunk_id))
            )
            if len(kept) >= k:
                break
        return kept
