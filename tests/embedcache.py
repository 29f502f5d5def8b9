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


class CachedEmbedder(Embedder):
    def __init__(self, inner: Embedder, folder: Path) -> None:
        self._inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / f"{inner.backend}-{inner.model}.npz"
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}  # for this run only: the suite asks the same questions often
        if self._path.exists():
            with np.load(self._path) as data:
                self._vectors = {key: data[key] for key in data.files}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        with self._lock:
            missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in self._vectors]
        if missing:
            vectors = self._inner.embed_passages([t for _, t in missing])
            with self._lock:
                self._vectors.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
                tmp = self._path.with_suffix(".tmp.npz")
                np.savez(tmp, **self._vectors)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle
                tmp.replace(self._path)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._vectors[k] for k in keys]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            known = self._queries.get(text)
        if known is None:
            known = self._inner.embed_query(text)
            with self._lock:
                self._queries[text] = known
        return known.copy()
