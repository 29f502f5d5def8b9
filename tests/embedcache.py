"""The real embedder's vectors remembered by text: for the test run (passages and queries), and on a
developer's machine, passage vectors kept on disk between test runs (never in CI, which embeds for real).

The seed knowledge base costs the model about 200 CPU-seconds (100 s on two cores) to embed, every run,
and every passage is the same as last time. The vectors kept are the model's own, keyed by the passage
text and the model's identity (backend, model, package version); each run re-embeds the shortest kept
passages and throws the whole copy away if the model no longer gives the same vectors. So what the tests
see is what they would compute.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.embeddings import Embedder

_BATCH = 32  # the model's own batch size
_CHECKED = 3  # kept passages re-embedded at load to prove the copy is this model's
logger = logging.getLogger(__name__)


def developer_cache_folder() -> Path | None:
    """Where passage vectors are kept between runs: KAKEHASHI_TEST_EMBED_CACHE if it names a folder, none
    if it says `off` or in CI, else the user's cache folder (outside the repo, so no clone carries it)."""
    named = os.environ.get("KAKEHASHI_TEST_EMBED_CACHE", "")
    if os.environ.get("CI") or named.lower() == "off":
        return None
    if named:
        return Path(named)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kakehashi" / "test-vectors"


class CachedEmbedder(Embedder):
    """`inner`'s vectors remembered by text; kept in `folder` across runs when one is given. Two threads
    asking for the same passages at once (the seed index built in the background while a test indexes
    some of the same records) embed each once: a thread takes the passages no one is embedding yet and
    waits for the batch another is embedding."""

    def __init__(self, inner: Embedder, folder: Path | None = None, *, identity: str = "") -> None:
        self._inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self._path: Path | None = None
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._pending: dict[str, threading.Event] = {}  # passages some thread is embedding now
        self._queries: dict[str, np.ndarray] = {}  # for this run only: the suite asks the same questions often
        self._texts: dict[str, str] = {}  # kept beside the vectors, to check them against the model
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self._path = folder / f"{inner.backend}-{inner.model}{'-' + identity if identity else ''}.npz"
            if self._path.exists():
                self._load(self._path)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path) as data:
                keys, texts, vectors = list(data["keys"]), list(data["texts"]), data["vectors"]
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring the kept test vectors in %s: %s", path, exc)
            return
        shortest = sorted(range(len(texts)), key=lambda i: len(texts[i]))[:_CHECKED]
        fresh = self._inner.embed_passages([str(texts[i]) for i in shortest])
        if not np.allclose(fresh, vectors[shortest], atol=1e-6):
            logger.warning("the model no longer gives the kept vectors in %s: embedding everything again", path)
            return
        self._vectors = {str(k): v for k, v in zip(keys, vectors, strict=True)}
        self._texts = {str(k): str(t) for k, t in zip(keys, texts, strict=True)}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

    def save(self) -> None:
        """Keep this run's passage vectors (at the session's end: once, not after every batch), together with
        what another test process kept meanwhile."""
        if self._path is None:
            return
        with self._lock:
            vectors, texts = dict(self._vectors), dict(self._texts)
        if self._path.exists():
            with np.load(self._path) as data:
                for key, text, vector in zip(data["keys"], data["texts"], data["vectors"], strict=True):
                    vectors.setdefault(str(key), vector)
                    texts.setdefault(str(key), str(text))
        if not vectors:
            return
        keys = list(vectors)
        tmp = self._path.with_name(f"{self._path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            keys=np.array(keys),
            texts=np.array([texts[k] for k in keys]),
            vectors=np.vstack([vectors[k] for k in keys]),
        )
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
                        self._texts.update(mine)
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
