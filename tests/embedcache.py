"""The real embedder's vectors remembered by text: for the test run (passages and queries), and, as a
developer convenience, passage vectors kept on disk between test runs.

The on-disk copy only when KAKEHASHI_TEST_EMBED_CACHE names a folder (never in CI, which embeds for
real): the seed knowledge base takes about 100 s to embed on two cores, and a developer iterating on
one test module should not pay that every run. The vectors are the real model's, keyed by the
passage text, so what the tests see is exactly what they would compute.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.embeddings import Embedder

_BATCH = 32  # the model's own batch size


class CachedEmbedder(Embedder):
    """`inner`'s vectors remembered by text; kept in `folder` across runs when one is given. Two threads
    asking for the same passages at once (the seed index built in the background while a test indexes
    some of the same records) embed each once: a thread takes the passages no one is embedding yet and
    waits for the batch another is embedding."""

    def __init__(self, inner: Embedder, folder: Path | None = None) -> None:
        self._inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self._path: Path | None = None
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._pending: dict[str, threading.Event] = {}  # passages some thread is embedding now
        self._queries: dict[str, np.ndarray] = {}  # for this run only: the suite asks the same questions often
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self._path = folder / f"{inner.backend}-{inner.model}.npz"
            if self._path.exists():
                with np.load(self._path) as data:
                    self._vectors = {key: data[key] for key in data.files}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

    def _save(self) -> None:
        if self._path is not None:
            tmp = self._path.with_suffix(".tmp.npz")
            np.savez(tmp, **self._vectors)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle
            tmp.replace(self._path)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A batch at a time, so a thread waits for at most one batch of another's, never its whole index.
        return np.vstack([self._embed_batch(texts[i : i + _BATCH]) for i in range(0, len(texts), _BATCH)])

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        while True:
            done = threading.Event()
            with self._lock:
                mine: dict[str, str] = {}
                others: list[threading.Event] = []
                for key, text in zip(keys, texts, strict=True):
                    if key in self._vectors or key in mine:
                        continue
                    if key in self._pending:
                        others.append(self._pending[key])
                    else:
                        mine[key] = text
                        self._pending[key] = done
            if mine:
                try:
                    vectors = self._inner.embed_passages(list(mine.values()))
                    with self._lock:
                        self._vectors.update(zip(mine, vectors, strict=True))
                        self._save()
                finally:
                    with self._lock:
                        for key in mine:
                            del self._pending[key]
                    done.set()
            for event in others:
                event.wait()
            with self._lock:
                if all(key in self._vectors for key in keys):
                    return np.vstack([self._vectors[k] for k in keys]).astype(np.float32)
            # Another thread's batch failed: embed what is still missing here.

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            known = self._queries.get(text)
        if known is None:
            known = self._inner.embed_query(text)
            with self._lock:
                self._queries[text] = known
        return known.copy()
