"""Signs of knowledge gaps in the desk database (weak answers, 👎 with reasons, hand-offs), grouped by
topic: shared by `kakehashi report gaps` and the weekly Slack post."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from bot.store import AnswerRecord, DeskStore
from core.settings import Settings
from knowledge.loader import KnowledgeBase
from retrieval.curated import CuratedAnswers, CuratedThreshold
from retrieval.embeddings import Embedder
from retrieval.entities import EntityCatalog
from retrieval.gaps import GAP_KINDS, Covered, GapItem, GapReport, build_gap_report
from retrieval.index import SearchIndex
from retrieval.language import detect_language

JST = dt.timezone(dt.timedelta(hours=9), "JST")


def _utc(stored: dt.datetime) -> dt.datetime:
    """The store keeps naive UTC."""
    return stored.replace(tzinfo=dt.UTC) if stored.tzinfo is None else stored


def asked_privately(answer: AnswerRecord) -> bool:
    """A DM with the bot, or its assistant pane (which lives in the DM): only the asker saw it."""
    return answer.surface in ("dm", "assistant") or (answer.channel_id or "").startswith("D")


def collect_gap_items(store: DeskStore, *, since: dt.datetime, until: dt.datetime | None = None) -> list[GapItem]:
    """Every sign of a gap in the window: answers given without confidence, 👎 ratings (with the
    question they rated), and consultations handed to supporters."""
    items: list[GapItem] = []
    for answer in store.low_confidence_answers(since=since, until=until):
        items.append(
            GapItem(
                kind="low_confidence",
                text=answer.question,
                at=_utc(answer.created_at),
                ref=answer.id,
                language=answer.language,
                answer_id=answer.id,
                private=asked_privately(answer),
            )
        )
    for feedback, rated in store.down_feedback(since=since, until=until):
        text = rated.question if rated is not None else feedback.comment
        if not text.strip():
            continue  # a 👎 on an answer this database does not hold, with nothing said: nothing to group
        items.append(
            GapItem(
                kind="thumbs_down",
                text=text,
                at=_utc(feedback.created_at),
                reasons=tuple(code for code in feedback.reasons.split(",") if code),
                comment=feedback.comment,
                ref=rated.id if rated is not None else f"feedback-{feedback.id}",
                language=rated.language if rated is not None else detect_language(text),
                answer_id=rated.id if rated is not None else None,
                # A rating of an answer this database does not hold: where it was asked is unknown.
                private=asked_privately(rated) if rated is not None else True,
            )
        )
    for consultation in store.consultations_since(since=since, until=until):
        topic = consultation.topic.strip()
        text = topic or consultation.question.strip()
        if text:
            # The topic was written for the supporters' channel (its hand-off card shows it); the question
            # goes there only with the asker's consent.
            items.append(
                GapItem(
                    kind="handoff",
                    text=text,
                    at=_utc(consultation.created_at),
                    ref=consultation.ref,
                    language=consultation.language,
                    answer_id=consultation.answer_id,
                    private=not topic and not consultation.consent_to_share,
                )
            )
    return items


def curated_covers(settings: Settings, embedder: Embedder, kb: KnowledgeBase) -> Callable[[str], Covered | None]:
    """Which curated answer a question now gets (the desk's own matching), for the report's topics."""
    curated = CuratedAnswers(embedder=embedder, threshold=CuratedThreshold.load(), stale_days=settings.kb.stale_days)
    catalog = EntityCatalog(kb)

    def covers(text: str) -> Covered | None:
        match = curated.find(text, kb=kb, catalog=catalog)
        return Covered(answer_id=match.answer.id, question=match.answer.questions[0]) if match else None

    return covers


def gap_report(
    settings: Settings,
    store: DeskStore,
    *,
    index: SearchIndex | Callable[[], SearchIndex] | None,
    now: dt.datetime,
    days: int,
    embedder: Callable[[], Embedder] | None = None,
    without_index_note: str = "",
    knowledge: Callable[[], KnowledgeBase] | None = None,
) -> GapReport:
    """The report for the `days` before `now`. `index` may be a function that opens it, so an empty
    window never loads the embedding model; an empty index still groups, without knowledge-base hints.
    With no index at all, `embedder` groups and `without_index_note` says why the hints are missing.
    With `knowledge`, each topic says whether a curated answer now answers it; the report always
    counts the questions curated answers served in the window."""
    since = now - dt.timedelta(days=days)
    served = store.count_answers(mode="curated", since=since, until=now)
    items = collect_gap_items(store, since=since, until=now)
    if not items:
        return GapReport(
            topics=(),
            since=since,
            until=now,
            threshold=settings.gaps.topic_similarity,
            counts={kind: 0 for kind in GAP_KINDS},
            curated_served=served,
        )
    if index is None:
        if embedder is None:
            raise TypeError("gap_report needs an index or an embedder")
        model = embedder()
        covers = curated_covers(settings, model, knowledge()) if knowledge is not None else None
        report = build_gap_report(
            items,
            embedder=model,
            index=None,
            threshold=settings.gaps.topic_similarity,
            since=since,
            until=now,
            covers=covers,
        )
        return replace(
            report, notes=(*report.notes, *((without_index_note,) if without_index_note else ())), curated_served=served
        )
    index = index if isinstance(index, SearchIndex) else index()
    empty_note = (
        "the search index is empty: run `kakehashi ingest` to see what in the knowledge base comes "
        "closest to each topic"
    )
    notes = () if len(index) else (empty_note,)
    covers = curated_covers(settings, index.embedder, knowledge()) if knowledge is not None else None
    report = build_gap_report(
        items,
        embedder=index.embedder,
        index=index if len(index) else None,
        threshold=settings.gaps.topic_similarity,
        since=since,
        until=now,
        covers=covers,
    )
    return replace(report, notes=(*report.notes, *notes), curated_served=served)
