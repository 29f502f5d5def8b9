"""The BM25 index on its own: scores against the formula, copies that do not disturb the original,
saving and loading (including the format-1 pickles deployments already hold)."""

from __future__ import annotations

import math
import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from knowledge.loader import KnowledgeBase
from retrieval.chunking import Chunk, knowledge_chunks
from retrieval.errors import IndexMismatchError
from retrieval.lexical import FORMAT_VERSION, LexicalIndex
from retrieval.tokenize import BigramTokenizer, SudachiTokenizer

QUERIES = [
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "再生・細胞医療・遺伝子治療製造設備投資支援事業",
    "What does AMED's CiCLE program fund?",
    "BINDS 2025",
    "治験の費用を支援してくれる制度を教えて",
    "zzzz 未知語彙のみ",
]


@pytest.fixture(scope="module")
def passages(seed_kb: KnowledgeBase) -> list[Chunk]:
    return knowledge_chunks(seed_kb, chunk_chars=Settings.default("chunk_chars"))


def _built(chunks: list[Chunk]) -> LexicalIndex:
    index = LexicalIndex(BigramTokenizer())
    for chunk in chunks:
        index.add(chunk)
    return index


def _okapi(chunks: list[Chunk], query: str, *, k1: float = 1.5, b: float = 0.75) -> dict[str, float]:
    """BM25 straight from its definition, in float64, one passage at a time."""
    tokenizer = BigramTokenizer()
    bags = {c.id: Counter(tokenizer.tokenize(c.search_text)) for c in chunks}
    average = sum(sum(bag.values()) for bag in bags.values()) / len(bags)
    frequency = Counter(token for bag in bags.values() for token in bag)
    scores = {}
    for chunk_id, bag in bags.items():
        length = sum(bag.values())
        total = 0.0
        for token, in_query in Counter(tokenizer.tokenize(query)).items():
            if token in bag:
                idf = math.log(1 + (len(bags) - frequency[token] + 0.5) / (frequency[token] + 0.5))
                tf = bag[token]
                total += in_query * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
        scores[chunk_id] = total
    return scores


def _v1_pickle(path: Path, chunks: list[Chunk], tokenizer_name: str = "bigram") -> None:
    """The layout format 1 wrote: the chunks and a Counter of tokens per passage."""
    tokenizer = BigramTokenizer()
    state = {
        "version": 1,
        "tokenizer": tokenizer_name,
        "chunks": chunks,
        "terms": {c.id: Counter(tokenizer.tokenize(c.search_text)) for c in chunks},
    }
    path.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def _same_index(a: LexicalIndex, b: LexicalIndex, chunks: list[Chunk]) -> None:
    assert a.ids() == b.ids() and [c.id for c in a.chunks()] == [c.id for c in b.chunks()]
    for chunk in chunks:
        assert a.terms(chunk.id) == b.terms(chunk.id)
        assert a.get(chunk.id) == b.get(chunk.id)
    for query in QUERIES:
        assert a.search(query, limit=20) == b.search(query, limit=20)
        for token in BigramTokenizer().tokenize(query):
            assert a.document_frequency(token) == b.document_frequency(token)


def test_scores_follow_the_bm25_formula(passages: list[Chunk]) -> None:
    index = _built(passages)
    for query in QUERIES:
        ids, scores = index.scores(query)
        expected = _okapi(passages, query)
        assert ids == [c.id for c in passages]
        np.testing.assert_allclose(scores, [expected[i] for i in ids], rtol=2e-5, atol=1e-6)
    best = index.search(QUERIES[0], limit=5)
    assert best and all("エコシステム" in index.get(i).search_text for i, _ in best[:2])
    assert index.search("zzzz", limit=5) == []


def test_terms_and_frequencies_are_those_of_the_text(passages: list[Chunk]) -> None:
    index = _built(passages)
    tokenizer = BigramTokenizer()
    for chunk in passages[:50]:
        assert index.terms(chunk.id) == Counter(tokenizer.tokenize(chunk.search_text))
    token = "事業"
    assert index.document_frequency(token) == sum(token in tokenizer.tokenize(c.search_text) for c in passages)
    assert index.document_frequency("zzzz") == 0
    assert index.idf("zzzz") == pytest.approx(math.log(1 + (len(passages) + 0.5) / 0.5))


def test_a_copy_changes_without_touching_the_original(passages: list[Chunk]) -> None:
    original = _built(passages[:100])
    before = {q: original.search(q, limit=10) for q in QUERIES}
    twin = original.copy()
    novel = replace(passages[100], id="new#1", search_text=passages[100].search_text + " qwertyword")
    twin.add(novel)
    twin.remove(passages[0].id)
    twin.relabel(replace(passages[1], metadata={"kind": "changed"}))
    assert twin.document_frequency("qwertyword") == 1 and twin.search("qwertyword", limit=3)[0][0] == "new#1"
    # The original's postings were built before the copy's new token had an id, and after: both ignore it.
    assert original.document_frequency("qwertyword") == 0
    assert {q: original.search(q, limit=10) for q in QUERIES} == before
    assert passages[0].id in original and original.get(passages[1].id).metadata == passages[1].metadata
    # The copy scores as an index built from scratch with the same passages in the same order.
    rebuilt = _built([c for c in passages[1:100]] + [novel])
    for query in [*QUERIES, "qwertyword"]:
        assert twin.search(query, limit=10) == rebuilt.search(query, limit=10)


def test_save_and_load_give_the_same_index(passages: list[Chunk], tmp_path: Path) -> None:
    index = _built(passages)
    index.prepare()
    changed = index.copy()
    for chunk in passages[:40]:  # their tokens stay in the shared vocabulary, but are not written
        changed.remove(chunk.id)
    changed.add(replace(passages[0], id="again#1"))
    path = tmp_path / "bm25.pkl"
    changed.save(path)
    loaded = LexicalIndex.load(path, BigramTokenizer())
    _same_index(loaded, changed, [*passages[40:], replace(passages[0], id="again#1")])
    assert pickle.loads(path.read_bytes())["version"] == FORMAT_VERSION
    # A loaded index goes on taking changes, and saves again.
    loaded.add(replace(passages[1], id="later#1", search_text="まったく新しい語彙 xylophone"))
    loaded.save(path)
    assert LexicalIndex.load(path, BigramTokenizer()).search("xylophone", limit=3)[0][0] == "later#1"


def test_empty_index_saves_loads_and_finds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bm25.pkl"
    empty = LexicalIndex.load(path, BigramTokenizer())  # no file yet
    assert len(empty) == 0 and empty.search("事業", limit=5) == [] and empty.document_frequency("事業") == 0
    empty.save(path)
    again = LexicalIndex.load(path, BigramTokenizer())
    assert len(again) == 0 and again.search("事業", limit=5) == []


def test_format_1_pickle_is_read_without_a_rebuild(passages: list[Chunk], tmp_path: Path) -> None:
    path = tmp_path / "bm25.pkl"
    _v1_pickle(path, passages)
    loaded = LexicalIndex.load(path, BigramTokenizer())
    _same_index(loaded, _built(passages), passages)
    assert isinstance(loaded.terms(passages[0].id), Counter)
    # Loading converted the file itself, so the next start reads the current format, the same index.
    assert pickle.loads(path.read_bytes())["version"] == FORMAT_VERSION
    _same_index(LexicalIndex.load(path, BigramTokenizer()), _built(passages), passages)


def test_other_tokenizer_or_unknown_format_is_refused(passages: list[Chunk], tmp_path: Path) -> None:
    path = tmp_path / "bm25.pkl"
    _v1_pickle(path, passages[:5])
    with pytest.raises(IndexMismatchError, match=r"'bigram' tokenizer.*kakehashi ingest --rebuild"):
        LexicalIndex.load(path, SudachiTokenizer())
    _built(passages[:5]).save(path)
    with pytest.raises(IndexMismatchError, match="'bigram' tokenizer"):
        LexicalIndex.load(path, SudachiTokenizer())
    path.write_bytes(pickle.dumps({"version": 99, "tokenizer": "bigram"}))
    with pytest.raises(IndexMismatchError, match=f"bm25.pkl: lexical index format 99 is not {FORMAT_VERSION}"):
        LexicalIndex.load(path, BigramTokenizer())


def test_empty_and_very_long_passages_score_right(passages: list[Chunk]) -> None:
    # A passage with no tokens at all (first and last), and one whose token count does not fit 16 bits
    # (the postings are then built another way).
    blank = [replace(passages[0], id=f"blank#{i}", search_text="。、！") for i in range(2)]
    long = replace(passages[1], id="long#1", search_text="binds " * 70_000 + "交付決定")
    chunks = [blank[0], *passages[:30], long, blank[1]]
    index = _built(chunks)
    for query in ["binds", "交付決定 binds", *QUERIES]:
        ids, scores = index.scores(query)
        expected = _okapi(chunks, query)
        np.testing.assert_allclose(scores, [expected[i] for i in ids], rtol=2e-5, atol=1e-6)
    assert index.terms("long#1")["binds"] == 70_000 and index.terms("blank#1") == Counter()
    assert index.search("binds", limit=3)[0][0] == "long#1"
