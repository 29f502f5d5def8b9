"""BM25 over Japanese-aware tokens, updated chunk by chunk and saved atomically.

It also holds the catalog of indexed passages (text, title, source, metadata),
so ingestion can tell what is new, changed or gone without asking the vector store.
"""

from __future__ import annotations

import math
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.files import write_atomic
from retrieval.chunking import Chunk
from retrieval.errors import IndexMismatchError
from retrieval.tokenize import Tokenizer

FORMAT_VERSION = 1
Metadata = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class _Compiled:
    ids: list[str]
    postings: dict[str, tuple[np.ndarray, np.ndarray]]
    lengths: np.ndarray
    avg_length: float


class LexicalIndex:
    def __init__(self, tokenizer: Tokenizer, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.tokenizer = tokenizer
        self._k1 = k1
        self._b = b
        self._chunks: dict[str, Chunk] = {}
        self._terms: dict[str, Counter[str]] = {}
        self._compiled: _Compiled | None = None

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._chunks

    def ids(self) -> set[str]:
        return set(self._chunks)

    def chunks(self) -> Iterable[Chunk]:
        return self._chunks.values()

    def get(self, chunk_id: str) -> Chunk:
        return self._chunks[chunk_id]

    def terms(self, chunk_id: str) -> Counter[str]:
        """The tokens of a passage's search text, as indexed."""
        return self._terms[chunk_id]

    def add(self, chunk: Chunk) -> None:
        self._chunks[chunk.id] = chunk
        self._terms[chunk.id] = Counter(self.tokenizer.tokenize(chunk.search_text))
        self._compiled = None

    def copy(self) -> LexicalIndex:
        """A copy to change while searches go on reading this one (the per-passage entries are shared)."""
        twin = LexicalIndex(self.tokenizer, k1=self._k1, b=self._b)
        twin._chunks = dict(self._chunks)
        twin._terms = dict(self._terms)
        return twin

    def relabel(self, chunk: Chunk) -> None:
        """The same passage (same id, so the same text) with new metadata."""
        self._chunks[chunk.id] = chunk

    def remove(self, chunk_id: str) -> None:
        self._chunks.pop(chunk_id, None)
        self._terms.pop(chunk_id, None)
        self._compiled = None

    def document_frequency(self, token: str) -> int:
        compiled = self._compile()
        posting = compiled.postings.get(token)
        return 0 if posting is None else len(posting[0])

    def idf(self, token: str) -> float:
        n = len(self._chunks)
        df = self.document_frequency(token)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def prepare(self) -> None:
        """Build the postings now rather than on the first search after a change."""
        self._compile()

    def _compile(self) -> _Compiled:
        if self._compiled is not None:
            return self._compiled
        ids = list(self._chunks)
        lists: dict[str, tuple[list[int], list[float]]] = {}
        lengths = np.zeros(len(ids), dtype=np.float32)
        for position, chunk_id in enumerate(ids):
            terms = self._terms[chunk_id]
            lengths[position] = sum(terms.values())
            for token, count in terms.items():
                rows, counts = lists.setdefault(token, ([], []))
                rows.append(position)
                counts.append(count)
        postings = {t: (np.asarray(r, dtype=np.int32), np.asarray(c, dtype=np.float32)) for t, (r, c) in lists.items()}
        avg = float(lengths.mean()) if len(ids) else 1.0
        self._compiled = _Compiled(ids=ids, postings=postings, lengths=lengths, avg_length=avg or 1.0)
        return self._compiled

    def scores(self, query: str) -> tuple[list[str], np.ndarray]:
        compiled = self._compile()
        scores = np.zeros(len(compiled.ids), dtype=np.float32)
        n = len(compiled.ids)
        norm = self._k1 * (1 - self._b + self._b * compiled.lengths / compiled.avg_length)
        for token, query_count in Counter(self.tokenizer.tokenize(query)).items():
            posting = compiled.postings.get(token)
            if posting is None:
                continue
            rows, tf = posting
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            scores[rows] += query_count * idf * tf * (self._k1 + 1) / (tf + norm[rows])
        return compiled.ids, scores

    def search(
        self, query: str, *, limit: int, where: Callable[[Metadata], bool] | None = None
    ) -> list[tuple[str, float]]:
        ids, scores = self.scores(query)
        if not ids:
            return []
        if where is not None:
            mask = np.fromiter((where(self._chunks[i].metadata) for i in ids), dtype=bool, count=len(ids))
            scores = np.where(mask, scores, 0.0)
        if limit < len(scores):
            # Only the best `limit` need sorting: at 100k passages a full sort was half the search time.
            best = np.argpartition(-scores, limit - 1)[:limit]
            top = best[np.argsort(-scores[best], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")[:limit]
        return [(ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, path: Path) -> None:
        """Write-then-rename, so a reader never sees half an index."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "version": FORMAT_VERSION,
            "tokenizer": self.tokenizer.name,
            "chunks": list(self._chunks.values()),
            "terms": self._terms,
        }
        write_atomic(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: Path, tokenizer: Tokenizer) -> LexicalIndex:
        index = cls(tokenizer)
        if not path.exists():
            return index
        with path.open("rb") as handle:
            state = pickle.load(handle)
        if state.get("version") != FORMAT_VERSION:
            raise IndexMismatchError(f"{path}: lexical index format {state.get('version')} is not {FORMAT_VERSION}; "
                                     "run `kakehashi ingest --rebuild`")
        if state["tokenizer"] != tokenizer.name:
            raise IndexMismatchError(
                f"{path}: lexical index was built with the {state['tokenizer']!r} tokenizer, settings ask for "
                f"{tokenizer.name!r}; run `kakehashi ingest --rebuild`"
            )
        index._chunks = {c.id: c for c in state["chunks"]}
        index._terms = state["terms"]
        return index
