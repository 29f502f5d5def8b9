"""A deterministic stand-in for the embedding model, for tests that do not judge ranking.

The embedding model is an edge we do not own (a quantised network shipped in a wheel). Tests of the
Slack flows, the editor, the desk database, the gaps plumbing and the CLI's wiring only need vectors that
behave like the model's on the interface: fixed dimension, L2-normalised float32, the same text always
giving the same vector, near-identical texts giving near vectors. Hashing character bigrams of the folded
text does exactly that in microseconds instead of ~60 ms a passage. It carries its own backend and model
name, so an index built with it is never mistaken for one built by the real model (the index records the
signature and refuses a mismatch). Wherever a test asserts retrieval, answer or match quality it uses the
real model (the session `embedder` fixture) instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from knowledge.normalize import fold
from retrieval.embeddings import Embedder


class BigramHashEmbedder(Embedder):
    backend = "test-stand-in"
    model = "char-bigram-hash-v1"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        folded = "".join(fold(text).split())
        vector = np.zeros(self.dim, dtype=np.float32)
        for i in range(max(len(folded) - 1, 0)):
            digest = zlib.crc32(folded[i : i + 2].encode("utf-8"))
            vector[digest % self.dim] += 1.0 if digest & 0x80000000 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # empty or one-character text: still a unit vector, as the model's always are
            vector[0], norm = 1.0, 1.0
        return vector / norm

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._vector(text) for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)
