"""What a question asks: its language, intent, the things it names and the attribute it wants.

The words are data (question_vocabulary.yaml); this module only applies them. A question that names
nothing and points back ("それ", "that") or asks only for an attribute ("補助率は？") is a follow-up: it is
resolved from the thread's earlier turns, or, with none, the answer asks which program is meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from knowledge.normalize import fold, fold_name
from retrieval.entities import Entity, EntityCatalog, Mention
from retrieval.errors import VocabularyError
from retrieval.language import Language, detect_language

VOCABULARY_FILE = Path(__file__).with_name("question_vocabulary.yaml")
INTENTS = ("fact", "fit", "compare", "list", "thanks", "clarify", "out_of_scope")
_HIRAGANA = re.compile(r"[\u3041-\u309f]")
_ROUND = re.compile(r"第\s*(\d+)\s*回|round\s*(\d+)|(\d+)(?:st|nd|rd|th)\s+round", re.IGNORECASE)
_FISCAL_YEAR = re.compile(r"令和\s*(\d+)\s*年度?|R\s*(\d+)\s*年度|FY\s*(20\d\d)|(20\d\d)\s*年度", re.IGNORECASE)
# Words every question shares: what is left after them (and the vocabulary's words) is its content.
_FILLER_JA = re.compile(r"[\u3041-\u309f、。！？!??\s「」（）()・〜~…]+")
_EN_FILLER = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "ok",
        "okay",
        "also",
        "any",
        "there",
        "their",
        "they",
        "then",
        "about",
        "get",
        "got",
        "please",
        "tell",
        "know",
        "want",
        "like",
    ]
)
_THANKS_MAX_CHARS = 30
_FOLLOW_UP_MAX_CHARS = 30


class Terms:
    """One list of vocabulary words, compiled once: Latin words matched at a word start, Japanese anywhere."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = tuple(words)
        latin = sorted((w for w in self.words if re.match(r"[a-z0-9]", w)), key=len, reverse=True)
        self._japanese = tuple(w for w in self.words if not re.match(r"[a-z0-9]", w))
        self._latin = re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, latin)) + ")") if latin else None

    def found(self, text: str) -> list[str]:
        hits = [w for w in self._japanese if w in text]
        if self._latin:
            hits += [m.group() for m in self._latin.finditer(text)]
        return hits

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)


@dataclass(frozen=True)
class QuestionVocabulary:
    intents: dict[str, Terms]
    deictics: Terms
    attributes: dict[str, Terms]

    @classmethod
    @cache
    def default(cls) -> QuestionVocabulary:
        return cls.load(VOCABULARY_FILE)

    @classmethod
    def load(cls, path: Path) -> QuestionVocabulary:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise VocabularyError(f"{path}: cannot read the question vocabulary: {exc}") from exc
        for section in ("intents", "deictics", "attributes"):
            if not isinstance(data, dict) or not data.get(section):
                raise VocabularyError(f"{path}: section {section!r} is missing or empty")

        def terms(values: object, where: str) -> Terms:
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise VocabularyError(f"{path}: {where} must be a list of words")
            return Terms([_norm(v) for v in values])

        return cls(
            intents={k: terms(v, f"intents.{k}") for k, v in data["intents"].items()},
            deictics=terms(data["deictics"], "deictics"),
            attributes={k: terms(v, f"attributes.{k}") for k, v in data["attributes"].items()},
        )

    @property
    def all_words(self) -> tuple[str, ...]:
        """Every word of the vocabulary, longest first (for taking them out of a question)."""
        words = {w for t in (*self.attributes.values(), *self.intents.values(), self.deictics) for w in t}
        return tuple(sorted(words, key=len, reverse=True))


def _norm(text: str) -> str:
    return fold(text).strip()


def _found(text: str, terms: Terms) -> list[str]:
    return terms.found(text)


@dataclass(frozen=True)
class Turn:
    """An earlier exchange in the same thread."""

    question: str
    answer: str = ""


@dataclass
class Understanding:
    question: str
    language: Language
    intent: str
    mentions: list[Mention] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    round_number: int | None = None
    fiscal_year: int | None = None
    resolved_from_history: bool = False
    content: str = ""  # the question without its vocabulary words: what it is about
    said: frozenset[str] = frozenset()  # lines the thread's answers already said (set by the answerer)

    @property
    def entities(self) -> list[Entity]:
        return [m.entity for m in self.mentions]

    @property
    def entity(self) -> Entity | None:
        return self.mentions[0].entity if self.mentions else None

    @property
    def attribute(self) -> str | None:
        return self.attributes[0] if self.attributes else None

    def content_beyond(self, entity: Entity) -> str:
        """The question's content once the thing's own names are taken out: what else it asks about."""
        names = [fold_name(n) for n in (entity.name, entity.name_en or "", *getattr(entity.record, "aliases", []))]
        rest = [
            w for w in self.content.split() if len(fold_name(w)) >= 2 and not any(fold_name(w) in n for n in names if n)
        ]
        return " ".join(rest)


def _fiscal_year(text: str) -> int | None:
    match = _FISCAL_YEAR.search(text)
    if not match:
        return None
    reiwa, reiwa_r, fy, western = match.groups()
    if reiwa or reiwa_r:
        return 2018 + int(reiwa or reiwa_r)
    return int(fy or western)


def _content(text: str, vocabulary: QuestionVocabulary) -> str:
    """What is left of the question once the vocabulary's words and function words are gone."""
    rest = text
    words = vocabulary.all_words
    for word in words:
        if not re.match(r"[a-z0-9]", word):
            rest = rest.replace(word, " ")
    rest = _FILLER_JA.sub(" ", rest)
    latin_words = {w for w in words if re.match(r"[a-z]", w) and " " not in w}
    latin = [
        w
        for w in re.findall(r"[a-z][a-z0-9'-]+", rest)
        if w not in _EN_FILLER and w not in latin_words and not any(w.startswith(v) for v in latin_words if len(v) >= 4)
    ]
    japanese = [w for w in re.findall(r"[^\sa-z0-9'-]{2,}", rest) if not _HIRAGANA.fullmatch(w)]
    return " ".join(japanese + latin)


def understand(
    question: str,
    *,
    catalog: EntityCatalog | None,
    history: Sequence[Turn] = (),
    vocabulary: QuestionVocabulary | None = None,
) -> Understanding:
    vocabulary = vocabulary or QuestionVocabulary.default()
    text = _norm(question)
    language = detect_language(question)
    mentions = catalog.find(question) if catalog else []
    attributes = [name for name, terms in vocabulary.attributes.items() if _found(text, terms)]
    round_match = _ROUND.search(text)
    round_number = int(next(g for g in round_match.groups() if g)) if round_match else None
    understanding = Understanding(
        question=question,
        language=language,
        intent="fact",
        mentions=mentions,
        attributes=_rank_attributes(attributes, text, vocabulary),
        round_number=round_number,
        fiscal_year=_fiscal_year(question),
        content=_content(text, vocabulary),
    )
    if _is_thanks(text, vocabulary):
        understanding.intent = "thanks"
        return understanding
    if _found(text, vocabulary.intents["fit"]) and not (_names_one_thing(mentions) and not _describes_asker(text)):
        understanding.intent = "fit"
        return understanding
    if _found(text, vocabulary.intents["compare"]) and len(mentions) >= 2:
        understanding.intent = "compare"
        return understanding
    if _found(text, vocabulary.intents["compare"]) and _two_sides(question):
        understanding.intent = "compare"
        return understanding
    if (not mentions and _found(text, vocabulary.intents["list"]) and _asks_for_kind(text)) or (
        not _names_one_thing(mentions) and _asks_for_partners(text)
    ):
        understanding.intent = "list"
        return understanding
    if not mentions:
        points_back = bool(_found(text, vocabulary.deictics))
        # 「どのような相談ができますか？」 in a thread about MEDISO is about MEDISO: a short question that names
        # nothing leaves its subject to the thread, as Japanese does.
        short = len(text) <= _FOLLOW_UP_MAX_CHARS
        if points_back or not understanding.content or (short and history):
            earlier = _from_history(history, catalog)
            if earlier:
                understanding.mentions = earlier
                understanding.resolved_from_history = True
            elif points_back or not understanding.content:
                understanding.intent = "clarify"
    return understanding


def _is_thanks(text: str, vocabulary: QuestionVocabulary) -> bool:
    if len(text) > _THANKS_MAX_CHARS or "?" in text or "？" in text:
        return False
    return bool(_found(text, vocabulary.intents["thanks"]))


def _names_one_thing(mentions: Sequence[Mention]) -> bool:
    """A question about a named program is a fact question even when it says 「相談窓口」 or 「使える」."""
    return any(m.exact for m in mentions)


_ASKER = re.compile(
    r"私|わたし|うち|弊社|当社|我々|私たち|われわれ|(スタートアップ|ベンチャー|研究室|研究者|企業|会社|大学|病院)です"
    r"|(?<![a-z])(we|we're|our|i|i'm|my)(?![a-z])"
)


def _describes_asker(text: str) -> bool:
    """「…のスタートアップです」, "we are a …": the asker says who they are, so the question is what fits them."""
    return bool(_ASKER.search(text))


def _two_sides(question: str) -> bool:
    """「AとBの違い」 with two quoted or bracketed names, even when neither is a record of ours."""
    return len(re.findall(r"[「『\"“]([^」』\"”]{2,})[」』\"”]", question)) >= 2 or bool(
        re.search(r"(\S{2,})と(\S{2,})(って|の|は|で)", question) and re.search(r"(違い|違う|使い分け)", question)
    )


_PARTNERS = re.compile(
    r"(cdmo|cmo|受託製造|受託開発|製造委託|委託先|認定vc|ベンチャーキャピタル)[^。？?]{0,20}"
    r"(あります|ありますか|ある\?|ある？|教えて|知りたい|どこ)|(which|what|any|are there)[^?]{0,30}(cdmos?|cmos?|"
    r"contract manufactur\w*|certified vcs?)"
)


def _asks_for_partners(text: str) -> bool:
    """「iPS細胞の製造を委託できるCDMOはありますか？」: which CDMOs or VCs the sources list."""
    return bool(_PARTNERS.search(text))


def _asks_for_kind(text: str) -> bool:
    return bool(
        re.search(r"vc|cdmo|ベンチャーキャピタル|受託|事業|制度|program|startup|スタートアップ|ベンチャー", text)
    )


def _rank_attributes(found: list[str], text: str, vocabulary: QuestionVocabulary) -> list[str]:
    """The most specific attribute first: a cap or a rate is asked with 「いくら」 too, and a backer with 「出資」."""
    order = (
        "backer",
        "cap",
        "rate",
        "count",
        "rounds",
        "chair",
        "people",
        "target",
        "change",
        "ministry",
        "period",
        "stages",
        "coverage",
        "eligibility",
        "amount",
        "date",
    )
    return sorted(found, key=lambda name: order.index(name) if name in order else len(order))


def _from_history(history: Sequence[Turn], catalog: EntityCatalog | None) -> list[Mention]:
    """The things the thread talked about last: the newest question that named something, else the newest answer."""
    if not catalog:
        return []
    for turn in reversed(history):
        found = catalog.find(turn.question)
        if found:
            return found[:1]
        found = catalog.find(turn.answer.split("\n", 1)[0]) if turn.answer else []
        if found:
            return found[:1]
    return []
