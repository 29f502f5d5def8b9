"""Citations a person recognises: the deck's title and date, and the section where the quote stands.

Answers quote document passages, never curated records: a record's passage carries staff notes, and
a founder should see the government's own wording. A quote from a record's sources is located in the
document passage that holds it, and that passage is what gets cited.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from knowledge.loader import KnowledgeBase
from knowledge.normalize import squash
from retrieval.chunking import Chunk
from retrieval.index import Hit
from retrieval.lexical import LexicalIndex
from retrieval.sentences import sentence_pieces


@dataclass(frozen=True)
class Citation:
    n: int
    id: str
    kind: str
    title: str
    source: str
    text: str
    score: float
    # What a person recognises: the deck's title and date (and section where known).
    label: str = ""


_FIGURE = re.compile(r"\d[\d,.]*\s*(億|万|百万)?円|^\d+$")


def _month(date: dt.date, language: str) -> str:
    return f"{date.year}年{date.month}月" if language == "ja" else date.strftime("%b %Y")


def document_label(chunk: Chunk, kb: KnowledgeBase | None, language: str) -> str:
    """「令和8年度概算要求事項について（2025年9月）」 and, when the passage sits under a heading, that heading."""
    meta = None
    if kb is not None:
        meta = next((d.meta for d in kb.documents if d.meta.file == chunk.origin), None)
    if meta is None:
        return chunk.title
    label = (
        f"{meta.title}（{_month(meta.date, language)}）"
        if language == "ja"
        else f"{meta.title} ({_month(meta.date, language)})"
    )
    # A slide heading names the section; a heading that is really a figure line (「令和8年度概算要求額 5.7億円」)
    # would only confuse.
    if chunk.title and chunk.title != meta.title and len(chunk.title) <= 40 and not _FIGURE.search(chunk.title):
        label += f" — {chunk.title}" if language == "en" else f"「{chunk.title}」"
    return label


def record_label(chunk: Chunk, kb: KnowledgeBase | None, language: str) -> str:
    """A record is cited by the deck its facts come from, not by its file."""
    if kb is None:
        return chunk.title
    try:
        record = kb.get(chunk.origin)
    except KeyError:
        return chunk.title
    files = [s.document for s in record.sources]
    meta = next((d.meta for d in kb.documents if files and d.meta.file == files[0]), None)
    if meta is None:
        return chunk.title
    return (
        f"{meta.title}（{_month(meta.date, language)}）"
        if language == "ja"
        else f"{meta.title} ({_month(meta.date, language)})"
    )


class Citations:
    """The numbered sources of one answer: the search hits first (their numbers stay stable for the
    retrieval figures), then any passage a quoted fact was found in. Tracks which numbers the text uses."""

    def __init__(
        self,
        *,
        hits: list[Hit],
        lexical: LexicalIndex,
        kb: KnowledgeBase | None,
        language: str,
        squashed: dict[str, str],
    ) -> None:
        self._lexical = lexical
        self.kb = kb
        self._language = language
        self._squashed = squashed  # chunk id -> squashed text, shared across questions
        self.items: list[Citation] = []
        self.cited: list[int] = []
        for hit in hits:
            self._append(hit.chunk, round(hit.score, 6))

    def _append(self, chunk: Chunk, score: float) -> Citation:
        label = (document_label if chunk.kind == "document" else record_label)(chunk, self.kb, self._language)
        citation = Citation(
            n=len(self.items) + 1,
            id=chunk.id,
            kind=chunk.kind,
            title=chunk.title,
            source=chunk.source,
            text=chunk.text,
            score=score,
            label=label,
        )
        self.items.append(citation)
        return citation

    def squashed(self, chunk: Chunk) -> str:
        text = self._squashed.get(chunk.id)
        if text is None:
            text = self._squashed[chunk.id] = squash(chunk.text)
        return text

    def cite_chunk(self, chunk: Chunk) -> int:
        existing = next((c for c in self.items if c.id == chunk.id), None)
        citation = existing or self._append(chunk, 0.0)
        if citation.n not in self.cited:
            self.cited.append(citation.n)
        return citation.n

    def cite_id(self, chunk_id: str) -> int:
        """Cite the indexed passage with this id (a quoted sentence's passage)."""
        return self.cite_chunk(self._lexical.get(chunk_id))

    def passage_with(self, quote: str, document: str | None = None) -> Chunk | None:
        """The document passage that holds `quote` (NFKC, spacing ignored): a hit's first, else any."""
        wanted = squash(quote)
        if not wanted:
            return None
        for citation in self.items:
            if citation.kind == "document" and (document is None or citation.id.startswith(document)):
                chunk = self._lexical.get(citation.id) if citation.id in self._lexical else None
                if chunk and wanted in self.squashed(chunk):
                    return chunk
        for chunk in self._lexical.chunks():
            if chunk.kind != "document":
                continue
            if (
                document is not None
                and chunk.origin != document
                and document not in str(chunk.metadata.get("also_in", "")).split(",")
            ):
                continue
            if wanted in self.squashed(chunk):
                return chunk
        return None

    def sentence_with(self, quote: str, document: str | None = None) -> tuple[str, int] | None:
        """The whole source line a record's quote comes from (a quote may start mid-sentence, 「とは、…」), cited."""
        chunk = self.passage_with(quote, document)
        if chunk is None:
            return None
        wanted = squash(quote)
        line = next((p for p in sentence_pieces(chunk.text) if wanted in squash(p)), None)
        return (line or quote.replace("**", "").strip()), self.cite_chunk(chunk)

    def cite_quote(self, quote: str, document: str | None = None) -> int | None:
        chunk = self.passage_with(quote, document)
        return self.cite_chunk(chunk) if chunk else None
