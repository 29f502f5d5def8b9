"""Curated answers: what a supporter answered once, given first when a question asks the same thing.

Each active, current curated answer's phrasings are embedded once per knowledge snapshot (the index's
embedder, the one the questions go through). A question takes a curated answer when its similarity to one
phrasing reaches the calibrated threshold (benchmarks/curated_calibrate.py writes it from a labelled set
of paraphrases and near misses) and the two do not name different things: 「BTEPの上限」 never answers
「MEDISOの上限」. The answer is marked as checked by its supporter, with its sources cited from the
documents, never from a record's file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from knowledge.loader import KnowledgeBase
from knowledge.normalize import nfkc
from knowledge.schema import CuratedAnswer
from prompts.messages import t
from retrieval import compose as words
from retrieval.cite import Citation, Citations
from retrieval.embeddings import Embedder
from retrieval.entities import EntityCatalog
from retrieval.language import detect_language
from retrieval.leaks import leaks
from retrieval.understand import understand

log = logging.getLogger(__name__)

THRESHOLD_PATH = Path(__file__).with_name("curated_threshold.yaml")
# Names written in Latin capitals (MEDISO, BTEP, VC, CDMO): a program, office or kind of company the
# catalog may not know (CARISO, AIMGAIN), and whose swap changes what is asked.
_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z][A-Z0-9]{1,}(?![A-Za-z])")


PAIRINGS = ("ja", "en", "cross")


def pairing_of(curated_language: str, asked_language: str) -> str:
    return curated_language if curated_language == asked_language else "cross"


@dataclass(frozen=True)
class CuratedThreshold:
    """Similarity a question needs to a phrasing, per pairing of languages: the small multilingual model
    scores a translation lower than a same-language near miss, and English pairs differently from Japanese."""

    by_pairing: dict[str, float]

    @classmethod
    def load(cls, path: Path = THRESHOLD_PATH) -> CuratedThreshold:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(by_pairing={pairing: float(data[pairing]["similarity"]) for pairing in PAIRINGS})

    def for_pair(self, curated_language: str, asked_language: str) -> float:
        return self.by_pairing[pairing_of(curated_language, asked_language)]


@dataclass(frozen=True)
class CuratedMatch:
    answer: CuratedAnswer
    phrasing: str
    score: float


@dataclass(frozen=True)
class CuratedReply:
    answer_id: str
    text: str
    notes: list[str]
    citations: list[Citation]
    cited: list[int]


def names(text: str, catalog: EntityCatalog | None) -> frozenset[str]:
    """What a question names: the catalog's things, and capitalised names the catalog does not know."""
    found = {m.entity.key[0] for m in catalog.find(text)} if catalog is not None else set()
    for acronym in _ACRONYM.findall(nfkc(text)):
        known = catalog.find(acronym) if catalog is not None else []
        if not known:
            found.add(f"name:{acronym.lower()}")
        elif not any(m.entity.key[0] in found for m in known):
            found.add(known[0].entity.key[0])
    return frozenset(found)


def names_differ(curated: frozenset[str], asked: frozenset[str]) -> bool:
    """True when the asked question names something in place of what the curated one names. A question
    naming nothing (「相談料はかかる？」 in a thread about MEDISO) or naming more is left to the similarity."""
    return bool(curated - asked) and bool(asked - curated)


@dataclass(frozen=True)
class Reading:
    """What the matching compares of a question besides its meaning."""

    language: str
    names: frozenset[str]
    attributes: frozenset[str]


def read(text: str, catalog: EntityCatalog | None) -> Reading:
    return Reading(
        language=detect_language(text),
        names=names(text, catalog),
        attributes=frozenset(understand(text, catalog=catalog).attributes),
    )


def conflict(curated: Reading, asked: Reading) -> bool:
    """The two ask about different things, or different attributes of a thing (「次回公募はいつ」 vs 「補助率は」)."""
    return names_differ(curated.names, asked.names) or (
        bool(curated.attributes) and bool(asked.attributes) and not curated.attributes & asked.attributes
    )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator else 0.0


@dataclass(frozen=True)
class _Phrasing:
    answer: CuratedAnswer
    text: str
    vector: np.ndarray
    reading: Reading


class CuratedAnswers:
    """The curated answers a question may get, for one knowledge snapshot at a time. Thread-safe."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        threshold: CuratedThreshold,
        stale_days: int,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.stale_days = stale_days
        self._today = today
        self._lock = threading.Lock()
        self._kb: KnowledgeBase | None = None
        self._phrasings: list[_Phrasing] = []
        self._vectors: dict[str, np.ndarray] = {}  # phrasing -> vector, kept across snapshots

    def usable(self, answer: CuratedAnswer, kb: KnowledgeBase) -> bool:
        """Active, checked within the stale limit, and nothing in it a founder must not see."""
        if answer.status != "active":
            return False
        if (self._today() - answer.as_of).days > self.stale_days:
            return False
        ids = [r.id for r in kb.records] + [a.id for a in kb.answers]
        found = leaks("\n".join(filter(None, [answer.answer_ja, answer.answer_en])), ids)
        if found:
            log.warning("curated answer %s is not used: it shows staff-only material (%s)", answer.id, ", ".join(found))
            return False
        return True

    def _snapshot(self, kb: KnowledgeBase, catalog: EntityCatalog | None) -> list[_Phrasing]:
        with self._lock:
            if self._kb is kb:
                return self._phrasings
            phrasings = []
            vectors = {}
            for answer in kb.answers:
                if not self.usable(answer, kb):
                    continue
                for text in answer.questions:
                    vector = self._vectors.get(text)
                    if vector is None:
                        vector = self.embedder.embed_query(text)
                    vectors[text] = vector
                    phrasings.append(_Phrasing(answer, text, vector, read(text, catalog)))
            self._kb, self._phrasings, self._vectors = kb, phrasings, vectors
            return phrasings

    def find(
        self,
        question: str,
        *,
        kb: KnowledgeBase,
        vector: np.ndarray | None = None,
        catalog: EntityCatalog | None = None,
    ) -> CuratedMatch | None:
        """The curated answer `question` asks for, or None."""
        phrasings = self._snapshot(kb, catalog)
        if not phrasings or not question.strip():
            return None
        vector = self.embedder.embed_query(question) if vector is None else vector
        asked = read(question, catalog)
        # A phrasing in the asker's language is compared with that one alone (same-language similarity is
        # the reliable kind); a translation is the way in only to an answer with no phrasing in that language.
        own_language = {p.answer.id for p in phrasings if p.reading.language == asked.language}
        today = self._today()
        best: CuratedMatch | None = None
        for phrasing in phrasings:
            if phrasing.answer.id in own_language and phrasing.reading.language != asked.language:
                continue
            if (today - phrasing.answer.as_of).days > self.stale_days:
                continue  # it aged while the knowledge stayed the same: the snapshot was built before
            if conflict(phrasing.reading, asked):
                continue
            score = cosine(vector, phrasing.vector)
            threshold = self.threshold.for_pair(phrasing.reading.language, asked.language)
            if score >= threshold and (best is None or score > best.score):
                best = CuratedMatch(phrasing.answer, phrasing.text, score)
        return best

    def reply(self, match: CuratedMatch, *, language: str, kb: KnowledgeBase, citations: Citations) -> CuratedReply:
        """The answer in the asker's language where written, its sources cited, marked as checked."""
        answer = match.answer
        notes: list[str] = []
        text = answer.answer_ja
        if language == "en":
            if answer.answer_en:
                text = answer.answer_en
            else:
                notes.append(t("answer_curated_japanese_only", "en"))
        numbers = []
        for source in answer.sources:
            for document, quote in _quotes(source.document, source.quote, source.record, kb):
                n = citations.cite_quote(quote, document)
                if n is not None and n not in numbers:
                    numbers.append(n)
        marks = "".join(f"[{n}]" for n in numbers)
        lines = [
            *notes,
            f"{text.strip()} {marks}".rstrip(),
            t("answer_curated_checked", language, who=answer.author, when=words.date_text(answer.as_of, language)),
        ]
        return CuratedReply(
            answer_id=answer.id, text="\n".join(lines), notes=notes, citations=citations.items, cited=sorted(numbers)
        )


def _quotes(document: str | None, quote: str | None, record_id: str | None, kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(document, quote) pairs to cite: the passage itself, or for a record the passage its facts rest on."""
    if document is not None and quote is not None:
        return [(document, quote)]
    if record_id is None:
        return []
    try:
        record = kb.get(record_id)
    except KeyError:
        return []
    return [(s.document, s.quote) for s in record.sources[:1]]
