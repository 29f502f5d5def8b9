"""An answer as Slack shows it: the text, its cited sources in one line, the buttons under it, the sources
modal. Pure functions from our objects to Block Kit JSON; everything a user or a record wrote is escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypedDict

from bot.slack.blockkit import Block, actions, button, context, modal, section
from bot.slack.feedback.blocks import feedback_block
from bot.slack.ids import HANDOFF, SHARE, SOURCES
from bot.slack.sources import SourceCatalog
from bot.slack.text import escape_answer, escape_mrkdwn, shorten, split_for_sections
from bot.store import AnswerRecord
from prompts.messages import t
from retrieval.answer import Answer, Citation

SOURCE_QUOTE_CHARS = 600
_CITED = re.compile(r"\[(\d{1,2})\]")


class StoredCitation(TypedDict):
    """A cited passage as it is stored with an answer (AnswerRecord.citations)."""

    n: int
    id: str
    kind: str
    title: str
    source: str
    score: float
    label: str
    text: str


def cited_numbers(text: str) -> set[int]:
    return {int(n) for n in _CITED.findall(text)}


def cited_citations(answer: Answer) -> list[Citation]:
    """The passages the answer's text cites, in number order; nothing the text does not use."""
    numbers = set(answer.cited) or cited_numbers(answer.answer)
    return sorted((c for c in answer.citations if c.n in numbers), key=lambda c: c.n)


def citation_label(citation: Citation, catalog: SourceCatalog) -> str:
    """The title a person recognises: the answer's own label (deck title, date, slide), else the source
    document's title for a passage of a document, else the record's name. Never a file name or an id."""
    if citation.label:
        return citation.label
    info = catalog.lookup(citation.id)
    if citation.kind == "document":
        if info and info.documents:
            return info.documents[0]
        # "004_….txt（Title）": the title in the brackets, not the file
        inner = re.search(r"（(.+)）\s*$", citation.source)
        return inner.group(1) if inner else citation.title
    return citation.title


def citation_json(citation: Citation, catalog: SourceCatalog) -> StoredCitation:
    """What is stored with an answer: enough to show its sources again (the sources modal, sharing)."""
    return {
        "n": citation.n,
        "id": citation.id,
        "kind": citation.kind,
        "title": citation.title,
        "source": citation.source,
        "score": citation.score,
        "label": citation_label(citation, catalog),
        "text": shorten(citation.text, SOURCE_QUOTE_CHARS),
    }


def answer_text_blocks(answer: Answer) -> list[Block]:
    return [section(piece) for piece in split_for_sections(escape_answer(answer.answer)) if piece.strip()]


def sources_line(labels: Sequence[tuple[int, str]], language: str) -> Block:
    """`出典: [1] 骨太特集 · [2] …` in one small line."""
    parts = [f"[{n}] {escape_mrkdwn(shorten(text, 70))}" for n, text in labels]
    return context(f"*{t('slack_sources', language)}*: " + " · ".join(parts))


def answer_footer_blocks(
    answer: Answer, *, answer_id: str, catalog: SourceCatalog, notes: Sequence[str] = (), share: bool = False
) -> list[Block]:
    """Everything under the answer text: weak-evidence note, the cited sources in one line, notes,
    buttons and Slack's own feedback buttons. A streamed answer gets these when the stream stops."""
    language = answer.language
    blocks: list[Block] = []
    if not answer.confident:
        blocks.append(context(t("slack_weak_evidence", language)))
    cited = cited_citations(answer)
    if cited:
        blocks.append(sources_line([(c.n, citation_label(c, catalog)) for c in cited], language))
    if notes:
        blocks.append(context(*(escape_mrkdwn(n) for n in notes)))
    blocks.append(
        answer_actions(
            answer_id=answer_id,
            language=language,
            sources=bool(cited),
            share=share,
            offer_person=not answer.confident or answer.intent == "out_of_scope",
        )
    )
    blocks.append(feedback_block(answer_id))
    return blocks


def answer_actions(
    *, answer_id: str, language: str, sources: bool = True, share: bool = False, offer_person: bool = False
) -> Block:
    """Share (a private answer), the sources, and a person: first and highlighted when the bot could not
    really answer."""
    elements = []
    if offer_person:
        elements.append(button(t("slack_handoff", language), HANDOFF, answer_id, style="primary"))
    if share:
        elements.append(button(t("slack_share", language), SHARE, answer_id, style=None if offer_person else "primary"))
    if sources:
        elements.append(button(t("slack_view_sources", language), SOURCES, answer_id))
    if not offer_person:
        elements.append(button(t("slack_handoff", language), HANDOFF, answer_id))
    return actions(elements, block_id="kk_answer_actions")


def answer_blocks(
    answer: Answer,
    *,
    answer_id: str,
    catalog: SourceCatalog,
    notes: Sequence[str] = (),
    lead: str | None = None,
    share: bool = False,
) -> list[Block]:
    """A whole answer message; `lead` is an already-escaped line above it (who asked what); `share`
    adds 「チャンネルに共有」 (the answer is private to the asker until then)."""
    blocks: list[Block] = [context(lead)] if lead else []
    blocks += answer_text_blocks(answer)
    blocks += answer_footer_blocks(answer, answer_id=answer_id, catalog=catalog, notes=notes, share=share)
    return blocks


def answer_fallback_text(answer: Answer) -> str:
    """The notification text of an answer message (one line, escaped, under Slack's limits)."""
    return escape_mrkdwn(shorten(answer.answer, 2900))


def answer_from_record(record: AnswerRecord) -> Answer:
    """An answer as it was stored (to share it in the channel, or show its sources again)."""
    citations = [
        Citation(
            n=int(c.get("n", 0)),
            id=str(c.get("id", "")),
            kind=str(c.get("kind", "")),
            title=str(c.get("title", "")),
            source=str(c.get("source", "")),
            text=str(c.get("text", "")),
            score=float(c.get("score") or 0),
            label=str(c.get("label", "")),
        )
        for c in record.citations
    ]
    return Answer(
        question=record.question,
        answer=record.answer,
        confident=record.confident,
        citations=citations,
        language="en" if record.language == "en" else "ja",
        mode=record.mode,
        cited=sorted(cited_numbers(record.answer)),
    )


def sources_modal(record: AnswerRecord, *, with_answer: bool = False) -> Block:
    """「出典を見る」: each passage the answer cites, quoted, under its human title; `with_answer` puts
    the answer itself first (the supporters' card shows only its beginning)."""
    language = record.language
    wanted = cited_numbers(record.answer)
    blocks: list[Block] = [context(escape_mrkdwn(shorten(record.question, 280)))]
    if with_answer:
        blocks += [section(piece) for piece in split_for_sections(escape_mrkdwn(record.answer)) if piece.strip()]
    for c in record.citations:
        if c.get("n") not in wanted:
            continue
        quote = escape_mrkdwn(shorten(str(c.get("text") or ""), SOURCE_QUOTE_CHARS)).replace("\n", " ")
        blocks.append(section(f"*[{c.get('n')}] {escape_mrkdwn(shorten(str(c.get('label') or ''), 150))}*\n>{quote}"))
    if not any(b["type"] == "section" and b["text"]["text"].startswith("*[") for b in blocks):
        blocks.append(section(t("slack_no_sources", language)))
    return modal(title=t("slack_sources_title", language), close=t("slack_close", language), blocks=blocks)


def apology_blocks(*, reference: str, language: str) -> list[Block]:
    return [section(t("slack_apology", language, ref=escape_mrkdwn(reference)))]
