"""What we can say about a cited passage beyond its text: ministry, source document, link-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from knowledge.loader import KnowledgeBase
from knowledge.schema import Program
from retrieval.chunking import MINISTRY_EN, MINISTRY_JA


@dataclass(frozen=True)
class SourceInfo:
    ministry: str | None  # code, e.g. MHLW
    documents: tuple[str, ...]  # source document titles
    url: str | None


def ministry_label(code: str | None, language: str) -> str | None:
    if not code:
        return None
    if language == "ja":
        return MINISTRY_JA.get(code, code)
    return f"{MINISTRY_EN.get(code, code)} ({code})" if code != "other" else "other"


class SourceCatalog:
    """Lookups from a record id or document file to what a reader needs to trust a citation."""

    def __init__(self, *, records: dict[str, SourceInfo], documents: dict[str, SourceInfo]) -> None:
        self._records = records
        self._documents = documents

    @classmethod
    def empty(cls) -> SourceCatalog:
        return cls(records={}, documents={})

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> SourceCatalog:
        titles = {d.meta.file: d.meta.title for d in kb.documents}
        documents = {
            d.meta.file: SourceInfo(ministry=d.meta.ministry.value, documents=(d.meta.title,), url=None)
            for d in kb.documents
        }
        records = {}
        for record in kb.records:
            files = sorted({s.document for s in record.sources})
            ministry = record.ministry.value if isinstance(record, Program) else None
            records[record.id] = SourceInfo(
                ministry=ministry, documents=tuple(titles.get(f, f) for f in files), url=record.url
            )
        return cls(records=records, documents=documents)

    def lookup(self, citation_id: str) -> SourceInfo | None:
        """By a citation's chunk id (`origin#hash`) or a bare record id / document file."""
        origin = citation_id.rsplit("#", 1)[0]
        return self._records.get(origin) or self._documents.get(origin)

    def url(self, record_id: str) -> str | None:
        info = self._records.get(record_id)
        return info.url if info else None


class _HasKnowledge(Protocol):
    @property
    def kb(self) -> KnowledgeBase: ...


class LiveSourceCatalog(SourceCatalog):
    """The catalog of whatever knowledge is live now: rebuilt when staff changes swap the knowledge base."""

    def __init__(self, live: _HasKnowledge) -> None:
        self._live = live
        self._built_for: KnowledgeBase | None = None
        super().__init__(records={}, documents={})

    def _current(self) -> None:
        kb = self._live.kb
        if kb is not self._built_for:
            fresh = SourceCatalog.from_kb(kb)
            self._records, self._documents, self._built_for = fresh._records, fresh._documents, kb

    def lookup(self, citation_id: str) -> SourceInfo | None:
        self._current()
        return super().lookup(citation_id)

    def url(self, record_id: str) -> str | None:
        self._current()
        return super().url(record_id)
