"""The record schema: one YAML file per program, VC or CDMO, validated on load.

Vocabularies are closed enums so that matchmaking can compare a profile with a
record field by field; free text goes into the `*_ja` / `*_en` fields and the
source passages.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Ministry(StrEnum):
    MHLW = "MHLW"  # 厚生労働省
    MEXT = "MEXT"  # 文部科学省
    METI = "METI"  # 経済産業省
    CAO = "CAO"  # 内閣府 (健康・医療戦略推進事務局 etc.)
    CAS = "CAS"  # 内閣官房
    AMED = "AMED"  # 日本医療研究開発機構
    PMDA = "PMDA"  # 医薬品医療機器総合機構
    DBJ = "DBJ"  # 日本政策投資銀行
    OTHER = "other"


class Applicant(StrEnum):
    ACADEMIA = "academia"  # universities, public research institutes (incl. before founding)
    STARTUP = "startup"
    PHARMA = "pharma"
    CDMO = "cdmo"  # CDMO / CMO
    INCUBATOR = "incubator"
    MEDICAL_INSTITUTION = "medical_institution"
    INVESTOR = "investor"  # a VC or other investor asking on its own behalf
    ANY = "any"


class Stage(StrEnum):
    BASIC = "basic"
    APPLIED = "applied"
    NON_CLINICAL = "non_clinical"
    PHASE1 = "phase1"
    PHASE2 = "phase2"
    PHASE3 = "phase3"
    MANUFACTURING = "manufacturing"
    APPROVAL = "approval"  # approval / launch / market


class Modality(StrEnum):
    SMALL_MOLECULE = "small_molecule"
    ANTIBODY = "antibody"  # incl. ADC
    NUCLEIC_ACID = "nucleic_acid"
    CELL_THERAPY = "cell_therapy"  # incl. iPS-derived
    GENE_THERAPY = "gene_therapy"  # incl. viral vectors
    REGENERATIVE = "regenerative"
    BIOSIMILAR = "biosimilar"
    MICROBIOME = "microbiome"
    DEVICE = "device"
    DIAGNOSTICS = "diagnostics"
    VACCINE = "vaccine"
    GENERIC = "generic"  # 後発医薬品
    ANY = "any"


class DiseaseArea(StrEnum):
    CANCER = "cancer"
    RARE = "rare"  # rare / intractable (難病・希少疾病)
    INFECTIOUS = "infectious"
    NEURO = "neuro"  # neurological, psychiatric, dementia
    PAIN = "pain"
    OPHTHALMOLOGY = "ophthalmology"
    DENTAL = "dental"
    CARDIOVASCULAR = "cardiovascular"
    IMMUNOLOGY = "immunology"
    METABOLIC = "metabolic"
    PEDIATRIC = "pediatric"
    ANY = "any"


class Support(StrEnum):
    """What a program gives. The first nine are also the needs a profile states."""

    NON_DILUTIVE_FUNDING = "non_dilutive_funding"  # grant, subsidy, commissioned R&D
    INVESTMENT = "investment"  # equity, equity-linked
    MANUFACTURING = "manufacturing"  # manufacturing / process development
    REGULATORY = "regulatory"  # PMDA / regulatory consultation
    CLINICAL_TRIALS = "clinical_trials"  # incl. international trials
    TALENT = "talent"
    FACILITIES = "facilities"  # lab space, equipment, shared infrastructure
    OVERSEAS = "overseas"
    IP_STRATEGY = "ip_strategy"  # IP and business strategy
    HANDS_ON = "hands_on"  # mentoring, accompaniment (伴走支援)
    MATCHING = "matching"  # networking, partnering events
    RESEARCH_INFRASTRUCTURE = "research_infrastructure"  # biobanks, data, platforms
    TAX = "tax"
    POLICY = "policy"  # a policy body or plan, not something one applies to


class ProgramCategory(StrEnum):
    PROGRAM = "program"  # a support program / project one can apply to or use
    FUND = "fund"  # a fund (基金)
    TAX = "tax"
    CONSULTATION = "consultation"  # a consultation service / office
    POLICY = "policy"  # a council, plan or strategy


class BudgetKind(StrEnum):
    REQUEST = "request"  # 概算要求
    INITIAL = "initial"  # 当初予算 (incl. 予算案)
    SUPPLEMENTARY = "supplementary"  # 補正予算
    FUND_TOTAL = "fund_total"  # 基金総額
    TOTAL = "total"  # 総額 incl. 国庫債務負担行為
    ITEM_REQUEST = "item_request"  # 事項要求: amount not stated


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=False)


class Source(_Strict):
    """A passage in a document under `documents/` that supports the record."""

    document: str = Field(description="File name under documents/, e.g. 002_e4d666523973320d.txt")
    quote: str = Field(min_length=4, description="Verbatim passage from the document")


class Budget(_Strict):
    fiscal_year: int = Field(ge=2000, le=2100, description="Western fiscal year (令和8年度 = 2026)")
    kind: BudgetKind
    amount_oku_yen: float | None = Field(default=None, ge=0, description="億円; null for 事項要求")
    text: str = Field(description="The figure as the source writes it")

    @model_validator(mode="after")
    def _amount_unless_item_request(self) -> Budget:
        if self.kind is not BudgetKind.ITEM_REQUEST and self.amount_oku_yen is None:
            raise ValueError("amount_oku_yen is required unless kind is item_request")
        return self


class ApplicationRound(_Strict):
    name: str = Field(description="e.g. 第4回")
    opens: dt.date | None = None
    closes: dt.date | None = None
    announced: dt.date | None = Field(default=None, description="採択公表")
    text: str = Field(description="The round as the source writes it")


# A record's id: also its file name and what Slack buttons carry, so every check uses this one pattern.
RECORD_ID_PATTERN = r"[a-z0-9][a-z0-9-]{1,80}"
RECORD_ID = re.compile(rf"^{RECORD_ID_PATTERN}$")
Slug = Annotated[str, Field(pattern=RECORD_ID.pattern)]

# The program fields matching filters on, and whose values must say whether the decks state them.
BASIS_FIELDS = ("eligible", "stages", "modalities", "disease_areas")
INFERRED = "inferred"


class RecordBase(_Strict):
    id: Slug
    status: Literal["active", "retired"] = "active"
    as_of: dt.date = Field(description="Date of the facts (the source document's date)")
    url: str | None = None
    notes_ja: str | None = None
    sources: list[Source] = Field(min_length=1)

    @property
    def title(self) -> str:
        raise NotImplementedError


class Program(RecordBase):
    kind: Literal["program"] = "program"
    name_ja: str
    name_en: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Abbreviations, old names, nicknames")
    category: ProgramCategory = ProgramCategory.PROGRAM
    ministry: Ministry
    agency: Ministry | None = Field(default=None, description="Implementing agency, e.g. AMED")
    budgets: list[Budget] = Field(default_factory=list)
    summary_ja: str
    summary_en: str | None = None
    eligible: list[Applicant] = Field(min_length=1, description="Who may apply or use it")
    stages: list[Stage] = Field(default_factory=list)
    modalities: list[Modality] = Field(default_factory=lambda: [Modality.ANY])
    disease_areas: list[DiseaseArea] = Field(default_factory=lambda: [DiseaseArea.ANY])
    support: list[Support] = Field(min_length=1)
    subsidy_rate: str | None = Field(default=None, description="As written, e.g. 1/2, 2/3")
    subsidy_rate_en: str | None = Field(default=None, description="The subsidy rate in English")
    period: str | None = Field(default=None, description="Implementation period as written")
    rounds: list[ApplicationRound] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list, description="Conditions, as caveats")
    requirements_en: list[str] = Field(default_factory=list, description="The requirements in English, same order")
    basis: dict[
        Literal["eligible", "stages", "modalities", "disease_areas"], dict[str, Source | Literal["inferred"]]
    ] = Field(
        default_factory=dict,
        description="Per value of eligible/stages/modalities/disease_areas: the passage "
        "that states it, or `inferred` (a curator's reading; it ranks but never excludes). A value with no "
        "entry counts as inferred.",
    )

    @property
    def title(self) -> str:
        return self.name_ja

    @model_validator(mode="after")
    def _basis_names_values(self) -> Program:
        for field_name, entries in self.basis.items():
            values = {str(v) for v in getattr(self, field_name)}
            for value in entries:
                if value not in values:
                    raise ValueError(
                        f"basis.{field_name} names {value!r}, which is not among {field_name} "
                        f"({', '.join(sorted(values)) or 'empty'})"
                    )
        if self.requirements_en and len(self.requirements_en) != len(self.requirements):
            raise ValueError(
                f"requirements_en has {len(self.requirements_en)} entries but requirements has "
                f"{len(self.requirements)}; give one English line per requirement, in the same order"
            )
        return self

    def stated(self, field_name: str) -> set[str]:
        """The values of a basis field the decks state (each with its passage in `basis`)."""
        entries = self.basis.get(field_name, {})  # type: ignore[call-overload]
        return {value for value, entry in entries.items() if isinstance(entry, Source)}

    def stated_source(self, field_name: str, value: str) -> Source | None:
        entry = self.basis.get(field_name, {}).get(value)  # type: ignore[call-overload]
        return entry if isinstance(entry, Source) else None

    def restriction_stated(self, field_name: str) -> bool:
        """True when every value limiting this field is stated in the decks, so the limit may exclude."""
        values = {str(v) for v in getattr(self, field_name)} - {"any"}
        return bool(values) and values <= self.stated(field_name)


class Investment(_Strict):
    startup: str
    round: int | None = Field(default=None, ge=1, description="Adoption round of 創薬ベンチャーエコシステム強化事業")
    announced: dt.date | None = None
    develops: str | None = Field(default=None, description="What the startup develops, only where the seeds say")
    modalities: list[Modality] = Field(default_factory=list)
    disease_areas: list[DiseaseArea] = Field(default_factory=list)
    subsidy_ended: bool = Field(
        default=False,
        description="The adoption list marks it ※補助事業廃止 (the subsidy "
        "was discontinued); cite that passage among the sources",
    )
    notes_ja: str | None = None
    sources: list[Source] = Field(min_length=1)


class Certification(_Strict):
    list_title: str = Field(description="e.g. 認定VC (30社)")
    document: str


class VC(RecordBase):
    kind: Literal["vc"] = "vc"
    name: str = Field(description="As written in the certified list")
    name_en: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Short forms used in adoption lists")
    universities: list[str] = Field(
        default_factory=list,
        description="The university this VC belongs to, as its "
        "certified name says, with the short forms askers write (東京大学, 東大, UTokyo)",
    )
    certified_in: list[Certification] = Field(min_length=1)
    investments: list[Investment] = Field(default_factory=list)

    @property
    def title(self) -> str:
        return self.name


class Facility(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region_ja: str = Field(description="As written, e.g. 米国")
    area_m2: float | None = Field(default=None, ge=0)
    notes_ja: str | None = None


class CDMO(RecordBase):
    kind: Literal["cdmo"] = "cdmo"
    name: str
    name_ja: str | None = None
    aliases: list[str] = Field(default_factory=list)
    facilities: list[Facility] = Field(default_factory=list)
    modalities: list[Modality] = Field(min_length=1)
    services_ja: str | None = None

    @property
    def title(self) -> str:
        return self.name

    @field_validator("facilities")
    @classmethod
    def _unique_facilities(cls, facilities: list[Facility]) -> list[Facility]:
        seen = [(f.country, f.region_ja) for f in facilities]
        if len(seen) != len(set(seen)):
            raise ValueError("duplicate facility (country, region_ja)")
        return facilities


class AnswerSource(_Strict):
    """What a curated answer stands on: a passage of a document (verified like any record's), or a record."""

    document: str | None = Field(default=None, description="File name under documents/")
    quote: str | None = Field(default=None, min_length=4, description="Verbatim passage from the document")
    record: Slug | None = Field(default=None, description="The id of a program, VC or CDMO")

    @model_validator(mode="after")
    def _document_or_record(self) -> AnswerSource:
        if self.record is not None and (self.document is not None or self.quote is not None):
            raise ValueError(
                "a source cites either a record (record: ID) or a document passage (document: and quote:), not both"
            )
        if self.record is None and (self.document is None or self.quote is None):
            raise ValueError("a source needs both document: and quote:, or record: ID")
        return self


Phrasing = Annotated[str, Field(min_length=2)]


class CuratedAnswer(_Strict):
    """What a supporter answered once, pinned so the desk gives that answer from then on."""

    kind: Literal["answer"] = "answer"
    id: Slug
    status: Literal["active", "retired"] = "active"
    questions: list[Phrasing] = Field(
        min_length=1, description="The question in one or more phrasings, Japanese and/or English"
    )
    answer_ja: str = Field(min_length=2)
    answer_en: str | None = None
    sources: list[AnswerSource] = Field(default_factory=list)
    author: str = Field(min_length=1, description="The supporter who wrote or checked it (name or Slack user id)")
    as_of: dt.date = Field(description="When the supporter checked the answer")
    consultation: str | None = Field(default=None, description="The consultation it came from (staff only)")

    @property
    def title(self) -> str:
        return self.questions[0]


Record = Program | VC | CDMO
RECORD_TYPES: dict[str, type[Program] | type[VC] | type[CDMO] | type[CuratedAnswer]] = {
    "program": Program,
    "vc": VC,
    "cdmo": CDMO,
    "answer": CuratedAnswer,
}
RECORD_DIRS: dict[str, str] = {"program": "programs", "vc": "vcs", "cdmo": "cdmos", "answer": "answers"}


class DocumentMeta(_Strict):
    """One source document under documents/, described in documents/documents.yaml."""

    file: str
    id: Slug
    title: str
    ministry: Ministry
    date: dt.date
    description_ja: str | None = None
    original: str | None = Field(default=None, description="Name of the uploaded file the text was extracted from")
    added_by: str | None = Field(default=None, description="Who added it (Slack user id or login name)")
