"""Sentences of the source documents, each with its vector, so answers pick quotes by meaning too.

Vectors are computed when passages are indexed, only for sentences not seen before (keyed by a hash
of the sentence), and kept in one file beside the lexical index. A question never embeds a sentence:
it compares its own query vector (already computed for the search) with the stored ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from knowledge.normalize import squash
from retrieval.chunking import Chunk
from retrieval.embeddings import Embedder

_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
_BULLETS = " 　-・•◆▶➢✓*#"
MIN_SENTENCE_CHARS = 6


def sentence_pieces(text: str) -> list[str]:
    """Every sentence and line of a passage, short ones included, as the source writes them (bullets and
    layout marks trimmed)."""
    pieces = (m.group().strip(_BULLETS).replace("**", "").strip() for m in _SENTENCE.finditer(text))
    return [p for p in pieces if p]


def split_sentences(text: str) -> list[str]:
    """The sentences worth quoting: long enough to say something."""
    return [p for p in sentence_pieces(text) if len(p) >= MIN_SENTENCE_CHARS]


def sentence_key(sentence: str) -> str:
    return hashlib.sha1(squash(sentence).encode("utf-8")).hexdigest()[:16]


class SentenceVectors:
    """sentence key -> unit vector. Thread-safe to read while an ingest adds to it."""

    def __init__(self, path: Path | None, *, dim: int, signature: str) -> None:
        self._path = path
        self._dim = dim
        self._signature = signature
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        if path and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["signature"]) != self._signature:
                    return  # another embedding model: its vectors do not compare with ours
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            self._vectors = {}  # a damaged file is rebuilt by the next ingest

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, sentence: str) -> np.ndarray | None:
        return self._vectors.get(sentence_key(sentence))

    def update(self, chunks: Iterable[Chunk], embedder: Embedder) -> int:
        """Embed the document sentences not stored yet; drop those no passage holds. Returns how many were embedded."""
        wanted: dict[str, str] = {}
        for chunk in chunks:
            if chunk.kind == "document":
                for sentence in split_sentences(chunk.text):
                    wanted.setdefault(sentence_key(sentence), sentence)
        missing = [(k, s) for k, s in wanted.items() if k not in self._vectors]
        vectors = embedder.embed_passages([s for _, s in missing]) if missing else np.zeros((0, self._dim))
        with self._lock:
            updated = {k: v for k, v in self._vectors.items() if k in wanted}
            updated.update({k: np.asarray(v, dtype=np.float32) for (k, _), v in zip(missing, vectors, strict=True)})
            changed = len(updated) != len(self._vectors) or bool(missing)
            self._vectors = updated
        if changed:
            self._save()
        return len(missing)

    def _save(self) -> None:
        if not self._path:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype="U16")
        matrix = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, self._dim), np.float32)
        # Written aside and renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=keys, vectors=matrix, signature=np.array(self._signature))
            os.replace(tmp, self._path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
