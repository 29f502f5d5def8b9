"""Sentence vectors: computed when passages are indexed, once per sentence, kept on disk, never per question."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.loader import KnowledgeBase
from retrieval.chunking import Chunk
from retrieval.embeddings import Embedder
from retrieval.index import SearchIndex
from retrieval.sentences import SentenceVectors, split_sentences


class CountingEmbedder(Embedder):
    """A stand-in where ranking is not under test: a vector per text from its hash, and a count of texts."""

    backend, model, dim = "test", "hash", 8

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += list(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def _vector(self, text: str) -> np.ndarray:
        raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[: self.dim * 4], dtype=np.uint32).astype(np.float32)
        return raw / np.linalg.norm(raw)


def _doc(name: str, text: str) -> Chunk:
    return Chunk(id=f"{name}#1", origin=name, kind="document", title=name, source=name, text=text, search_text=text)


def test_only_new_sentences_are_embedded_and_gone_ones_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "sentences.npz"
    embedder = CountingEmbedder()
    store = SentenceVectors(path, dim=embedder.dim, signature="hash")
    a = _doc("a.txt", "創薬ベンチャーを支援する。\n・令和8年度概算要求額 91百万円")
    b = _doc("b.txt", "MEDISOはワンストップで支援を実施。")
    assert store.update([a, b], embedder) == 3 and len(store) == 3

    again = SentenceVectors(path, dim=embedder.dim, signature="hash")  # another process, or after a restart
    assert len(again) == 3 and again.get("令和8年度概算要求額 91百万円") is not None
    embedder.embedded.clear()
    c = _doc("c.txt", "新しい事業を開始する。")
    assert again.update([a, c], embedder) == 1 and embedder.embedded == ["新しい事業を開始する。"]
    assert again.get("MEDISOはワンストップで支援を実施。") is None  # b is gone, so are its sentences
    assert len(SentenceVectors(path, dim=embedder.dim, signature="hash")) == 3


def test_vectors_of_another_model_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "sentences.npz"
    SentenceVectors(path, dim=8, signature="hash").update(
        [_doc("a.txt", "創薬ベンチャーを支援する。")], CountingEmbedder()
    )
    assert len(SentenceVectors(path, dim=8, signature="another model")) == 0


def test_the_seed_index_holds_a_vector_for_every_document_sentence(
    seed_index: SearchIndex, seed_kb: KnowledgeBase
) -> None:
    sentences = {s for c in seed_index.lexical.chunks() if c.kind == "document" for s in split_sentences(c.text)}
    assert sentences and all(seed_index.sentences.get(s) is not None for s in sentences)
    # Records' passages (with staff notes) are never quoted, so they get none.
    record = next(c for c in seed_index.lexical.chunks() if c.kind == "program")
    assert all(seed_index.sentences.get(s) is None for s in split_sentences(record.text) if s not in sentences)
