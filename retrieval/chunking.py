"""Turn records and documents into the passages we index and cite.

A record becomes one passage that states its fields in Japanese (with the English
name and summary), so that questions about names, ministries and figures find the
record itself. A document is split on paragraph boundaries; slide decks repeat
whole slides, so identical passages are kept once and remember where else they stand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.labels import labels
from knowledge.loader import Document, KnowledgeBase
from knowledge.normalize import squash
from knowledge.schema import CDMO, VC, Program, Record

MINISTRY_JA = labels("ministry", "ja")
MINISTRY_EN = labels("ministry", "en")
APPLICANT_JA = labels("applicant", "ja")
STAGE_JA = labels("stage", "ja")
MODALITY_JA = labels("modality", "ja")
DISEASE_JA = labels("disease_area", "ja")
SUPPORT_JA = labels("support", "ja")

EMBED_CHARS = 600
_HTML_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")


@dataclass(frozen=True)
class Chunk:
    """One passage as indexed: `text` is what we show and cite, `search_text` what we match."""

    id: str
    origin: str  # record id or document file: what an update replaces
    kind: str  # program | vc | cdmo | document
    title: str
    source: str
    text: str
    search_text: str
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)

    @property
    def embed_text(self) -> str:
        """The head of the passage: records put name, ministry and summary first, and the
        embedding cost grows faster than linearly with length while the tail adds little meaning."""
        return self.search_text[:EMBED_CHARS]


def _chunk_id(origin: str, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{origin}#{digest}"


def _join(values: Sequence[str], names: dict[str, str]) -> str:
    return "、".join(names.get(v, v) for v in values)


def _flags(prefix: str, values: Sequence[str]) -> dict[str, bool]:
    return {f"{prefix}_{v}": True for v in values}


def _record_sources(record: Record) -> str:
    files = sorted({s.document for s in record.sources})
    return ", ".join(files)


def render_program(program: Program) -> str:
    lines = [program.name_ja + (f"（{program.name_en}）" if program.name_en else "")]
    if program.aliases:
        lines.append("別名: " + "、".join(program.aliases))
    ministry = f"所管: {MINISTRY_JA[program.ministry]}（{program.ministry}, {MINISTRY_EN[program.ministry]}）"
    if program.agency:
        ministry += f" / 実施: {MINISTRY_JA[program.agency]}"
    lines.append(ministry)
    lines.append("概要: " + program.summary_ja)
    if program.summary_en:
        lines.append("Summary: " + program.summary_en)
    if program.budgets:
        lines.append("予算: " + "; ".join(b.text for b in program.budgets))
    lines.append("対象者: " + _join(program.eligible, APPLICANT_JA))
    if program.stages:
        lines.append("開発段階: " + _join(program.stages, STAGE_JA))
    lines.append("モダリティ: " + _join(program.modalities, MODALITY_JA))
    lines.append("疾患領域: " + _join(program.disease_areas, DISEASE_JA))
    lines.append("支援内容: " + _join(program.support, SUPPORT_JA))
    if program.subsidy_rate:
        lines.append("補助率: " + program.subsidy_rate)
    if program.period:
        lines.append("期間: " + program.period)
    if program.requirements:
        lines.append("要件: " + "; ".join(program.requirements))
    if program.rounds:
        lines.append("公募: " + "; ".join(r.text for r in program.rounds))
    if program.notes_ja:
        lines.append("備考: " + program.notes_ja)
    return "\n".join(lines)


def render_vc(vc: VC) -> str:
    lines = [f"AMED認定VC: {vc.name}" + (f"（{vc.name_en}）" if vc.name_en else "")]
    if vc.aliases:
        lines.append("別名: " + "、".join(vc.aliases))
    lines.append("掲載: " + "、".join(f"{c.list_title}（{c.document}）" for c in vc.certified_in))
    if vc.investments:
        lines.append("創薬ベンチャーエコシステム強化事業の採択ベンチャー（出資先）:")
        for inv in vc.investments:
            detail = [f"第{inv.round}回採択" if inv.round else "", f"採択公表 {inv.announced}" if inv.announced else ""]
            line = f"- {inv.startup}（{'、'.join(d for d in detail if d)}）"
            if inv.develops:
                line += f" 開発: {inv.develops}"
            if inv.notes_ja:
                line += f" 備考: {inv.notes_ja}"
            lines.append(line)
    else:
        lines.append("資料に記載された採択ベンチャーへの出資: なし")
    if vc.notes_ja:
        lines.append("備考: " + vc.notes_ja)
    return "\n".join(lines)


def render_cdmo(cdmo: CDMO) -> str:
    lines = [f"CDMO: {cdmo.name}" + (f"（{cdmo.name_ja}）" if cdmo.name_ja else "")]
    if cdmo.aliases:
        lines.append("別名: " + "、".join(cdmo.aliases))
    lines.append("モダリティ: " + _join(cdmo.modalities, MODALITY_JA))
    for facility in cdmo.facilities:
        area = f" 施設面積 {facility.area_m2:,.0f} m²" if facility.area_m2 is not None else ""
        note = f"（{facility.notes_ja}）" if facility.notes_ja else ""
        lines.append(f"施設: {facility.region_ja}（{facility.country}）{area}{note}")
    if cdmo.services_ja:
        lines.append("サービス: " + cdmo.services_ja)
    if cdmo.notes_ja:
        lines.append("備考: " + cdmo.notes_ja)
    return "\n".join(lines)


def record_chunk(record: Record) -> Chunk:
    metadata: dict[str, str | int | float | bool] = {"kind": record.kind, "origin": record.id, "status": record.status}
    if isinstance(record, Program):
        text = render_program(record)
        metadata |= {"ministry": record.ministry.value, "category": record.category.value}
        metadata |= _flags("stage", list(record.stages)) | _flags("modality", list(record.modalities))
        folder = "programs"
    elif isinstance(record, VC):
        text = render_vc(record)
        modalities = sorted({m for inv in record.investments for m in inv.modalities})
        metadata |= _flags("modality", modalities)
        folder = "vcs"
    else:
        text = render_cdmo(record)
        metadata |= _flags("modality", list(record.modalities))
        folder = "cdmos"
    return Chunk(
        id=_chunk_id(record.id, text),
        origin=record.id,
        kind=record.kind,
        title=record.title,
        source=f"{folder}/{record.id}.yaml ({_record_sources(record)})",
        text=text,
        search_text=text,
        metadata=metadata,
    )


def _paragraphs(text: str) -> list[tuple[str, str]]:
    """(section heading, paragraph) pairs; a heading is a markdown `#` line."""
    section = ""
    out: list[tuple[str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [_HTML_TAG.sub(" ", line).strip() for line in block.splitlines()]
        lines = [re.sub(r"\s{2,}", " ", line) for line in lines if line]
        if not lines:
            continue
        if lines[0].startswith("#"):
            section = lines[0].lstrip("#").strip()
        out.append((section, "\n".join(lines)))
    return out


def _split_long(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(paragraph.replace("\n", "\n\u0000")) if s):
        for part in sentence.split("\u0000"):
            if current and len(current) + len(part) > limit:
                pieces.append(current.strip())
                current = ""
            current += part
    if current.strip():
        pieces.append(current.strip())
    # A single sentence longer than the limit is cut hard so no chunk runs away.
    return [p[i : i + limit * 2] for p in pieces for i in range(0, len(p), limit * 2)]


def document_chunks(document: Document, *, chunk_chars: int) -> list[Chunk]:
    """Paragraph-packed passages of about `chunk_chars`, each carrying its section heading."""
    meta = document.meta
    chunks: list[Chunk] = []
    buffer: list[str] = []
    buffer_section = ""

    def flush() -> None:
        if not buffer:
            return
        body = "\n".join(buffer)
        search_text = f"{meta.title}\n{buffer_section}\n{body}" if buffer_section else f"{meta.title}\n{body}"
        ordinal = len(chunks)
        chunks.append(
            Chunk(
                id=_chunk_id(meta.file, search_text),
                origin=meta.file,
                kind="document",
                title=buffer_section or meta.title,
                source=f"{meta.file}（{meta.title}）",
                text=body,
                search_text=search_text,
                metadata={
                    "kind": "document",
                    "origin": meta.file,
                    "ministry": meta.ministry.value,
                    "document_id": meta.id,
                    "ordinal": ordinal,
                    "status": "active",
                },
            )
        )

    for section, paragraph in _paragraphs(document.text):
        for piece in _split_long(paragraph, chunk_chars):
            if buffer and (sum(len(b) for b in buffer) + len(piece) > chunk_chars or section != buffer_section):
                flush()
                # A short trailing paragraph is carried over so a fact split across slides stays whole.
                tail = (
                    buffer[-1] if buffer and len(buffer[-1]) < chunk_chars // 4 and section == buffer_section else None
                )
                buffer = [tail] if tail else []
            if not buffer:
                buffer_section = section
            buffer.append(piece)
    flush()
    return chunks


def knowledge_chunks(kb: KnowledgeBase, *, chunk_chars: int) -> list[Chunk]:
    """Every passage of the knowledge base, with identical document passages kept once."""
    chunks = [record_chunk(r) for r in kb.records if r.status == "active"]
    seen: dict[str, int] = {}
    for document in kb.documents:
        for chunk in document_chunks(document, chunk_chars=chunk_chars):
            key = squash(chunk.text)
            if key in seen:
                first = chunks[seen[key]]
                also = str(first.metadata.get("also_in", ""))
                if chunk.origin not in also.split(",") and chunk.origin != first.origin:
                    first.metadata["also_in"] = ",".join(x for x in (also, chunk.origin) if x)
                continue
            seen[key] = len(chunks)
            chunks.append(chunk)
    return chunks
