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
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel

from knowledge.loader import KnowledgeBase, squash
from knowledge.schema import (
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
from retrieval.chunking import record_chunk
from retrieval.index import SearchIndex
from retrieval.language import Language, detect_language
from retrieval.profile import Destination, Profile, ProfileVocabulary, extract_profile, label

log = logging.getLogger(__name__)

KINDS = ("program", "vc", "cdmo")
# Destinations as facility countries; "global" is served by any facility outside Japan.
_DESTINATION_COUNTRIES = {Destination.JAPAN: {"JP"}, Destination.US: {"US"}}
# Who a VC invests in: startups, and academic teams on their way to founding one.
_VC_ASKERS = {Applicant.STARTUP, Applicant.ACADEMIA}
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
class Citation:
    source: str  # document file and title
    text: str  # the passage as quoted in the record


@dataclass
class Recommendation:
    kind: str
    id: str
    name: str
    score: float
    reasons: list[str]
    citations: list[Citation]
    name_en: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "score": self.score,
            "reasons": list(self.reasons),
            "citations": [{"source": c.source, "text": c.text} for c in self.citations],
        }


@dataclass
class MatchResult:
    profile: Profile
    language: Language
    recommendations: list[Recommendation]
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Recommendation]:
        return [r for r in self.recommendations if r.kind == kind]

    @property
    def nothing_fits(self) -> bool:
        return not self.recommendations

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.model_dump(mode="json"),
            "recommendations": [r.to_json() for r in self.recommendations],
        }


# --- wording ------------------------------------------------------------------------------------

_T: dict[str, dict[Language, str]] = {
    "eligible": {"ja": "対象者: {values}が応募・利用できる", "en": "Eligible: open to {values}"},
    "eligible_any": {"ja": "対象者の限定なし", "en": "Eligible: open to anyone"},
    "eligible_unknown": {"ja": "対象者: {values}（ご自身の立場が読み取れなかったため要確認）",
                         "en": "Eligible: {values} (your own role was not stated; please check)"},
    "needs": {"ja": "ニーズに合う支援: {values}", "en": "Meets your needs: {values}"},
    "modality": {"ja": "モダリティが一致: {values}", "en": "Modality matches: {values}"},
    "modality_any": {"ja": "モダリティの限定なし（{values}も対象）", "en": "Open to any modality (incl. {values})"},
    "disease": {"ja": "疾患領域が一致: {values}", "en": "Disease area matches: {values}"},
    "disease_any": {"ja": "疾患領域の限定なし（{values}も対象）", "en": "Open to any disease area (incl. {values})"},
    "linked_need": {"ja": "{need}と併せて使う事業: {text}", "en": "Used together with {need}: {text}"},
    "modality_restricted": {"ja": "注意: 対象モダリティは{values}に限られる（プロフィールに記載なし、要確認）",
                            "en": "Caveat: limited to {values} (your modality was not stated; please check)"},
    "disease_restricted": {"ja": "注意: 対象疾患は{values}に限られる（プロフィールに記載なし、要確認）",
                           "en": "Caveat: limited to {values} (your disease area was not stated; please check)"},
    "stage": {"ja": "開発段階が一致: {values}", "en": "Development stage matches: {values}"},
    "overseas": {"ja": "{values}を目指す: 海外展開を支援", "en": "You aim for {values}: supports overseas expansion"},
    "requirement": {"ja": "注意（要件）: {text}", "en": "Caveat (requirement, as the source states): {text}"},
    "subsidy": {"ja": "注意（補助率）: {text}", "en": "Caveat (subsidy rate, as the source states): {text}"},
    "closed": {"ja": "注意: 資料に載っている公募回（{names}）はすべて締切済み（最終締切 {date}）。最新の公募は要確認",
               "en": "Caveat: the application rounds listed in the seeds ({names}) have closed (last deadline "
                     "{date}); check for a current call"},
    "request_budget": {"ja": "注意: 資料上の予算は概算要求の段階（{text}）",
                       "en": "Caveat: the budget in the sources is a budget request, not yet enacted ({text})"},
    "vc_investment": {"ja": "出資実績: {startup}{round} — {detail}", "en": "Backed {startup}{round} — {detail}"},
    "vc_round": {"ja": "（創薬ベンチャーエコシステム強化事業 第{n}回採択）", "en": " (adopted in round {n})"},
    "vc_develops": {"ja": "開発: {text}", "en": "develops (as the source says): {text}"},
    "vc_matched": {"ja": "一致: {values}", "en": "matches your {values}"},
    "vc_certified": {"ja": "AMED認定VC（{title}に掲載）", "en": "AMED-certified VC (listed in {title})"},
    "vc_requirement": {"ja": "この認定VCからの出資は{program}の出資要件（認定VCからの出資）を満たす",
                       "en": "Investment from this certified VC meets the investment requirement of {program}"},
    "vc_track": {"ja": "採択ベンチャーへの出資実績: {n}社（{names}）",
                 "en": "Backed {n} adopted startup(s): {names}"},
    "vc_no_fit": {"ja": "注意: 資料には、出資先の開発内容がこのプロフィールに合うことを示す記載はない",
                  "en": "Caveat: the sources say nothing that ties this VC's portfolio to your profile"},
    "vc_no_investments": {"ja": "注意: 資料に採択ベンチャーへの出資の記載はない",
                          "en": "Caveat: the sources list no adopted startup backed by this VC"},
    "cdmo_modality": {"ja": "対応モダリティが一致: {values}", "en": "Handles your modality: {values}"},
    "cdmo_modality_unknown": {"ja": "対応モダリティ: {values}（ご自身のモダリティが読み取れなかったため要確認）",
                              "en": "Modalities handled: {values} (your modality was not stated; please check)"},
    "cdmo_region": {"ja": "施設が目指す地域にある: {values}", "en": "Has facilities where you aim to go: {values}"},
    "cdmo_sites": {"ja": "施設地域: {values}", "en": "Facilities: {values}"},
    "cdmo_manufacturing": {"ja": "製造・プロセス開発の委託先（CDMO）候補",
                           "en": "A contract development and manufacturing partner (CDMO)"},
    "cdmo_caveat": {"ja": "注意: 資料の記載は施設の地域と面積まで。受託の可否・条件は直接確認が必要",
                    "en": "Caveat: the sources give facility regions and sizes only; capacity and terms need checking"},
    "nothing": {"ja": "資料の中に、このプロフィールに合う支援策・VC・CDMOは見つかりませんでした。",
                "en": "I found no program, VC or CDMO in the sources that fits this profile."},
    "no_program": {"ja": "資料の中に、このプロフィールに合う支援策は見つかりませんでした。",
                   "en": "I found no support program in the sources that fits this profile."},
    "too_little": {"ja": "プロフィールから開発段階・モダリティ・疾患領域・ニーズを読み取れませんでした。"
                         "これらを書き添えていただくと、合う支援策を探せます。",
                   "en": "I could not read a stage, modality, disease area or need from the description; "
                         "adding them lets me look for fitting support."},
    "supporter": {"ja": "{mediso}のような相談窓口のサポーター（人）に相談することをおすすめします。",
                  "en": "Please consider consulting a human supporter, e.g. at {mediso}."},
    "no_cdmo": {"ja": "資料に載っているCDMOの対応モダリティは{available}のみで、{wanted}に対応する記載はありません。",
                "en": "The CDMOs in the sources handle {available} only; none is listed for {wanted}."},
    "no_vc": {"ja": "認定VCは創薬スタートアップ（と起業を目指すアカデミア）への出資者のため、この立場には挙げていません。",
              "en": "Certified VCs invest in drug-discovery startups (and academic teams about to found one), "
                    "so none is listed for your role."},
}


def _t(key: str, language: Language, **values: Any) -> str:
    return _T[key][language].format(**values)


def _sep(language: Language) -> str:
    return "、" if language == "ja" else ", "


# --- evidence -----------------------------------------------------------------------------------

def _bigrams(text: str) -> set[str]:
    s = squash(text)
    return {s[i : i + 2] for i in range(len(s) - 1)}


class _Reasons:
    """Reasons for one recommendation, each ending in the numbers of the passages that support it."""

    def __init__(self, titles: dict[str, str]) -> None:
        self._titles = titles
        self.reasons: list[str] = []
        self.citations: list[Citation] = []

    def add(self, text: str, sources: Sequence[Source]) -> None:
        if not sources:
            raise ValueError(f"a reason needs a citation: {text!r}")  # a bug in this module, never user input
        numbers: list[int] = []
        for source in sources:
            title = self._titles.get(source.document)
            citation = Citation(source=f"{source.document}（{title}）" if title else source.document, text=source.quote)
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
    target = _bigrams(fallback)
    return max(sources, key=lambda s: len(_bigrams(s.quote) & target) / (len(_bigrams(s.quote)) or 1) ** 0.5)


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
    ) -> None:
        self.kb = kb
        self.index = index
        self.chat_model = chat_model
        self.vocabulary = vocabulary or ProfileVocabulary.default()
        self._today = today
        self._active: dict[str, list[Record]] = {
            "program": [p for p in kb.programs if p.status == "active"],
            "vc": [v for v in kb.vcs if v.status == "active"],
            "cdmo": [c for c in kb.cdmos if c.status == "active"],
        }
        chunks = {r.id: record_chunk(r) for records in self._active.values() for r in records}
        self._chunk_ids = {record_id: chunk.id for record_id, chunk in chunks.items()}
        self._chunk_texts = {record_id: chunk.search_text for record_id, chunk in chunks.items()}
        self._titles = {d.meta.file: d.meta.title for d in kb.documents}
        # Vectors this Matcher embedded itself (records newer than the index, VC portfolio texts), by content hash.
        self._vectors: dict[str, np.ndarray] = {} if vector_cache is None else vector_cache
        self._lock = threading.Lock()
        self._warned_stale: set[str] = set()
        self._vc_program = next(
            (p for p in self._active["program"] if any("認定VC" in r for r in p.requirements)), None
        )
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
            stale = {record_id: chunk_id for record_id, chunk_id in wanted.items()
                     if chunk_id in missing and chunk_id not in stored}
            if stale:
                if kind not in self._warned_stale:
                    self._warned_stale.add(kind)
                    log.warning("%d %s record(s) changed since the last ingest are embedded here (run "
                                "`kakehashi ingest`): %s", len(stale), kind, ", ".join(sorted(stale)[:10]))
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
        notes: list[str] = []
        if profile.empty:
            notes += [_t("too_little", language), self._supporter_note(language)]
            return MatchResult(profile=profile, language=language, recommendations=[], notes=notes)
        query = self.index.embedder.embed_query(profile.free_text or self._profile_sentence(profile))
        recommendations: list[Recommendation] = []
        recommendations += self._programs(profile, query, language, limits.of("program"))
        recommendations += self._vcs(profile, query, language, limits.of("vc"), notes)
        recommendations += self._cdmos(profile, query, language, limits.of("cdmo"), notes)
        if not recommendations:
            notes.insert(0, _t("nothing", language))
        elif not any(r.kind == "program" for r in recommendations):
            notes.insert(0, _t("no_program", language))
        if not any(r.kind == "program" for r in recommendations):
            notes.append(self._supporter_note(language))
        return MatchResult(profile=profile, language=language, recommendations=recommendations, notes=notes)

    def _supporter_note(self, language: Language) -> str:
        if self._mediso is not None:
            name = self._mediso.name_ja if language == "ja" else (self._mediso.name_en or self._mediso.name_ja)
            mediso = f"MEDISO（{name}）" if language == "ja" else name
        else:
            mediso = "MEDISO"
        return _t("supporter", language, mediso=mediso)

    @staticmethod
    def _profile_sentence(profile: Profile) -> str:
        parts = [label(name, str(v), "ja") for name in ("who", "stages", "modalities", "disease_areas", "needs")
                 for v in getattr(profile, name)]
        return " ".join(parts)

    # --- programs ---------------------------------------------------------------------------------

    @staticmethod
    def program_eligible(profile: Profile, program: Program) -> bool:
        """Hard eligibility: may this person use this program at their stage, for what they develop?"""
        if program.status != "active":
            return False
        if program.category is ProgramCategory.POLICY or set(program.support) <= {Support.POLICY}:
            return False  # a council or plan informs; it is not something to apply to
        if profile.who and Applicant.ANY not in program.eligible and not set(profile.who) & set(program.eligible):
            return False
        if profile.stages and program.stages and not set(profile.stages) & set(program.stages):
            return False
        if (profile.modalities and Modality.ANY not in program.modalities
                and not set(profile.modalities) & set(program.modalities)):
            return False
        if (profile.disease_areas and "any" not in program.disease_areas
                and not set(profile.disease_areas) & set(program.disease_areas)):
            return False
        return True

    def _programs(self, profile: Profile, query: np.ndarray, language: Language, limit: int) -> list[Recommendation]:
        candidates = [p for p in self._active["program"]
                      if isinstance(p, Program) and self.program_eligible(profile, p)]
        if not candidates or limit <= 0:
            return []
        sims = self._similarities("program", query)
        semantic = _standardize({p.id: sims.get(p.id, 0.0) for p in candidates})
        scored = [s for s in (self._score_program(profile, p, semantic[p.id]) for p in candidates) if s.fits]
        scored.sort(key=lambda s: (-s.score, s.record.id))
        return [self._explain_program(profile, s, language) for s in scored[:limit]]

    @staticmethod
    def _score_program(profile: Profile, program: Program, semantic: float) -> _Scored:
        detail: dict[str, Any] = {}
        fits = 0
        needs = [n for n in profile.needs if n in program.support]
        # A program that requires investment (e.g. from a certified VC) is used together with it.
        linked = {n: r for n in profile.needs if n not in needs for r in program.requirements
                  if any(word in r for word in _REQUIREMENT_NEEDS.get(n, ()))}
        detail["needs"], detail["linked"] = needs, linked
        met = len(needs) + len(linked)
        needs_score = (0.6 * bool(met) + 0.4 * met / len(profile.needs)) if profile.needs else 0.5
        fits += bool(met)

        def field_score(wanted: Sequence[str], offered: Sequence[str], name: str) -> float:
            nonlocal fits
            if not wanted:
                # Unstated by the profile: an open program may fit, a restricted one is a guess.
                if "any" in offered:
                    return 0.5
                detail[f"{name}_restricted"] = list(offered)
                return 0.0
            common = [w for w in wanted if w in offered]
            detail[name] = common
            if common:
                fits += 1
                return 1.0
            detail[f"{name}_any"] = "any" in offered
            fits += "any" in offered
            return 0.35

        modality_score = field_score(profile.modalities, program.modalities, "modalities")
        disease_score = field_score(profile.disease_areas, program.disease_areas, "disease_areas")
        stages = [s for s in profile.stages if s in program.stages]
        detail["stages"] = stages
        fits += bool(stages)
        stage_score = 0.5 + 0.5 * len(stages) / len(profile.stages) if stages else 0.5
        if profile.who:
            who = [w for w in profile.who if w in program.eligible]
            who_score = 1.0 if who and Applicant.ANY not in program.eligible else 0.6
        else:
            who_score = 0.5
        abroad = [d for d in profile.destinations if d is not Destination.JAPAN]
        detail["overseas"] = abroad if abroad and Support.OVERSEAS in program.support else []
        if abroad:
            destination_score = 1.0 if detail["overseas"] else 0.3
            fits += bool(detail["overseas"])
        else:
            destination_score = 0.5
        score = (0.34 * needs_score + 0.13 * modality_score + 0.13 * disease_score + 0.07 * stage_score
                 + 0.05 * who_score + 0.06 * destination_score + 0.22 * semantic)
        # A program limited to a modality or disease the user did not mention is a guess at best.
        score *= 0.85 ** (("modalities_restricted" in detail) + ("disease_areas_restricted" in detail))
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

        def cite(field_name: str, values: Iterable[str]) -> list[Source]:
            picked = [_pick(sources, self._terms(field_name, str(v)), summary) for v in values]
            return _distinct(picked) or [_pick(sources, [], summary)]

        # Eligibility.
        if Applicant.ANY in program.eligible:
            reasons.add(_t("eligible_any", language), [_pick(sources, ["対象", "限定"], summary)])
        elif profile.who:
            who = [w for w in profile.who if w in program.eligible]
            reasons.add(_t("eligible", language, values=sep.join(label("who", w, language) for w in who)),
                        cite("who", who))
        else:
            reasons.add(_t("eligible_unknown", language,
                           values=sep.join(label("who", w, language) for w in program.eligible)),
                        cite("who", program.eligible))
        # Fit, field by field.
        if detail.get("needs"):
            reasons.add(_t("needs", language, values=sep.join(label("needs", n, language) for n in detail["needs"])),
                        cite("needs", detail["needs"]))
        for need, requirement in detail["linked"].items():
            reasons.add(_t("linked_need", language, need=label("needs", need, language), text=requirement),
                        [_pick(sources, [], requirement)])
        for name, key in (("modalities", "modality"), ("disease_areas", "disease")):
            if detail.get(name):
                reasons.add(_t(key, language, values=sep.join(label(name, v, language) for v in detail[name])),
                            cite(name, detail[name]))
            elif detail.get(f"{name}_any"):
                wanted = getattr(profile, name)
                reasons.add(_t(f"{key}_any", language, values=sep.join(label(name, v, language) for v in wanted)),
                            [_pick(sources, [], summary)])
        if detail.get("stages"):
            reasons.add(_t("stage", language, values=sep.join(label("stages", s, language) for s in detail["stages"])),
                        cite("stages", detail["stages"]))
        if detail.get("overseas"):
            reasons.add(_t("overseas", language,
                           values=sep.join(label("destinations", d, language) for d in detail["overseas"])),
                        cite("needs", [Support.OVERSEAS]))
        # Caveats a supporter would mention.
        for name, key in (("modalities", "modality"), ("disease_areas", "disease")):
            if detail.get(f"{name}_restricted"):
                values = detail[f"{name}_restricted"]
                reasons.add(_t(f"{key}_restricted", language,
                               values=sep.join(label(name, v, language) for v in values)), cite(name, values))
        for requirement in program.requirements:
            if requirement in detail["linked"].values():
                continue  # already given as the reason it fits
            reasons.add(_t("requirement", language, text=requirement), [_pick(sources, [], requirement)])
        if program.subsidy_rate:
            reasons.add(_t("subsidy", language, text=program.subsidy_rate),
                        [_pick(sources, ["補助率", program.subsidy_rate, "補助"], program.subsidy_rate)])
        closes = [r.closes for r in program.rounds]
        if closes and all(c is not None and c < self.today for c in closes):
            last = max(program.rounds, key=lambda r: r.closes or dt.date.min)
            names = f"{program.rounds[0].name}〜{last.name}" if len(program.rounds) > 1 else last.name
            reasons.add(_t("closed", language, names=names, date=last.closes.isoformat() if last.closes else ""),
                        [_pick(sources, [last.text, last.name], last.text)])
        if program.budgets and all(b.kind is BudgetKind.REQUEST for b in program.budgets):
            text = "; ".join(b.text for b in program.budgets)
            reasons.add(_t("request_budget", language, text=text),
                        [_pick(sources, [b.text for b in program.budgets], text)])
        return Recommendation(kind="program", id=program.id, name=program.name_ja, name_en=program.name_en,
                              score=round(scored.score, 4), reasons=reasons.reasons, citations=reasons.citations)

    # --- VCs --------------------------------------------------------------------------------------

    def _vcs(self, profile: Profile, query: np.ndarray, language: Language, limit: int,
             notes: list[str]) -> list[Recommendation]:
        vcs = [v for v in self._active["vc"] if isinstance(v, VC)]
        if not vcs or limit <= 0:
            return []
        if profile.who and not set(profile.who) & _VC_ASKERS:
            if Support.INVESTMENT in profile.needs:
                notes.append(_t("no_vc", language))
            return []
        needs_investment = Support.INVESTMENT in profile.needs
        if (profile.who and set(profile.who) <= {Applicant.ACADEMIA} and not profile.pre_founding
                and not needs_investment):
            return []  # a research group that is not founding a company is not looking for investors
        portfolio = self._portfolio_similarities(query)
        portfolio_norm = _standardize(portfolio)
        scored: list[_Scored] = []
        for vc in vcs:
            startups = list(dict.fromkeys(inv.startup for inv in vc.investments))
            evidence: list[tuple[Investment, list[str], list[str], float]] = []
            seen: set[str] = set()
            for inv in vc.investments:
                if inv.startup in seen:
                    continue  # the same adoption listed in two decks
                seen.add(inv.startup)
                modalities = [m.value for m in inv.modalities if m in profile.modalities]
                diseases = [d.value for d in inv.disease_areas if d in profile.disease_areas]
                similarity = portfolio_norm.get((vc.id, inv.startup), 0.0)
                if modalities or diseases:
                    evidence.append((inv, modalities, diseases, similarity))
            if not evidence and not needs_investment:
                continue
            best_similarity = max((portfolio_norm.get((vc.id, s), 0.0) for s in startups), default=0.0)
            score = (0.45 * any(e[1] for e in evidence) + 0.25 * any(e[2] for e in evidence)
                     + 0.15 * best_similarity + 0.15 * min(1.0, len(startups) / 3))
            evidence.sort(key=lambda e: (-(len(e[1]) + len(e[2])), -e[3]))
            scored.append(_Scored(record=vc, score=score, fits=len(evidence),
                                  detail={"evidence": evidence, "startups": startups}))
        scored.sort(key=lambda s: (-s.score, s.record.id))
        return [self._explain_vc(profile, s, language, needs_investment) for s in scored[:limit]]

    def _explain_vc(self, profile: Profile, scored: _Scored, language: Language,
                    needs_investment: bool) -> Recommendation:
        vc = scored.record
        assert isinstance(vc, VC)
        reasons = _Reasons(self._titles)
        sep = _sep(language)
        # Fit: only what the backed startups develop, as the seeds say.
        for inv, modalities, diseases, _ in scored.detail["evidence"][:3]:
            matched = [label("modalities", m, language) for m in modalities]
            matched += [label("disease_areas", d, language) for d in diseases]
            parts = []
            if inv.develops:
                parts.append(_t("vc_develops", language, text=inv.develops))
            parts.append(_t("vc_matched", language, values=sep.join(matched)))
            round_text = _t("vc_round", language, n=inv.round) if inv.round else ""
            reasons.add(_t("vc_investment", language, startup=inv.startup, round=round_text,
                           detail=("。" if language == "ja" else "; ").join(parts)),
                        _distinct([_pick(inv.sources, [inv.startup]),
                                   *([_pick(inv.sources, [], inv.develops)] if inv.develops else [])]))
        certification = vc.certified_in[0]
        certified_sources = [_pick(vc.sources, [certification.list_title]),
                             _pick(vc.sources, [vc.name, *vc.aliases])]
        certified_sources = [s for s in _distinct(certified_sources)
                             if s.document == certification.document] or certified_sources
        reasons.add(_t("vc_certified", language, title=certification.list_title), certified_sources)
        if needs_investment and self._vc_program is not None:
            program = self._vc_program.name_ja if language == "ja" else (self._vc_program.name_en
                                                                         or self._vc_program.name_ja)
            reasons.add(_t("vc_requirement", language, program=program), certified_sources)
        startups: list[str] = scored.detail["startups"]
        if startups:
            firsts = [next(inv for inv in vc.investments if inv.startup == s) for s in startups[:3]]
            reasons.add(_t("vc_track", language, n=len(startups), names=sep.join(startups)),
                        [_pick(inv.sources, [inv.startup], inv.startup) for inv in firsts])
        else:
            reasons.add(_t("vc_no_investments", language), certified_sources)
        if not scored.detail["evidence"]:
            reasons.add(_t("vc_no_fit", language), certified_sources)
        return Recommendation(kind="vc", id=vc.id, name=vc.name, name_en=vc.name_en,
                              score=round(scored.score, 4), reasons=reasons.reasons, citations=reasons.citations)

    # --- CDMOs ------------------------------------------------------------------------------------

    def _cdmos(self, profile: Profile, query: np.ndarray, language: Language, limit: int,
               notes: list[str]) -> list[Recommendation]:
        cdmos = [c for c in self._active["cdmo"] if isinstance(c, CDMO)]
        if not cdmos or limit <= 0:
            return []
        if profile.who and set(profile.who) <= {Applicant.CDMO}:
            return []  # a CDMO asking for itself is not looking for a competitor
        wants_manufacturing = Support.MANUFACTURING in profile.needs or Stage.MANUFACTURING in profile.stages
        candidates: list[tuple[CDMO, list[str]]] = []
        for cdmo in cdmos:
            modalities = [m.value for m in profile.modalities
                          if m in cdmo.modalities or Modality.ANY in cdmo.modalities]
            if profile.modalities and not modalities:
                continue  # cannot make what this team develops
            if modalities or wants_manufacturing:
                candidates.append((cdmo, modalities))
        if not candidates:
            if wants_manufacturing and profile.modalities:
                available = sorted({m.value for c in cdmos for m in c.modalities})
                notes.append(_t("no_cdmo", language,
                                available=_sep(language).join(label("modalities", m, language) for m in available),
                                wanted=_sep(language).join(label("modalities", m, language)
                                                           for m in profile.modalities)))
            return []
        sims = self._similarities("cdmo", query)
        semantic = _standardize({c.id: sims.get(c.id, 0.0) for c, _ in candidates})
        scored = []
        for cdmo, modalities in candidates:
            countries = {f.country for f in cdmo.facilities}
            served = []
            for destination in profile.destinations:
                if destination is Destination.GLOBAL:
                    if countries - {"JP"}:
                        served.append(destination)
                elif countries & _DESTINATION_COUNTRIES[destination]:
                    served.append(destination)
            region = len(served) / len(profile.destinations) if profile.destinations else 0.5
            score = (0.45 * (1.0 if modalities else 0.5) + 0.25 * region + 0.1 * wants_manufacturing
                     + 0.2 * semantic[cdmo.id])
            scored.append(_Scored(record=cdmo, score=score, fits=len(modalities) + len(served),
                                  detail={"modalities": modalities, "served": served,
                                          "manufacturing": wants_manufacturing}))
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
            regions = sep.join(f"{f.region_ja}（{f.country}）" for f in facilities)
            reasons.add(_t("cdmo_region", language, values=regions), site_sources(facilities))
        elif cdmo.facilities:
            regions = sep.join(f"{f.region_ja}（{f.country}）" for f in cdmo.facilities)
            reasons.add(_t("cdmo_sites", language, values=regions), site_sources(cdmo.facilities))
        if detail["manufacturing"]:
            reasons.add(_t("cdmo_manufacturing", language), [_pick(cdmo.sources, ["CDMO", "受託", "製造"])])
        reasons.add(_t("cdmo_caveat", language), [_pick(cdmo.sources, ["施設", "CDMO"])])
        return Recommendation(kind="cdmo", id=cdmo.id, name=cdmo.name,
                              score=round(scored.score, 4), reasons=reasons.reasons, citations=reasons.citations)
