"""The things a question names: programs, VCs, CDMOs and the startups the VCs backed.

Names are matched after NFKC, lower-casing and removing spaces and separators, so 「ＢＴＥＰ」, "btep" and
"B-TEP" are one name. A Japanese name matches when a long enough piece of it stands in the question
(「エコシステム強化事業」 finds 創薬ベンチャーエコシステム強化事業); an English name when most of its content words do.
Overlapping matches keep the better one, so a comparison of two programs finds both.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.loader import KnowledgeBase
from knowledge.normalize import fold_name, nfkc
from knowledge.schema import CDMO, VC, Investment, Program, Record

_CORPORATE = re.compile(
    r"株式会社|有限会社|合同会社|\(株\)|inc\.?$|co\.,?\s*ltd\.?|ltd\.?$|llc$|corporation$", re.IGNORECASE
)
_LATIN = re.compile(r"^[a-z0-9]+$")
_WORD = re.compile(r"[a-z][a-z0-9]+")
# English words that do not tell one program from another.
_EN_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "into",
        "its",
        "it",
        "is",
        "are",
        "be",
        "or",
        "as",
        "our",
        "we",
        "project",
        "projects",
        "program",
        "programme",
        "programs",
        "support",
        "supporting",
        "promotion",
        "japan",
        "japanese",
        "japan's",
        "mhlw",
        "mext",
        "meti",
        "amed",
        "cao",
        "government",
        "fy",
        "initiative",
        "scheme",
        "business",
        "development",
        "developing",
    ]
)
_MIN_JA_PIECE = 4  # shorter shared pieces (「事業」「支援」) say nothing about which program
# Words every program name ends with: a shared piece must name something beyond them.
_TITLE_NOISE = re.compile(r"公募要領|募集要項|要項|のご案内|ご案内|について|の概要|概要")
_GENERIC = re.compile(
    r"支援プログラム|プログラム|推進事業|支援事業|整備事業|事業|基金|税制|センター|研究開発|支援|推進"
)
_MIN_SCORE = 0.45
_MIN_EN_EVIDENCE = 5.0  # summed idf of the English name words a question shares with a name


@dataclass(frozen=True)
class Entity:
    """A named thing and the record that holds its facts (for a startup, the VC that backed it)."""

    kind: str  # program, vc, cdmo, startup, document
    record: Record | None  # None for a document: a program only an uploaded document describes
    name: str  # the display name in Japanese (as the source writes it)
    name_en: str | None = None
    investment: Investment | None = None
    document: str | None = None  # the document's file, for kind document

    @property
    def key(self) -> tuple[str, str]:
        if self.record is None:
            return (f"document:{self.document}", "")
        return (self.record.id, self.investment.startup if self.investment else "")

    def display(self, language: str) -> str:
        if language == "en" and self.name_en:
            return self.name_en
        return self.name


@dataclass(frozen=True)
class Mention:
    entity: Entity
    start: int  # span in the folded question
    end: int
    score: float
    exact: bool
    words: frozenset[str] = frozenset()  # for an English name: the question words it matched


def startup_name(name: str) -> str:
    """A company's name without 株式会社 / Inc.: how decks and askers often write it."""
    return _CORPORATE.sub("", nfkc(name)).strip()


class EntityCatalog:
    """Every name of every active record, folded once per knowledge snapshot."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._names: list[tuple[str, Entity, bool]] = []  # (folded name, entity, is_latin)
        self._by_bigram: dict[str, set[int]] = defaultdict(set)
        for record in kb.records:
            if record.status != "active":
                continue
            for entity, names in self._entities(record):
                for name in names:
                    self._add(name, entity)
        # A document staff uploaded that no record cites (a call for applications, say) is known by its title:
        # 「きらめき再生医療支援プログラムの締切は？」 then reads that document.
        cited = {s.document for r in kb.records for s in r.sources}
        for document in kb.documents:
            title = _TITLE_NOISE.sub("", document.meta.title).strip()
            if document.meta.file not in cited and len(fold_name(title)) >= 6:
                self._add(title, Entity("document", None, title, None, document=document.meta.file))
        self._english = self._english_names(kb)

    @staticmethod
    def _entities(record: Record) -> Iterable[tuple[Entity, list[str]]]:
        if isinstance(record, Program):
            entity = Entity("program", record, record.name_ja, record.name_en)
            yield entity, [record.name_ja, *(record.aliases or []), *([record.name_en] if record.name_en else [])]
        elif isinstance(record, VC):
            yield (
                Entity("vc", record, record.name, record.name_en),
                [record.name, *record.aliases, *([record.name_en] if record.name_en else [])],
            )
            for investment in record.investments:
                name = startup_name(investment.startup)
                yield Entity("startup", record, investment.startup, None, investment), [name]
        elif isinstance(record, CDMO):
            yield (
                Entity("cdmo", record, record.name, record.name),
                [record.name, *record.aliases, *([record.name_ja] if record.name_ja else [])],
            )

    @staticmethod
    def _english_names(kb: KnowledgeBase) -> list[tuple[dict[str, float], Entity]]:
        """Each program's English name as its distinctive words, weighted by how few names share them."""
        named = [
            (p, {w for w in _WORD.findall(nfkc(p.name_en).lower()) if w not in _EN_STOP})
            for p in kb.programs
            if p.status == "active" and p.name_en
        ]
        df: dict[str, int] = defaultdict(int)
        for _, words in named:
            for word in words:
                df[word] += 1
        n = len(named) or 1
        return [
            ({w: math.log((n + 1) / (df[w] + 0.5)) for w in words}, Entity("program", p, p.name_ja, p.name_en))
            for p, words in named
            if words
        ]

    def _add(self, name: str, entity: Entity) -> None:
        folded = fold_name(name)
        if len(folded) < 2:
            return
        index = len(self._names)
        self._names.append((folded, entity, bool(_LATIN.match(folded))))
        for i in range(len(folded) - 1):
            self._by_bigram[folded[i : i + 2]].add(index)

    def program_names(self) -> list[str]:
        """Every program's folded Japanese name (for telling a line about one program from one about another)."""
        return [fold_name(p.name_ja) for p in self.kb.programs if p.status == "active"]

    def find(self, question: str) -> list[Mention]:
        """The things named in `question`, best first, without two claiming the same words."""
        folded = fold_name(question)
        words = set(_WORD.findall(nfkc(question).lower()))
        counts: dict[int, int] = defaultdict(int)
        for i in range(len(folded) - 1):
            for index in self._by_bigram.get(folded[i : i + 2], ()):
                counts[index] += 1
        candidates: list[Mention] = []
        for index, shared in counts.items():
            name, entity, latin = self._names[index]
            mention = (
                self._latin_mention(name, entity, folded, question)
                if latin
                else self._japanese_mention(name, entity, folded, shared)
            )
            if mention:
                candidates.append(mention)
        for words_of_name, entity in self._english:
            mention = self._english_mention(words_of_name, entity, words)
            if mention:
                candidates.append(mention)
        return self._without_overlaps(candidates)

    @staticmethod
    def _latin_mention(name: str, entity: Entity, folded: str, question: str) -> Mention | None:
        # An acronym or a Latin name must stand as a word of its own: "btep", not the "ep" of "step".
        start = folded.find(name)
        if start < 0:
            return None
        plain = nfkc(question).lower()
        if len(name) <= 5 and not re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", plain):
            return None
        return Mention(entity, start, start + len(name), 1.0 + len(name) / 100, exact=True)

    @staticmethod
    def _japanese_mention(name: str, entity: Entity, folded: str, shared: int) -> Mention | None:
        start = folded.find(name)
        if start >= 0:
            return Mention(entity, start, start + len(name), 1.0 + len(name) / 100, exact=True)
        if shared < _MIN_JA_PIECE - 1:
            return None
        # The longest piece of the name that stands in the question.
        best_len, best_start = 0, -1
        for i in range(len(folded)):
            j = i + best_len + 1
            while j <= len(folded) and folded[i:j] in name:
                best_len, best_start = j - i, i
                j += 1
        if (
            best_len < _MIN_JA_PIECE
            or len(_GENERIC.sub("", folded[best_start : best_start + best_len])) < _MIN_JA_PIECE
        ):
            return None  # 「…支援プログラム」 shared says nothing about which program
        # How much of the name the question says, in pieces: 「…遺伝子治療の製造設備投資を支援する事業」 says nearly
        # all of 再生・細胞医療・遺伝子治療製造設備投資支援事業 and only half of …遺伝子治療実現加速化プログラム.
        grams = {name[i : i + 2] for i in range(len(name) - 1)}
        score = sum(g in folded for g in grams) / len(grams) if grams else 0.0
        # A long shared piece names the program even when the question shortens the rest.
        if best_len >= 8:
            score = max(score, 0.6)
        if score < _MIN_SCORE:
            return None
        return Mention(entity, best_start, best_start + best_len, score, exact=False)

    def _english_mention(self, name_words: dict[str, float], entity: Entity, words: set[str]) -> Mention | None:
        hit = {
            w: weight
            for w, weight in name_words.items()
            if any(q == w or (len(q) >= 3 and len(w) >= 3 and (q.startswith(w) or w.startswith(q))) for q in words)
        }
        total = sum(name_words.values())
        # Common words ("drug discovery") are shared by many names and name none of them.
        if len(hit) < 2 or sum(hit.values()) < _MIN_EN_EVIDENCE or not total:
            return None
        fraction = sum(hit.values()) / total
        if fraction < 0.35:
            return None
        # More distinctive words matched wins over a shorter name matched whole: "drug discovery venture
        # ecosystem program" is the Venture Ecosystem program, not the (Venture-less) Ecosystem Development one.
        score = 0.2 * fraction + 0.2 * min(1.0, sum(hit.values()) / 15)
        # English names have no single span in the folded text: they claim no words, so they never shadow
        # a Japanese or exact match.
        return Mention(entity, -1, -1, 0.5 + score, exact=False, words=frozenset(hit))

    @staticmethod
    def _without_overlaps(candidates: list[Mention]) -> list[Mention]:
        # An English reading whose matched words another reading matches and more is that other one's part.
        english = [m for m in candidates if m.start < 0]
        candidates = [m for m in candidates if m.start >= 0 or not any(m.words < o.words for o in english)]
        kept: list[Mention] = []
        taken: list[tuple[int, int]] = []
        seen: set[tuple[str, str]] = set()
        for mention in sorted(candidates, key=lambda m: (-m.score, -(m.end - m.start))):
            if mention.entity.key in seen:
                continue
            if mention.start >= 0 and any(mention.start < e and s < mention.end for s, e in taken):
                continue
            kept.append(mention)
            seen.add(mention.entity.key)
            if mention.start >= 0:
                taken.append((mention.start, mention.end))
        return kept
