"""Matchmaking: programs, certified VCs and CDMOs for a profile, each with reasons and citations.

Ranking has two steps, as grant-matching tools do. Hard eligibility first: who may
apply, stage (when both sides state stages), and stated modality or disease limits;
retired records and policy bodies are never offered. Then a fit score: how many of
the profile's fields the record meets, plus how close the description is to the
record's indexed text (the vectors already in the index are reused; only records
changed since the last ingest are embedded, once).

VCs are judged only on what the seeds show they did: the startups they backed and
what those develop. CDMOs on modality and where their facilities are.

Every reason carries a citation to a passage quoted in the record, so a supporter
can check it; a record that would have no reason is not recommended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel

from knowledge.loader import KnowledgeBase
from knowledge.normalize import nfkc, squash
from knowledge.schema import (
    BASIS_FIELDS,
    CDMO,
    VC,
    Applicant,
    BudgetKind,
    Investment,
    Modality,
    Program,
    ProgramCategory,
    Record,
    Source,
    Stage,
    Support,
)
from prompts.messages import t
from retrieval.chunking import record_chunk
from retrieval.index import SearchIndex
from retrieval.language import Language, detect_language
from retrieval.profile import Destination, Profile, ProfileVocabulary, extract_profile, label
from retrieval.relevance import RelevanceFloor, asks_only_non_rd
from retrieval.tokenize import char_bigrams

log = logging.getLogger(__name__)

KINDS = ("program", "vc", "cdmo")
# Destinations as facility countries; "global" is served by any facility outside Japan.
_DESTINATION_COUNTRIES = {Destination.JAPAN: {"JP"}, Destination.US: {"US"}}
# Who a VC invests in: startups, and academic teams on their way to founding one.
_VC_ASKERS = {Applicant.STARTUP, Applicant.ACADEMIA}
# Modalities that are not drugs: the certified VCs' program (創薬ベンチャーエコシステム強化事業) is for drug discovery.
_NON_DRUG_MODALITIES = {Modality.DEVICE, Modality.DIAGNOSTICS}
# 再生医療等製品 are, in Japanese regulation, cell-processed and gene-therapy products: a CDMO that makes
# those makes a regenerative medicine product.
_MAKES_AS: dict[Modality, set[Modality]] = {Modality.REGENERATIVE: {Modality.CELL_THERAPY, Modality.GENE_THERAPY}}
# Words in a program's requirements that open it to a company from abroad entering Japan.
_INBOUND_WORDS = ("外国法人", "海外企業", "日本子会社")
MEDISO_ID = "mhlw-mediso"
# Words in a program's requirements that tie it to a need it does not itself give.
_REQUIREMENT_NEEDS: dict[Support, tuple[str, ...]] = {Support.INVESTMENT: ("出資",)}


@dataclass(frozen=True)
class Limits:
    """How many recommendations of each kind to return."""

    program: int = 5
    vc: int = 5
    cdmo: int = 3

    def of(self, kind: str) -> int:
        return int(getattr(self, kind))


@dataclass(frozen=True)
class SourceQuote:
    """What a recommendation's reason cites: a record's source quote (answers cite indexed passages
    instead, as retrieval.cite.Citation)."""

    source: str  # the document as a reader knows it: its title and date (never a file name)
    text: str  # the passage as quoted in the record
    document: str = ""  # the seed file, for staff and tests; never shown to founders


@dataclass
class Recommendation:
    kind: str
    id: str
    name: str
    score: float
    reasons: list[str]
    citations: list[SourceQuote]
    name_en: str | None = None
    # For a compact card: one reason line without citation markers, and the fit in words (never the score).
    summary: str = ""
    criteria_met: int = 0
    criteria_total: int = 0
    fit: str = ""
    inferred: bool = False  # some of the fit rests on a curator's reading, not on the decks' words

    @property
    def source_title(self) -> str:
        """The human title of the first cited document (what a card shows as its one source)."""
        return self.citations[0].source if self.citations else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "score": self.score,
            "reasons": list(self.reasons),
            "citations": [{"source": c.source, "text": c.text} for c in self.citations],
            "summary": self.summary,
            "fit": self.fit,
            "criteria_met": self.criteria_met,
            "criteria_total": self.criteria_total,
            "inferred": self.inferred,
        }


@dataclass
class MatchResult:
    profile: Profile
    language: Language
    recommendations: list[Recommendation]
    notes: list[str] = field(default_factory=list)
    # The human route (MEDISO) for what the sources do not settle; None only when it is already recommended.
    referral: Recommendation | None = None
    out_of_scope: bool = False  # the description is not about health care / life science, or too far from it
    other_vcs: list[str] = field(default_factory=list)  # certified VCs with no evidence of fit, for a details view

    def of_kind(self, kind: str) -> list[Recommendation]:
        return [r for r in self.recommendations if r.kind == kind]

    @property
    def nothing_fits(self) -> bool:
        return not self.recommendations

    @property
    def no_program_fits(self) -> bool:
        return not self.of_kind("program")

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.model_dump(mode="json"),
            "recommendations": [r.to_json() for r in self.recommendations],
            "nothing_fits": self.nothing_fits,
            "out_of_scope": self.out_of_scope,
            "notes": list(self.notes),
            "referral": self.referral.to_json() if self.referral else None,
            "other_vcs": list(self.other_vcs),
        }


# --- wording ------------------------------------------------------------------------------------


def _t(key: str, language: Language, **values: Any) -> str:
    """A recommendation's words (prompts/messages/match.yaml); keys are built from field names."""
    return t(f"match_{key}", language, **values)


def _sep(language: Language) -> str:
    return "、" if language == "ja" else ", "


_MARKER_TAIL = re.compile(r" \[\d+(?:, \d+)*\]$")


_LIST_TITLE = re.compile(r"認定VC\s*\((\d+)社\)")


def _list_title(title: str, language: Language) -> str:
    """認定VC (30社) -> the certified VC list (30 firms), for English readers."""
    match = _LIST_TITLE.search(nfkc(title))
    return t("match_certified_vc_list", "en", count=match.group(1)) if language == "en" and match else title


def _facility(facility: Any, language: Language) -> str:
    """A CDMO site as the sources name it; English readers get the country code the record adds."""
    return facility.country if language == "en" else f"{facility.region_ja}（{facility.country}）"


_ROUND = re.compile(r"第\s*([0-9０-９]+)\s*回")


def _round_en(name: str) -> str:
    """第4回 -> round 4 (the sources name application rounds in Japanese)."""
    match = _ROUND.search(name)
    return f"round {int(nfkc(match.group(1)))}" if match else name


def _strip_markers(reason: str) -> str:
    return _MARKER_TAIL.sub("", reason)


def _basis_wanted(profile: Profile) -> dict[str, set[str]]:
    """The profile's values for each program field that eligibility compares."""
    return {
        "eligible": {str(w) for w in profile.who},
        "stages": {str(s) for s in profile.stages},
        "modalities": {str(m) for m in profile.modalities},
        "disease_areas": {str(d) for d in profile.disease_areas},
    }


# --- evidence -----------------------------------------------------------------------------------


class _Reasons:
    """Reasons for one recommendation, each ending in the numbers of the passages that support it."""

    def __init__(self, titles: dict[str, str]) -> None:
        self._titles = titles
        self.reasons: list[str] = []
        self.citations: list[SourceQuote] = []

    def add(self, text: str, sources: Sequence[Source]) -> None:
        if not sources:
            raise ValueError(f"a reason needs a citation: {text!r}")  # a bug in this module, never user input
        numbers: list[int] = []
        for source in sources:
            # Founders see the deck's title and date; the file name stays with staff.
            title = self._titles.get(source.document, "")
            citation = SourceQuote(source=title, text=source.quote, document=source.document)
            if citation not in self.citations:
                self.citations.append(citation)
            number = self.citations.index(citation) + 1
            if number not in numbers:
                numbers.append(number)
        self.reasons.append(f"{text} [{', '.join(str(n) for n in numbers)}]")


def _distinct(sources: Iterable[Source]) -> list[Source]:
    seen: dict[tuple[str, str], Source] = {}
    for source in sources:
        seen.setdefault((source.document, source.quote), source)
    return list(seen.values())


def _pick(sources: Sequence[Source], terms: Iterable[str], fallback: str = "") -> Source:
    """The passage that mentions the most of `terms`; else the one closest to `fallback` (e.g. the summary)."""
    wanted = [squash(t).lower() for t in terms if t and len(squash(t)) >= 2]
    best, best_score = sources[0], 0
    for source in sources:
        quote = squash(source.quote).lower()
        score = sum(1 for t in set(wanted) if t in quote)
        if score > best_score:
            best, best_score = source, score
    if best_score or not fallback:
        return best
    target = char_bigrams(nfkc(fallback))
    return max(
        sources,
        key=lambda s: len(char_bigrams(nfkc(s.quote)) & target) / (len(char_bigrams(nfkc(s.quote))) or 1) ** 0.5,
    )


@dataclass
class _Scored:
    record: Record
    score: float
    fits: int  # how many profile fields the record meets
    detail: dict[str, Any] = field(default_factory=dict)


def _standardize(values: dict[Any, float]) -> dict[Any, float]:
    """Similarities mapped to 0..1 by how far each stands above the others (logistic of the z-score).

    Cosine similarities of one embedder sit in a narrow band (e.g. 0.86-0.92 for e5); min-max
    scaling would turn noise into full-scale differences, and raw values mean little across embedders.
    """
    if not values:
        return {}
    numbers = np.fromiter(values.values(), dtype=np.float64)
    spread = float(numbers.std())
    if spread < 1e-9:
        return {k: 0.5 for k in values}
    mean = float(numbers.mean())
    return {k: float(1.0 / (1.0 + np.exp(-(v - mean) / spread))) for k, v in values.items()}


class Matcher:
    """Recommends programs, certified VCs and CDMOs for a profile. Safe to share between threads."""

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        index: SearchIndex,
        chat_model: BaseChatModel | None = None,
        vocabulary: ProfileVocabulary | None = None,
        today: dt.date | None = None,
        vector_cache: dict[str, np.ndarray] | None = None,
        floor: RelevanceFloor | None = None,
    ) -> None:
        self.kb = kb
        self.index = index
        self.chat_model = chat_model
        self.vocabulary = vocabulary or ProfileVocabulary.default()
        self._today = today
        programs = [p for p in kb.programs if p.status == "active"]
        self._active: dict[str, Sequence[Record]] = {
            "program": programs,
            "vc": [v for v in kb.vcs if v.status == "active"],
            "cdmo": [c for c in kb.cdmos if c.status == "active"],
        }
        chunks = {r.id: record_chunk(r) for records in self._active.values() for r in records}
        self._chunk_ids = {record_id: chunk.id for record_id, chunk in chunks.items()}
        self._chunk_texts = {record_id: chunk.search_text for record_id, chunk in chunks.items()}
        self._titles = {
            d.meta.file: f"{d.meta.title}（{d.meta.date.year}年{d.meta.date.month}月）" for d in kb.documents
        }
        self.floor = floor or RelevanceFloor.load()
        # Vectors this Matcher embedded itself (records newer than the index, VC portfolio texts), by content hash.
        self._vectors: dict[str, np.ndarray] = {} if vector_cache is None else vector_cache
        self._lock = threading.Lock()
        self._warned_stale: set[str] = set()
        self._vc_program = next((p for p in programs if any("認定VC" in r for r in p.requirements)), None)
        self._mediso = next((p for p in kb.programs if p.id == MEDISO_ID), None)

    @property
    def today(self) -> dt.date:
        return self._today or dt.date.today()

    # --- vectors ----------------------------------------------------------------------------------

    def _embed_once(self, texts: dict[str, str]) -> dict[str, np.ndarray]:
        """Passage vectors for texts keyed by content hash, embedding only those not seen before."""
        with self._lock:
            missing = {h: t for h, t in texts.items() if h not in self._vectors}
            if missing:
                vectors = self.index.embedder.embed_passages(list(missing.values()))
                self._vectors.update(zip(missing, vectors, strict=True))
            return {h: self._vectors[h] for h in texts}

    def _similarities(self, kind: str, query: np.ndarray) -> dict[str, float]:
        """Cosine similarity of the description to each active record of a kind. The records' vectors are
        read from the index once by id and kept (ids are content hashes, so they never go stale): a
        filtered nearest-neighbour search cost 73 ms at 100,000 passages, a dot product costs nothing."""
        records = self._active[kind]
        if not records:
            return {}
        wanted = {record.id: self._chunk_ids[record.id] for record in records}
        with self._lock:
            missing = [chunk_id for chunk_id in wanted.values() if chunk_id not in self._vectors]
        if missing:
            stored = self.index.store.vectors(missing)
            with self._lock:
                self._vectors.update(stored)
            stale = {
                record_id: chunk_id
                for record_id, chunk_id in wanted.items()
                if chunk_id in missing and chunk_id not in stored
            }
            if stale:
                if kind not in self._warned_stale:
                    self._warned_stale.add(kind)
                    log.warning(
                        "%d %s record(s) changed since the last ingest are embedded here (run `kakehashi ingest`): %s",
                        len(stale),
                        kind,
                        ", ".join(sorted(stale)[:10]),
                    )
                self._embed_once({stale[r]: self._chunk_texts[r] for r in stale})
        with self._lock:
            return {record_id: float(np.dot(self._vectors[chunk_id], query)) for record_id, chunk_id in wanted.items()}

    def _portfolio_similarities(self, query: np.ndarray) -> dict[tuple[str, str], float]:
        """Similarity of the description to what each backed startup develops, where the seeds say."""
        texts: dict[str, str] = {}
        keys: dict[tuple[str, str], str] = {}
        for vc in self._active["vc"]:
            assert isinstance(vc, VC)
            for inv in vc.investments:
                if inv.develops:
                    text = f"{inv.startup}: {inv.develops}"
                    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
                    texts[digest] = text
                    keys[(vc.id, inv.startup)] = digest
        if not texts:
            return {}
        vectors = self._embed_once(texts)
        return {key: float(np.dot(vectors[digest], query)) for key, digest in keys.items()}

    # --- entry points -----------------------------------------------------------------------------

    def match(self, text: str, *, limits: Limits | None = None) -> MatchResult:
        """Extract a profile from `text` and recommend for it."""
        profile = extract_profile(text, chat_model=self.chat_model, vocabulary=self.vocabulary)
        return self.match_profile(profile, limits=limits)

    def match_profile(self, profile: Profile, *, limits: Limits | None = None) -> MatchResult:
        """Recommend for a profile as given (e.g. after the user corrected what was extracted)."""
        limits = limits or Limits()
        language = detect_language(profile.free_text) if profile.free_text else "ja"
        profile = self._situate(profile)
        notes: list[str] = []
        # Read again here: a profile may come from a form or a chat model rather than from the vocabulary.
        life_science = bool(
            profile.life_science
            or profile.modalities
            or profile.disease_areas
            or not profile.free_text
            or self.vocabulary.life_science_terms(profile.free_text)
        )
        non_rd_only = asks_only_non_rd(
            non_rd_terms=self.vocabulary.non_rd_use_terms(profile.free_text),
            modalities=[str(m) for m in profile.modalities],
            disease_areas=[str(d) for d in profile.disease_areas],
            stages=[str(st) for st in profile.stages],
            needs=[str(n) for n in profile.needs],
        )
        model = getattr(self.index.embedder, "model", None)
        other_content = bool(self.vocabulary.other_content_words(profile.free_text))
        # The word tests first: they need no embedding, and an unrelated request should not read as "too little".
        if (
            self.floor.verdict(
                life_science=life_science,
                best_similarity=1.0,
                embedding_model=model,
                non_rd_only=non_rd_only,
                other_content=other_content,
            )
            is not None
        ):
            return self._out_of_scope(profile, language)
        if profile.empty:
            notes += [_t("too_little", language), self._supporter_note(language)]
            return MatchResult(
                profile=profile, language=language, recommendations=[], notes=notes, referral=self._referral(language)
            )
        query = self.index.embedder.embed_query(profile.free_text or self._profile_sentence(profile))
        sims = self._similarities("program", query)
        if (
            self.floor.verdict(
                life_science=life_science,
                best_similarity=max(sims.values(), default=0.0),
                embedding_model=model,
                non_rd_only=non_rd_only,
                other_content=other_content,
            )
            is not None
        ):
            return self._out_of_scope(profile, language)
        recommendations: list[Recommendation] = []
        recommendations += self._programs(profile, query, language, limits.of("program"), sims)
        other_vcs: list[str] = []
        recommendations += self._vcs(profile, query, language, limits.of("vc"), notes, other_vcs)
        recommendations += self._cdmos(profile, query, language, limits.of("cdmo"), notes)
        if not recommendations:
            notes.insert(0, _t("nothing", language))
        elif not any(r.kind == "program" for r in recommendations):
            notes.insert(0, _t("no_program", language))
        if not any(r.kind == "program" for r in recommendations):
            notes.append(self._supporter_note(language))
        if other_vcs:
            notes.append(_t("other_vcs", language, names=_sep(language).join(other_vcs)))
        referral = None if any(r.id == MEDISO_ID for r in recommendations) else self._referral(language)
        return MatchResult(
            profile=profile,
            language=language,
            recommendations=recommendations,
            notes=notes,
            referral=referral,
            other_vcs=other_vcs,
        )

    @staticmethod
    def _out_of_scope(profile: Profile, language: Language) -> MatchResult:
        notes = [_t("out_of_scope", language), _t("out_of_scope_supporter", language)]
        return MatchResult(profile=profile, language=language, recommendations=[], notes=notes, out_of_scope=True)

    def _situate(self, profile: Profile) -> Profile:
        """The asker's own situation the knowledge base can name: existing investors among the certified VCs,
        and a university that has one."""
        text = squash(profile.free_text).lower()
        if not text:
            return profile
        investors, universities = list(profile.investors), list(profile.universities)
        vcs = [vc for vc in self._active["vc"] if isinstance(vc, VC)]
        for vc in vcs:
            names = [vc.name, *vc.aliases, *([vc.name_en] if vc.name_en else [])]
            if vc.name not in investors and any(len(squash(n)) >= 3 and squash(n).lower() in text for n in names):
                investors.append(vc.name)
        # Longest form first, each claiming its characters: 東京大学 is not also 京大.
        forms = sorted({u for vc in vcs for u in vc.universities}, key=lambda u: -len(squash(u)))
        for university in forms:
            folded = squash(university).lower()
            if folded in text:
                text = text.replace(folded, "\x00" * len(folded))
                if university not in universities:
                    universities.append(university)
        if investors == profile.investors and universities == profile.universities:
            return profile
        return profile.model_copy(update={"investors": investors, "universities": universities})

    def _referral(self, language: Language) -> Recommendation | None:
        """MEDISO as the human route, with its own passage as the reason."""
        if self._mediso is None:
            return None
        reasons = _Reasons(self._titles)
        reasons.add(
            _t("referral", language, name="MEDISO"),
            [_pick(self._mediso.sources, ["相談", "サポーター", "ワンストップ"], self._mediso.summary_ja)],
        )
        return Recommendation(
            kind="program",
            id=self._mediso.id,
            name=self._mediso.name_ja,
            name_en=self._mediso.name_en,
            score=0.0,
            reasons=reasons.reasons,
            citations=reasons.citations,
            summary=_strip_markers(reasons.reasons[0]),
        )

    def _supporter_note(self, language: Language) -> str:
        if self._mediso is not None:
            name = self._mediso.name_ja if language == "ja" else (self._mediso.name_en or self._mediso.name_ja)
            mediso = f"MEDISO（{name}）" if language == "ja" else name
        else:
            mediso = "MEDISO"
        return _t("supporter", language, mediso=mediso)

    @staticmethod
    def _profile_sentence(profile: Profile) -> str:
        parts = [
            label(name, str(v), "ja")
            for name in ("who", "stages", "modalities", "disease_areas", "needs")
            for v in getattr(profile, name)
        ]
        return " ".join(parts)

    # --- programs ---------------------------------------------------------------------------------

    @staticmethod
    def program_eligible(profile: Profile, program: Program) -> bool:
        """Hard eligibility: only what the decks state excludes (who may apply, stage, modality, disease);
        a limit that rests on a curator's reading ranks the program down instead (see `_score_program`)."""
        if program.status != "active":
            return False
        if program.category is ProgramCategory.POLICY or set(program.support) <= {Support.POLICY}:
            return False  # a council or plan informs; it is not something to apply to
        for name, wanted in _basis_wanted(profile).items():
            offered = {str(v) for v in getattr(program, name)}
            if not wanted or not offered or "any" in offered or wanted & offered:
                continue
            if program.restriction_stated(name):
                return False
        return True

    def _programs(
        self, profile: Profile, query: np.ndarray, language: Language, limit: int, sims: dict[str, float] | None = None
    ) -> list[Recommendation]:
        candidates = [
            p for p in self._active["program"] if isinstance(p, Program) and self.program_eligible(profile, p)
        ]
        if not candidates or limit <= 0:
            return []
        sims = sims if sims is not None else self._similarities("program", query)
        semantic = _standardize({p.id: sims.get(p.id, 0.0) for p in candidates})
        scored = [s for s in (self._score_program(profile, p, semantic[p.id]) for p in candidates) if s.fits]
        # A program that fits only on what a curator read into it, and on nothing the asker needs, is no fit.
        scored = [s for s in scored if s.detail["met"] or not profile.needs]
        scored.sort(key=lambda s: (-s.score, s.record.id))
        # Two records under one name (the same program in two budget lines) are one recommendation.
        unique: dict[str, _Scored] = {}
        for item in scored:
            unique.setdefault(squash(item.record.title), item)
        return [self._explain_program(profile, s, language) for s in list(unique.values())[:limit]]

    def _score_program(self, profile: Profile, program: Program, semantic: float) -> _Scored:
        detail: dict[str, Any] = {"inferred": {}, "mismatch": {}}
        fits = 0
        needs = [n for n in profile.needs if n in program.support]
        # A program that requires investment (e.g. from a certified VC) is used together with it.
        linked = {
            n: r
            for n in profile.needs
            if n not in needs
            for r in program.requirements
            if any(word in r for word in _REQUIREMENT_NEEDS.get(n, ()))
        }
        if profile.investors and any("認定VC" in r for r in program.requirements):
            detail["investor"] = profile.investors[0]
        detail["needs"], detail["linked"] = needs, linked
        met = len(needs) + len(linked) + ("investor" in detail)
        detail["met"] = met
        needs_score = (0.6 * bool(met) + 0.4 * min(1.0, met / len(profile.needs))) if profile.needs else 0.5
        if "investor" in detail:
            needs_score = max(needs_score, 0.9)
        fits += bool(met)
        penalty = 1.0

        def basis_fit(name: str, wanted: Sequence[str], offered: Sequence[str]) -> tuple[str, list[str]]:
            """How a stated profile field meets a program field: stated / inferred match, any, or a mismatch."""
            common = [w for w in wanted if w in offered]
            if common:
                stated = [w for w in common if w in program.stated(name)]
                return ("stated", stated) if stated else ("inferred", common)
            if "any" in offered:
                return "any", []
            return "mismatch", [str(v) for v in offered]

        def field_score(wanted: Sequence[str], offered: Sequence[str], name: str) -> float:
            nonlocal fits, penalty
            if not wanted:
                # Unstated by the profile: an open program may fit, a restricted one is a guess.
                if "any" in offered:
                    return 0.5
                detail[f"{name}_restricted"] = list(offered)
                return 0.0
            status, values = basis_fit(name, wanted, offered)
            if status in ("stated", "inferred"):
                detail[name] = values
                fits += 1
                if status == "inferred":
                    detail["inferred"][name] = values
                return 1.0 if status == "stated" else 0.75
            if status == "any":
                detail[name], detail[f"{name}_any"] = [], True
                fits += 1
                return 0.35
            detail[name] = []
            detail["mismatch"][name] = values  # only reachable when the limit is inferred
            penalty *= 0.6
            return 0.0

        modality_score = field_score(
            [str(m) for m in profile.modalities], [str(m) for m in program.modalities], "modalities"
        )
        disease_score = field_score(
            [str(d) for d in profile.disease_areas], [str(d) for d in program.disease_areas], "disease_areas"
        )
        stage_score = 0.5
        detail["stages"] = []
        if profile.stages and program.stages:
            status, values = basis_fit("stages", [str(s) for s in profile.stages], [str(s) for s in program.stages])
            if status in ("stated", "inferred"):
                detail["stages"] = values
                fits += 1
                stage_score = 0.5 + 0.5 * len(values) / len(profile.stages) * (1.0 if status == "stated" else 0.7)
                if status == "inferred":
                    detail["inferred"]["stages"] = values
            elif status == "mismatch":
                detail["mismatch"]["stages"] = values
                penalty *= 0.6
                stage_score = 0.0
        who_score = 0.5
        detail["who"] = []
        if profile.who:
            status, values = basis_fit("eligible", [str(w) for w in profile.who], [str(e) for e in program.eligible])
            if status in ("stated", "inferred"):
                detail["who"] = values
                who_score = 1.0 if status == "stated" else 0.8
                if status == "inferred":
                    detail["inferred"]["eligible"] = values
            elif status == "any":
                who_score = 0.6
            else:
                detail["mismatch"]["eligible"] = values
                penalty *= 0.5
                who_score = 0.0
        # A company from abroad coming to Japan: programs whose requirements or passages open them to it.
        if profile.based_in and set(profile.based_in) - {Destination.JAPAN}:
            passage = next((r for r in program.requirements if any(w in r for w in _INBOUND_WORDS)), None)
            if passage is not None:
                detail["inbound"] = passage
                needs_score = max(needs_score, 0.8)
                fits += 1
                detail["met"] = detail["met"] or 1
        abroad = [d for d in profile.destinations if d is not Destination.JAPAN]
        detail["overseas"] = abroad if abroad and Support.OVERSEAS in program.support else []
        if abroad:
            destination_score = 1.0 if detail["overseas"] else 0.3
            fits += bool(detail["overseas"])
        else:
            destination_score = 0.5
        score = (
            0.34 * needs_score
            + 0.13 * modality_score
            + 0.13 * disease_score
            + 0.07 * stage_score
            + 0.05 * who_score
            + 0.06 * destination_score
            + 0.22 * semantic
        )
        # A program limited to a modality or disease the user did not mention is a guess at best.
        score *= 0.85 ** (("modalities_restricted" in detail) + ("disease_areas_restricted" in detail))
        score *= penalty
        # The fit in words: how many of the criteria the asker stated this program meets.
        criteria = [
            bool(profile.needs),
            bool(profile.modalities),
            bool(profile.disease_areas),
            bool(profile.stages),
            bool(profile.who),
            bool(abroad),
        ]
        met_criteria = [
            bool(met),
            bool(detail.get("modalities") or detail.get("modalities_any")),
            bool(detail.get("disease_areas") or detail.get("disease_areas_any")),
            bool(detail["stages"]),
            bool(detail["who"]) or (bool(profile.who) and Applicant.ANY in program.eligible),
            bool(detail["overseas"]),
        ]
        detail["criteria_total"] = sum(criteria)
        detail["criteria_met"] = sum(1 for c, m in zip(criteria, met_criteria, strict=True) if c and m)
        return _Scored(record=program, score=score, fits=fits, detail=detail)

    def _terms(self, field_name: str, value: str) -> list[str]:
        # The record's passages are Japanese: the vocabulary's words plus the parts of the display name.
        words = label(field_name, value, "ja").replace("、", "・").split("・")
        return [*self.vocabulary.terms_for(field_name, value), *words]

    def _explain_program(self, profile: Profile, scored: _Scored, language: Language) -> Recommendation:
        program = scored.record
        assert isinstance(program, Program)
        detail = scored.detail
        reasons = _Reasons(self._titles)
        sources, summary = program.sources, program.summary_ja
        sep = _sep(language)
        profile_field = {
            "eligible": "who",
            "stages": "stages",
            "modalities": "modalities",
            "disease_areas": "disease_areas",
        }

        def cite(field_name: str, values: Iterable[str]) -> list[Source]:
            basis_name = {"who": "eligible"}.get(field_name, field_name)
            picked = []
            for v in values:
                stated = program.stated_source(basis_name, str(v)) if basis_name in BASIS_FIELDS else None
                picked.append(stated or _pick(sources, self._terms(field_name, str(v)), summary))
            return _distinct(picked) or [_pick(sources, [], summary)]

        def names(field_name: str, values: Iterable[str]) -> str:
            return sep.join(label(field_name, str(v), language) for v in values)

        inferred: dict[str, list[str]] = detail["inferred"]
        fit_words: list[str] = []
        # Eligibility.
        if Applicant.ANY in program.eligible:
            reasons.add(_t("eligible_any", language), [_pick(sources, ["対象", "限定"], summary)])
        elif profile.who and detail["who"]:
            key = "eligible_inferred" if "eligible" in inferred else "eligible"
            reasons.add(_t(key, language, values=names("who", detail["who"])), cite("who", detail["who"]))
        elif not profile.who:
            reasons.add(
                _t("eligible_unknown", language, values=names("who", program.eligible)), cite("who", program.eligible)
            )
        # Fit, field by field.
        if detail.get("needs"):
            reasons.add(_t("needs", language, values=names("needs", detail["needs"])), cite("needs", detail["needs"]))
            fit_words += [label("needs", n, language) for n in detail["needs"]]
        if detail.get("investor"):
            requirement = next(r for r in program.requirements if "認定VC" in r)
            reasons.add(_t("investor_unlocks", language, vc=detail["investor"]), [_pick(sources, [], requirement)])
        for need, requirement in detail["linked"].items():
            if detail.get("investor"):
                break  # the existing investor already meets it
            text = self._requirement_text(program, requirement, language)
            reasons.add(
                _t("linked_need", language, need=label("needs", need, language), text=text),
                [_pick(sources, [], requirement)],
            )
            fit_words.append(label("needs", need, language))
        for name, key in (("modalities", "modality"), ("disease_areas", "disease")):
            if detail.get(name):
                template = f"{key}_inferred" if name in inferred else key
                reasons.add(_t(template, language, values=names(name, detail[name])), cite(name, detail[name]))
                fit_words += [label(name, v, language) for v in detail[name]]
            elif detail.get(f"{name}_any"):
                wanted = getattr(profile, name)
                reasons.add(_t(f"{key}_any", language, values=names(name, wanted)), [_pick(sources, [], summary)])
        if detail.get("stages"):
            template = "stage_inferred" if "stages" in inferred else "stage"
            reasons.add(
                _t(template, language, values=names("stages", detail["stages"])), cite("stages", detail["stages"])
            )
            fit_words += [label("stages", v, language) for v in detail["stages"]]
        if detail.get("overseas"):
            reasons.add(
                _t("overseas", language, values=names("destinations", detail["overseas"])),
                cite("needs", [Support.OVERSEAS]),
            )
        if detail.get("inbound"):
            reasons.add(
                _t("inbound", language, text=self._requirement_text(program, detail["inbound"], language)),
                [_pick(sources, [], detail["inbound"])],
            )
        # Caveats a supporter would mention: first where the asker seems not to be covered (a reading only).
        for basis_name, values in detail["mismatch"].items():
            field_name = profile_field[basis_name]
            yours = _t("yours", language, values=names(field_name, getattr(profile, field_name)))
            reasons.add(
                _t(
                    "mismatch_inferred",
                    language,
                    what=_t(f"what_{basis_name}", language),
                    values=names(field_name, values),
                    yours=yours,
                ),
                cite(field_name, values),
            )
        for name, key in (("modalities", "modality"), ("disease_areas", "disease")):
            if detail.get(f"{name}_restricted"):
                values = detail[f"{name}_restricted"]
                reasons.add(_t(f"{key}_restricted", language, values=names(name, values)), cite(name, values))
        for requirement in program.requirements:
            if requirement in detail["linked"].values() or requirement == detail.get("inbound"):
                continue  # already given as the reason it fits
            text = self._requirement_text(program, requirement, language)
            key = "requirement" if language == "ja" or text != requirement else "requirement_ja_only"
            reasons.add(_t(key, language, text=text), [_pick(sources, [], requirement)])
        if program.subsidy_rate:
            rate = program.subsidy_rate_en if language == "en" and program.subsidy_rate_en else program.subsidy_rate
            reasons.add(
                _t("subsidy", language, text=rate),
                [_pick(sources, ["補助率", program.subsidy_rate, "補助"], program.subsidy_rate)],
            )
        closes = [r.closes for r in program.rounds]
        if closes and all(c is not None and c < self.today for c in closes):
            last = max(program.rounds, key=lambda r: r.closes or dt.date.min)
            first_name, last_name = program.rounds[0].name, last.name
            if language == "en":
                first_name, last_name = _round_en(first_name), _round_en(last_name)
            round_names = f"{first_name}〜{last_name}" if len(program.rounds) > 1 else last_name
            if language == "en" and len(program.rounds) > 1:
                round_names = f"{first_name} to {last_name}"
            reasons.add(
                _t("closed", language, names=round_names, date=last.closes.isoformat() if last.closes else ""),
                [_pick(sources, [last.text, last.name], last.text)],
            )
        if program.budgets and all(b.kind is BudgetKind.REQUEST for b in program.budgets):
            text = "; ".join(b.text for b in program.budgets)
            reasons.add(
                _t("request_budget", language, text=text), [_pick(sources, [b.text for b in program.budgets], text)]
            )
        summary_line = (
            _t("summary_fits", language, values=sep.join(dict.fromkeys(fit_words)))
            if fit_words
            else _strip_markers(reasons.reasons[0])
        )
        if inferred:
            summary_line += _t("summary_inferred", language)
        total, met = detail["criteria_total"], detail["criteria_met"]
        return Recommendation(
            kind="program",
            id=program.id,
            name=program.name_ja,
            name_en=program.name_en,
            score=round(scored.score, 4),
            reasons=reasons.reasons,
            citations=reasons.citations,
            summary=summary_line,
            criteria_met=met,
            criteria_total=total,
            fit=_t("fit", language, met=met, total=total) if total else _t("fit_none", language),
            inferred=bool(inferred or detail["mismatch"]),
        )

    @staticmethod
    def _requirement_text(program: Program, requirement: str, language: Language) -> str:
        """A requirement in the asker's language: the record's English line where there is one."""
        if language == "en" and program.requirements_en:
            return program.requirements_en[program.requirements.index(requirement)]
        return requirement

    # --- VCs --------------------------------------------------------------------------------------

    def _vcs(
        self,
        profile: Profile,
        query: np.ndarray,
        language: Language,
        limit: int,
        notes: list[str],
        other_vcs: list[str] | None = None,
    ) -> list[Recommendation]:
        """Certified VCs ranked by the evidence a supporter would use: an investor the asker already has,
        the asker's university's VC, backed startups that develop the same modality or disease, and (for a
        drug-discovery startup raising money) a track record of backing adopted startups. A VC with none of
        these is not recommended; when investment is asked for, it is named among the other certified VCs."""
        vcs = [v for v in self._active["vc"] if isinstance(v, VC)]
        if not vcs or limit <= 0:
            return []
        needs_investment = Support.INVESTMENT in profile.needs
        if profile.who and not set(profile.who) & _VC_ASKERS and not profile.investors:
            if needs_investment:
                notes.append(_t("no_vc", language))
            return []
        if (
            profile.who
            and Applicant.STARTUP not in profile.who
            and not profile.pre_founding
            and not needs_investment
            and not profile.investors
        ):
            return []  # a research group that is not founding a company is not looking for investors
        # The certified VCs back drug-discovery startups; a device or diagnostics team gets them only on evidence.
        drug_discovery = not profile.modalities or bool(set(profile.modalities) - _NON_DRUG_MODALITIES)
        portfolio_norm = _standardize(self._portfolio_similarities(query))
        scored: list[_Scored] = []
        others: list[str] = []
        for vc in vcs:
            # An adoption marked ※補助事業廃止 is not a track record to recommend on.
            startups = list(dict.fromkeys(inv.startup for inv in vc.investments if not inv.subsidy_ended))
            evidence: list[tuple[Investment, list[str], list[str], float]] = []
            seen: set[str] = set()
            for inv in vc.investments:
                if inv.startup in seen or inv.subsidy_ended:
                    continue  # the same adoption listed in two decks, or one whose subsidy was discontinued
                seen.add(inv.startup)
                modalities = [m.value for m in inv.modalities if m in profile.modalities]
                diseases = [d.value for d in inv.disease_areas if d in profile.disease_areas]
                if modalities or diseases:
                    evidence.append((inv, modalities, diseases, portfolio_norm.get((vc.id, inv.startup), 0.0)))
            existing = vc.name in profile.investors
            university = next((u for u in profile.universities if u in vc.universities), None)
            track = needs_investment and drug_discovery and bool(startups)
            if not (existing or university or evidence or track):
                if needs_investment:
                    others.append(vc.name)
                continue
            best_similarity = max((portfolio_norm.get((vc.id, s), 0.0) for s in startups), default=0.0)
            score = (
                3.0 * existing
                + 1.5 * bool(university)
                + 0.45 * any(e[1] for e in evidence)
                + 0.25 * any(e[2] for e in evidence)
                + 0.15 * best_similarity
                + 0.15 * min(1.0, len(startups) / 3)
            )
            evidence.sort(key=lambda e: (-(len(e[1]) + len(e[2])), -e[3]))
            scored.append(
                _Scored(
                    record=vc,
                    score=score,
                    fits=len(evidence),
                    detail={"evidence": evidence, "startups": startups, "existing": existing, "university": university},
                )
            )
        scored.sort(key=lambda s: (-s.score, s.record.id))
        if other_vcs is not None:
            other_vcs += others + [s.record.name for s in scored[limit:] if isinstance(s.record, VC)]
        return [self._explain_vc(profile, s, language, needs_investment) for s in scored[:limit]]

    def _explain_vc(
        self, profile: Profile, scored: _Scored, language: Language, needs_investment: bool
    ) -> Recommendation:
        vc = scored.record
        assert isinstance(vc, VC)
        reasons = _Reasons(self._titles)
        sep = _sep(language)
        detail = scored.detail
        certification = vc.certified_in[0]
        certified_sources = [_pick(vc.sources, [certification.list_title]), _pick(vc.sources, [vc.name, *vc.aliases])]
        certified_sources = [
            s for s in _distinct(certified_sources) if s.document == certification.document
        ] or certified_sources
        criteria = [
            "existing" if profile.investors else "",
            "university" if profile.universities else "",
            "portfolio" if (profile.modalities or profile.disease_areas) else "",
            "investment" if needs_investment else "",
        ]
        met = 0
        if detail["existing"]:
            reasons.add(_t("vc_existing", language), certified_sources)
            met += 1
        if detail["university"]:
            reasons.add(_t("vc_university", language, university=detail["university"]), certified_sources)
            met += 1
        # Fit: only what the backed startups develop, as the seeds say.
        for inv, modalities, diseases, _ in detail["evidence"][:3]:
            matched = [label("modalities", m, language) for m in modalities]
            matched += [label("disease_areas", d, language) for d in diseases]
            parts = []
            if inv.develops:
                parts.append(_t("vc_develops", language, text=inv.develops))
            parts.append(_t("vc_matched", language, values=sep.join(matched)))
            round_text = _t("vc_round", language, n=inv.round) if inv.round else ""
            reasons.add(
                _t(
                    "vc_investment",
                    language,
                    startup=inv.startup,
                    round=round_text,
                    detail=("。" if language == "ja" else "; ").join(parts),
                ),
                _distinct(
                    [
                        _pick(inv.sources, [inv.startup]),
                        *([_pick(inv.sources, [], inv.develops)] if inv.develops else []),
                    ]
                ),
            )
        met += bool(detail["evidence"])
        reasons.add(
            _t("vc_certified", language, title=_list_title(certification.list_title, language)), certified_sources
        )
        if (needs_investment or detail["existing"]) and self._vc_program is not None:
            program = (
                self._vc_program.name_ja if language == "ja" else (self._vc_program.name_en or self._vc_program.name_ja)
            )
            reasons.add(_t("vc_requirement", language, program=program), certified_sources)
            met += needs_investment
        startups: list[str] = detail["startups"]
        ended = list(dict.fromkeys(inv.startup for inv in vc.investments if inv.subsidy_ended))
        if ended:
            reasons.add(
                _t("vc_ended", language, names=sep.join(ended)),
                [
                    next(
                        s
                        for inv in vc.investments
                        if inv.subsidy_ended
                        for s in inv.sources
                        if "補助事業廃止" in squash(s.quote)
                    )
                ],
            )
        if startups:
            firsts = [next(inv for inv in vc.investments if inv.startup == s) for s in startups[:3]]
            reasons.add(
                _t("vc_track", language, n=len(startups), names=sep.join(startups)),
                [_pick(inv.sources, [inv.startup], inv.startup) for inv in firsts],
            )
        else:
            reasons.add(_t("vc_no_investments", language), certified_sources)
        if not detail["evidence"] and (profile.modalities or profile.disease_areas):
            reasons.add(_t("vc_no_fit", language), certified_sources)
        total = sum(1 for c in criteria if c)
        # The card's one line: the strongest evidence there is (existing investor, university, portfolio, record).
        first = _strip_markers(reasons.reasons[0])
        if not (detail["existing"] or detail["university"] or detail["evidence"]) and startups:
            first = _t("vc_track", language, n=len(startups), names=sep.join(startups))
        return Recommendation(
            kind="vc",
            id=vc.id,
            name=vc.name,
            name_en=vc.name_en,
            score=round(scored.score, 4),
            reasons=reasons.reasons,
            citations=reasons.citations,
            summary=first,
            criteria_met=min(met, total),
            criteria_total=total,
            fit=_t("fit", language, met=min(met, total), total=total) if total else _t("fit_none", language),
        )

    # --- CDMOs ------------------------------------------------------------------------------------

    def _cdmos(
        self, profile: Profile, query: np.ndarray, language: Language, limit: int, notes: list[str]
    ) -> list[Recommendation]:
        cdmos = [c for c in self._active["cdmo"] if isinstance(c, CDMO)]
        if not cdmos or limit <= 0:
            return []
        if Applicant.CDMO in profile.who:
            return []  # a CDMO, or a company becoming one, is not looking for a competitor
        wants_manufacturing = Support.MANUFACTURING in profile.needs or Stage.MANUFACTURING in profile.stages
        developing = (bool(set(profile.who) & {Applicant.STARTUP, Applicant.PHARMA}) or profile.pre_founding) and bool(
            set(profile.stages) & {Stage.NON_CLINICAL, Stage.PHASE1, Stage.PHASE2, Stage.PHASE3}
        )
        candidates: list[tuple[CDMO, list[str]]] = []
        for cdmo in cdmos:
            modalities = [
                m.value
                for m in profile.modalities
                if m in cdmo.modalities
                or Modality.ANY in cdmo.modalities
                or _MAKES_AS.get(m, set()) & set(cdmo.modalities)
            ]
            if profile.modalities and not modalities:
                continue  # cannot make what this team develops
            # A modality alone is no reason for a CDMO: a lab studying disease with iPS cells makes no product.
            if wants_manufacturing or (modalities and developing):
                candidates.append((cdmo, modalities))
        if not candidates:
            if wants_manufacturing and profile.modalities:
                available = sorted({m.value for c in cdmos for m in c.modalities})
                notes.append(
                    _t(
                        "no_cdmo",
                        language,
                        available=_sep(language).join(label("modalities", m, language) for m in available),
                        wanted=_sep(language).join(label("modalities", m, language) for m in profile.modalities),
                    )
                )
            return []
        sims = self._similarities("cdmo", query)
        semantic = _standardize({c.id: sims.get(c.id, 0.0) for c, _ in candidates})
        scored = []
        for cdmo, modalities in candidates:
            countries = {f.country for f in cdmo.facilities}
            served: list[Destination] = []
            for destination in profile.destinations:
                if destination is Destination.GLOBAL:
                    if countries - {"JP"}:
                        served.append(destination)
                elif countries & _DESTINATION_COUNTRIES[destination]:
                    served.append(destination)
            region = len(served) / len(profile.destinations) if profile.destinations else 0.5
            score = (
                0.45 * (1.0 if modalities else 0.5)
                + 0.25 * region
                + 0.1 * wants_manufacturing
                + 0.2 * semantic[cdmo.id]
            )
            scored.append(
                _Scored(
                    record=cdmo,
                    score=score,
                    fits=len(modalities) + len(served),
                    detail={"modalities": modalities, "served": served, "manufacturing": wants_manufacturing},
                )
            )
        scored.sort(key=lambda s: (-s.score, s.record.id))
        return [self._explain_cdmo(profile, s, language) for s in scored[:limit]]

    def _explain_cdmo(self, profile: Profile, scored: _Scored, language: Language) -> Recommendation:
        cdmo = scored.record
        assert isinstance(cdmo, CDMO)
        reasons = _Reasons(self._titles)
        sep = _sep(language)
        names = [cdmo.name, *cdmo.aliases, *([cdmo.name_ja] if cdmo.name_ja else [])]
        detail = scored.detail
        if detail["modalities"]:
            values = sep.join(label("modalities", m, language) for m in detail["modalities"])
            terms = [t for m in detail["modalities"] for t in self._terms("modalities", m)]
            reasons.add(_t("cdmo_modality", language, values=values), [_pick(cdmo.sources, terms)])
        else:
            values = sep.join(label("modalities", m.value, language) for m in cdmo.modalities)
            terms = [t for m in cdmo.modalities for t in self._terms("modalities", m.value)]
            reasons.add(_t("cdmo_modality_unknown", language, values=values), [_pick(cdmo.sources, terms)])

        def site_sources(facilities: Iterable[Any]) -> list[Source]:
            picked = []
            for facility in facilities:
                # Prefer the table row that names both the company and the region.
                rows = [s for s in cdmo.sources if facility.region_ja in s.quote]
                named = [s for s in rows if any(n and n in s.quote for n in names)]
                picked.append((named or rows or [cdmo.sources[0]])[0])
            return _distinct(picked)

        if detail["served"]:
            wanted = set()
            for destination in detail["served"]:
                wanted |= _DESTINATION_COUNTRIES.get(destination, {f.country for f in cdmo.facilities} - {"JP"})
            facilities = [f for f in cdmo.facilities if f.country in wanted]
            regions = sep.join(_facility(f, language) for f in facilities)
            reasons.add(_t("cdmo_region", language, values=regions), site_sources(facilities))
        elif cdmo.facilities:
            regions = sep.join(_facility(f, language) for f in cdmo.facilities)
            reasons.add(_t("cdmo_sites", language, values=regions), site_sources(cdmo.facilities))
        if detail["manufacturing"]:
            reasons.add(_t("cdmo_manufacturing", language), [_pick(cdmo.sources, ["CDMO", "受託", "製造"])])
        reasons.add(_t("cdmo_caveat", language), [_pick(cdmo.sources, ["施設", "CDMO"])])
        criteria = [
            (bool(profile.modalities), bool(detail["modalities"])),
            (bool(profile.destinations), bool(detail["served"])),
            (bool(detail["manufacturing"]), bool(detail["manufacturing"])),
        ]
        total = sum(1 for asked, _ in criteria if asked)
        met = sum(1 for asked, ok in criteria if asked and ok)
        return Recommendation(
            kind="cdmo",
            id=cdmo.id,
            name=cdmo.name,
            score=round(scored.score, 4),
            reasons=reasons.reasons,
            citations=reasons.citations,
            summary=_strip_markers(reasons.reasons[0]),
            criteria_met=met,
            criteria_total=total,
            fit=_t("fit", language, met=met, total=total) if total else _t("fit_none", language),
        )
