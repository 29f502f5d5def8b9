"""Who is asking and what they need: a matchmaking profile read from free text.

Without a chat model the profile comes from a curated synonym vocabulary
(profile_vocabulary.yaml beside this module), so matchmaking works offline and
staff can teach it new words without touching code. With a chat model, its
structured output is used instead, validated against the same schema; any
failure falls back to the vocabulary. Either way the profile is shown back to the
user, who can correct a misunderstanding by rephrasing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import yaml
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from knowledge.labels import label as labels_label
from knowledge.normalize import fold_dashes
from knowledge.schema import Applicant, DiseaseArea, Modality, Stage, Support
from prompts.messages import t
from retrieval.deadline import chat_timeout, within
from retrieval.errors import LLMError, VocabularyError
from retrieval.language import Language, detect_language

log = logging.getLogger(__name__)

DEFAULT_VOCABULARY_PATH = Path(__file__).resolve().parent / "profile_vocabulary.yaml"
MAX_PROFILE_CHARS = 4000


class Destination(StrEnum):
    JAPAN = "japan"
    US = "us"
    GLOBAL = "global"


# A policy body is not something a person needs; every other kind of support can be asked for.
NEEDS: tuple[Support, ...] = tuple(s for s in Support if s is not Support.POLICY)


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class Profile(BaseModel):
    """A startup's or team's situation, in the closed vocabularies the records use."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    who: list[Applicant] = Field(
        default_factory=list,
        description="Who is asking: academia (incl. before founding), startup, pharma, cdmo, incubator, "
        "medical_institution. Empty if the text does not say.",
    )
    pre_founding: bool = Field(
        default=False, description="True if the team has not founded its company yet (起業前); implies academia."
    )
    stages: list[Stage] = Field(
        default_factory=list, description="Development stages the team is at or moving into; empty if not stated."
    )
    modalities: list[Modality] = Field(default_factory=list, description="What they develop; empty if not stated.")
    disease_areas: list[DiseaseArea] = Field(default_factory=list, description="Target disease areas, if stated.")
    needs: list[Support] = Field(
        default_factory=list,
        description="What they ask for: non_dilutive_funding, investment, manufacturing, regulatory, "
        "clinical_trials, talent, facilities, overseas, ip_strategy (also hands_on, matching, "
        "research_infrastructure, tax).",
    )
    destinations: list[Destination] = Field(
        default_factory=list, description="Where they want to go: japan, us, global; empty if not stated."
    )
    based_in: list[Destination] = Field(
        default_factory=list,
        description="Where the asker's company or team is from (a US biotech: us), not where "
        "it wants to go; empty if not stated.",
    )
    founded: bool = Field(
        default=False,
        description="True if the text says the company already exists "
        "(設立済み, 創業N年目, a spin-out that has incorporated).",
    )
    life_science: bool = Field(
        default=False,
        description="True if the text is about health care or life science "
        "(drugs, devices, diagnostics, patients, biology). Set from the vocabulary.",
    )
    investors: list[str] = Field(
        default_factory=list,
        description="Investors the asker already has, as named in the certified VC list (filled in by the matcher).",
    )
    universities: list[str] = Field(
        default_factory=list,
        description="Universities the asker belongs to or comes "
        "from, as written (filled in by the matcher when one has a certified VC).",
    )
    amounts: list[str] = Field(default_factory=list, description="Amounts of money mentioned, as written.")
    timing: list[str] = Field(default_factory=list, description="Dates or periods mentioned, as written.")
    free_text: str = Field(default="", description="The description as the user wrote it.")

    @field_validator(
        "who",
        "stages",
        "modalities",
        "disease_areas",
        "needs",
        "destinations",
        "based_in",
        "investors",
        "universities",
        "amounts",
        "timing",
    )
    @classmethod
    def _deduplicate(cls, values: list[Any]) -> list[Any]:
        return _unique(values)

    @field_validator("who")
    @classmethod
    def _no_any_asker(cls, values: list[Applicant]) -> list[Applicant]:
        # `any` describes a program's openness, not a person; it would make every program "eligible".
        return [v for v in values if v is not Applicant.ANY]

    @field_validator("modalities", "disease_areas")
    @classmethod
    def _no_any_focus(cls, values: list[Any]) -> list[Any]:
        return [v for v in values if v != "any"]

    @field_validator("needs")
    @classmethod
    def _needs_are_asks(cls, values: list[Support]) -> list[Support]:
        return [v for v in values if v in NEEDS]

    @model_validator(mode="after")
    def _pre_founding_is_academia(self) -> Profile:
        if self.pre_founding and Applicant.ACADEMIA not in self.who:
            self.who = [Applicant.ACADEMIA, *self.who]
        if self.pre_founding:
            self.founded = False  # "before founding" wins over a word like 創業 in the same text
        elif self.founded and not set(self.who) - {Applicant.ACADEMIA, Applicant.MEDICAL_INSTITUTION}:
            self.who = [*self.who, Applicant.STARTUP]  # a company that exists is asking, not the lab it came from
        return self

    @property
    def empty(self) -> bool:
        """Nothing beyond who is asking: too little to match on."""
        return not (
            self.stages or self.modalities or self.disease_areas or self.needs or self.destinations or self.investors
        )


# --- vocabulary ---------------------------------------------------------------------------------

_FIELD_ENUMS: dict[str, type[StrEnum]] = {
    "who": Applicant,
    "stages": Stage,
    "modalities": Modality,
    "disease_areas": DiseaseArea,
    "needs": Support,
    "destinations": Destination,
    "based_in": Destination,
}
_LATIN_EDGE = re.compile(r"[a-z0-9]", re.IGNORECASE)
# A content word: a Latin word of 4+ letters, or a run of 2+ kanji / katakana (particles are hiragana).
_CONTENT_WORD = re.compile(r"[a-z]{4,}|[\u4e00-\u9fff\u30a0-\u30ff]{2,}")


def _fold(text: str) -> str:
    # Lower-casing char by char keeps offsets aligned with the unfolded text (a few
    # characters lower-case to two), so case-sensitive terms can use the same mask.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


@dataclass(frozen=True)
class Assignment:
    """What one term says about the profile."""

    values: tuple[tuple[str, str], ...] = ()  # (field, enum value)
    pre_founding: bool = False
    founded: bool = False

    def merge(self, other: Assignment) -> Assignment:
        return Assignment(
            values=tuple(_unique((*self.values, *other.values))),
            pre_founding=self.pre_founding or other.pre_founding,
            founded=self.founded or other.founded,
        )


@dataclass(frozen=True)
class Term:
    text: str
    pattern: re.Pattern[str]
    case_sensitive: bool
    assignment: Assignment


@dataclass(frozen=True)
class TermMatch:
    term: str
    start: int
    end: int
    assignment: Assignment


def _compile(term: str) -> re.Pattern[str]:
    prefix = term.endswith("*")
    body = term[:-1] if prefix else term
    parts = []
    for char in body:
        if char in " -":
            # "phase 1", "phase-1" and "phase1" are the same words.
            parts.append(r"[\s\-]?")
        else:
            parts.append(re.escape(char))
    pattern = "".join(parts)
    # Latin words match whole (the text is folded to lower case unless the term is case-sensitive).
    if _LATIN_EDGE.match(body[0]):
        pattern = r"(?<![A-Za-z0-9])" + pattern
    if prefix:
        pattern += r"[A-Za-z0-9\-]*"
    elif _LATIN_EDGE.match(body[-1]):
        pattern += r"(?![A-Za-z0-9])"
    return re.compile(pattern)


class ProfileVocabulary:
    """The synonym vocabulary, compiled once per file and shared.

    `ProfileVocabulary.default()` loads the packaged file on first use, not at import.
    """

    _cache: ClassVar[dict[Path, ProfileVocabulary]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        terms: list[Term],
        path: Path | None = None,
        life_science: list[Term] | None = None,
        non_rd_uses: list[Term] | None = None,
        patterns: dict[str, list[re.Pattern[str]]] | None = None,
        generic_words: set[str] | None = None,
    ) -> None:
        # Longest first, so a phrase claims its characters before the words inside it.
        self.terms = sorted(terms, key=lambda t: (-len(t.text.rstrip("*")), t.text))
        self.path = path
        # Words that place a text in health care or life science; matched on their own, claiming nothing.
        self.life_science = life_science or []
        self.non_rd_uses = non_rd_uses or []
        self.patterns = patterns or {}
        self.generic_words = generic_words or set()
        self._by_value: dict[tuple[str, str], list[str]] = {}
        for term in self.terms:
            for key in term.assignment.values:
                self._by_value.setdefault(key, []).append(term.text.rstrip("*"))

    @classmethod
    def default(cls) -> ProfileVocabulary:
        return cls.load(DEFAULT_VOCABULARY_PATH)

    @classmethod
    def load(cls, path: Path) -> ProfileVocabulary:
        path = path.resolve()
        with cls._lock:
            if path not in cls._cache:
                cls._cache[path] = cls.from_yaml(path.read_text(encoding="utf-8") if path.exists() else None, path=path)
            return cls._cache[path]

    @classmethod
    def from_yaml(cls, text: str | None, *, path: Path | None = None) -> ProfileVocabulary:
        where = str(path) if path else "vocabulary"
        if text is None:
            raise VocabularyError(f"{where}: the profile vocabulary file is missing")
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise VocabularyError(f"{where}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise VocabularyError(f"{where}: the vocabulary must be a mapping with fields/phrases/ignore")
        merged: dict[tuple[str, bool], Assignment] = {}

        def add(raw: Any, assignment: Assignment, context: str) -> None:
            if isinstance(raw, dict):
                text_value, case_sensitive = raw.get("text"), bool(raw.get("case_sensitive", False))
            else:
                text_value, case_sensitive = raw, False
            if not isinstance(text_value, str | int) or not str(text_value).strip():
                raise VocabularyError(f"{where}: {context}: a term must be a non-empty string, got {raw!r}")
            term = fold_dashes(str(text_value).strip())
            term = term if case_sensitive else _fold(term)
            key = (term, case_sensitive)
            merged[key] = merged[key].merge(assignment) if key in merged else assignment

        fields = data.get("fields") or {}
        if not isinstance(fields, dict):
            raise VocabularyError(f"{where}: `fields` must be a mapping of field -> value -> terms")
        for field_name, values in fields.items():
            enum = _FIELD_ENUMS.get(field_name)
            if enum is None:
                raise VocabularyError(f"{where}: unknown field {field_name!r}; known: {', '.join(_FIELD_ENUMS)}")
            for value, terms in (values or {}).items():
                cls._check_value(where, field_name, enum, value)
                for raw in terms or []:
                    add(raw, Assignment(values=((field_name, str(value)),)), f"{field_name}.{value}")
        for number, phrase in enumerate(data.get("phrases") or [], 1):
            if not isinstance(phrase, dict) or not phrase.get("terms"):
                raise VocabularyError(f"{where}: phrases[{number}] needs `terms` and at least one field")
            assigned: list[tuple[str, str]] = []
            for field_name, field_values in phrase.items():
                if field_name in ("terms", "pre_founding", "founded"):
                    continue
                enum = _FIELD_ENUMS.get(field_name)
                if enum is None:
                    raise VocabularyError(f"{where}: phrases[{number}]: unknown field {field_name!r}")
                for value in field_values or []:
                    cls._check_value(where, f"phrases[{number}].{field_name}", enum, value)
                    assigned.append((field_name, str(value)))
            assignment = Assignment(
                values=tuple(assigned),
                pre_founding=bool(phrase.get("pre_founding", False)),
                founded=bool(phrase.get("founded", False)),
            )
            for raw in phrase["terms"]:
                add(raw, assignment, f"phrases[{number}]")
        for raw in data.get("ignore") or []:
            add(raw, Assignment(), "ignore")
        terms = [Term(text=t, pattern=_compile(t), case_sensitive=cs, assignment=a) for (t, cs), a in merged.items()]

        def word_list(name: str) -> list[Term]:
            listed = []
            for raw in data.get(name) or []:
                if not isinstance(raw, str) or not raw.strip():
                    raise VocabularyError(f"{where}: {name}: a term must be a non-empty string, got {raw!r}")
                term = _fold(fold_dashes(raw.strip()))
                listed.append(Term(text=term, pattern=_compile(term), case_sensitive=False, assignment=Assignment()))
            return listed

        life_science, non_rd_uses = word_list("life_science"), word_list("non_rd_uses")
        generic = {_fold(fold_dashes(str(w).strip())) for w in data.get("generic_words") or [] if str(w).strip()}
        patterns: dict[str, list[re.Pattern[str]]] = {}
        for name, regexes in (data.get("patterns") or {}).items():
            if name not in ("amounts", "timing"):
                raise VocabularyError(f"{where}: patterns: unknown kind {name!r}; known: amounts, timing")
            for regex in regexes or []:
                try:
                    patterns.setdefault(name, []).append(re.compile(str(regex), re.IGNORECASE))
                except re.error as exc:
                    raise VocabularyError(
                        f"{where}: patterns.{name}: invalid regular expression {regex!r}: {exc}"
                    ) from exc
        return cls(
            terms=terms,
            path=path,
            life_science=life_science,
            non_rd_uses=non_rd_uses,
            patterns=patterns,
            generic_words=generic,
        )

    @staticmethod
    def _check_value(where: str, context: str, enum: type[StrEnum], value: Any) -> None:
        if str(value) not in {e.value for e in enum}:
            raise VocabularyError(f"{where}: {context}: {value!r} is not one of {', '.join(e.value for e in enum)}")

    def find(self, text: str) -> list[TermMatch]:
        """Every term in `text`, longest first, each character claimed by one term at most."""
        raw = fold_dashes(text)
        folded = _fold(raw)
        taken = bytearray(len(raw))
        found: list[TermMatch] = []
        for term in self.terms:
            haystack = raw if term.case_sensitive else folded
            for m in term.pattern.finditer(haystack):
                if m.end() == m.start() or any(taken[m.start() : m.end()]):
                    continue
                taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
                found.append(TermMatch(term=term.text, start=m.start(), end=m.end(), assignment=term.assignment))
        return sorted(found, key=lambda f: f.start)

    def terms_for(self, field_name: str, value: str) -> list[str]:
        """The words that stand for a value (e.g. to find a record's passage that mentions it)."""
        return list(self._by_value.get((field_name, value), []))

    def life_science_terms(self, text: str) -> list[str]:
        """The health-care / life-science words in `text` (the relevance floor's first test)."""
        folded = _fold(fold_dashes(text))
        return [t.text for t in self.life_science if t.pattern.search(folded)]

    def other_content_words(self, text: str) -> list[str]:
        """Content words the vocabulary does not know and that are not generic (ラーメン店, fintech): what a
        description says it is about, when that is not something the vocabulary reads."""
        folded = _fold(fold_dashes(text))
        chars = list(folded)
        for match in self.find(text):
            chars[match.start : match.end] = " " * (match.end - match.start)
        rest = "".join(chars)
        return [w for w in _CONTENT_WORD.findall(rest) if w not in self.generic_words]

    def non_rd_use_terms(self, text: str) -> list[str]:
        """Words for uses of money or help the sources do not serve (shops, vehicles, advertising...)."""
        folded = _fold(fold_dashes(text))
        return [t.text for t in self.non_rd_uses if t.pattern.search(folded)]

    def mentions(self, text: str) -> dict[str, list[str]]:
        """Amounts and timing as written, for echoing the asker's situation back."""
        raw = fold_dashes(text)
        found: dict[str, list[str]] = {}
        for name, regexes in self.patterns.items():
            spans: list[tuple[int, int]] = []
            for regex in regexes:
                for m in regex.finditer(raw):
                    if not any(a <= m.start() < b or m.start() <= a < m.end() for a, b in spans):
                        spans.append((m.start(), m.end()))
            found[name] = [raw[a:b].strip() for a, b in sorted(spans)]
        return found

    def extract(self, text: str) -> Profile:
        collected: dict[str, list[str]] = {name: [] for name in _FIELD_ENUMS}
        pre_founding = founded = False
        for match in self.find(text):
            pre_founding = pre_founding or match.assignment.pre_founding
            founded = founded or match.assignment.founded
            for field_name, value in match.assignment.values:
                collected[field_name].append(value)
        founded = founded or (Applicant.STARTUP.value in collected["who"])
        return Profile(
            pre_founding=pre_founding,
            founded=founded,
            free_text=text,
            life_science=bool(self.life_science_terms(text) or collected["modalities"] or collected["disease_areas"]),
            **self.mentions(text),  # type: ignore[arg-type]
            **collected,  # type: ignore[arg-type]
        )


# --- extraction ---------------------------------------------------------------------------------


def _llm_profile(text: str, chat_model: BaseChatModel) -> Profile:
    from langchain_core.prompts import ChatPromptTemplate

    from prompts import load_prompt

    prompt = ChatPromptTemplate.from_messages([("system", load_prompt("profile_system")), ("human", "{text}")])
    try:
        structured = chat_model.with_structured_output(Profile)
        result = within(chat_timeout(chat_model), lambda: (prompt | structured).invoke({"text": text}))
    except LLMError:
        raise
    except Exception as exc:  # providers raise many types (HTTP, timeout, tool-call parsing)
        raise LLMError(f"chat model failed to extract a profile: {type(exc).__name__}: {exc}") from exc
    try:
        data = result.model_dump() if isinstance(result, BaseModel) else result
        if not isinstance(data, dict):
            raise LLMError(f"chat model returned {type(result).__name__}, not a profile")
        # The model's copy of the text is not trusted; the user's own words are kept.
        return Profile.model_validate({**data, "free_text": text})
    except ValidationError as exc:
        raise LLMError(f"chat model returned an invalid profile: {exc.error_count()} problem(s)") from exc


def extract_profile(
    text: str, *, chat_model: BaseChatModel | None = None, vocabulary: ProfileVocabulary | None = None
) -> Profile:
    """The profile in `text`: from the chat model when one is given and answers validly, else the vocabulary."""
    text = text.strip()[:MAX_PROFILE_CHARS]
    vocabulary = vocabulary or ProfileVocabulary.default()
    if chat_model is not None and text:
        try:
            profile = _llm_profile(text, chat_model)
            # Relevance and the figures quoted back are read the same way whichever path built the profile.
            life_science = bool(vocabulary.life_science_terms(text) or profile.modalities or profile.disease_areas)
            return profile.model_copy(update={"life_science": life_science, **vocabulary.mentions(text)})
        except LLMError as exc:
            log.warning("profile extraction falls back to the vocabulary: %s", exc)
    return vocabulary.extract(text)


# --- display ------------------------------------------------------------------------------------

# A profile's fields and the schema vocabulary each one takes its values from.
_PROFILE_VOCABULARY = {
    "who": "applicant",
    "stages": "stage",
    "modalities": "modality",
    "disease_areas": "disease_area",
    "needs": "support",
    "destinations": "destination",
    "based_in": "destination",
}
# Shown only when the text says something about them.
_OPTIONAL_FIELDS = ("based_in", "investors", "universities", "amounts", "timing")


def label(field_name: str, value: str, language: Language) -> str:
    """The display name of one enum value in a field."""
    return labels_label(_PROFILE_VOCABULARY.get(field_name, field_name), value, language)


def render_profile(profile: Profile, language: Language | None = None) -> str:
    """What was understood, one field a line, in the user's language, so they can correct it."""
    language = language or detect_language(profile.free_text)
    separator = "、" if language == "ja" else ", "
    lines = [t("match_profile_heading", language)]
    for name in ("who", "stages", "modalities", "disease_areas", "needs", "destinations", *_OPTIONAL_FIELDS):
        if name in ("investors", "universities", "amounts", "timing"):
            values = list(getattr(profile, name))
        else:
            values = [label(name, str(v), language) for v in getattr(profile, name)]
        if name == "who" and profile.pre_founding:
            values.append(t("match_profile_pre_founding", language))
        elif name == "who" and profile.founded:
            values.append(t("match_profile_founded", language))
        if not values and name in _OPTIONAL_FIELDS:
            continue
        shown = separator.join(values) if values else t("match_profile_unstated", language)
        lines.append(f"- {t(f'match_profile_field_{name}', language)}: {shown}")
    lines.append(t("match_profile_correct_me", language))
    return "\n".join(lines)
