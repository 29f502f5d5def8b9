"""Records staff retired are kept for history but no longer searched or recommended. A question that
names one would otherwise get only "the evidence is weak, ask a supporter"; it is told the record was
retired instead, next to whatever the search found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from knowledge.labels import label
from knowledge.loader import KnowledgeBase
from knowledge.normalize import fold
from knowledge.schema import CDMO, VC, Program
from prompts.messages import t
from retrieval.answer import Answer, Answerer, Turn
from retrieval.index import Filters
from retrieval.language import Language
from retrieval.match import Matcher

Record = Program | VC | CDMO

# Shorter names (e.g. a two-letter abbreviation) would match inside unrelated words.
MIN_NAME_CHARS = 3


def record_names(record: Record) -> list[str]:
    """Every name the record goes by, as written."""
    if isinstance(record, Program):
        names = [record.name_ja, record.name_en, *record.aliases]
    elif isinstance(record, VC):
        names = [record.name, record.name_en, *record.aliases]
    else:
        names = [record.name, record.name_ja, *record.aliases]
    return [n for n in names if n]


def retired_named(question: str, kb: KnowledgeBase) -> list[Record]:
    """Retired records the question names (NFKC, case-insensitive), longest name first so a record
    whose name contains another's is the one reported."""
    asked = fold(question)
    found: list[tuple[int, Record]] = []
    for record in kb.records:
        if record.status != "retired":
            continue
        lengths = [
            len(n) for n in (fold(name) for name in record_names(record)) if len(n) >= MIN_NAME_CHARS and n in asked
        ]
        if lengths:
            found.append((max(lengths), record))
    return [record for _, record in sorted(found, key=lambda pair: -pair[0])]


def _note(record: Record, language: Language) -> str:
    as_of = record.as_of.isoformat()
    if record.kind == "program":  # 「事業」, not the record-kind label 「支援制度」: the note's own wording
        return t("answer_retired_program_note", language, name=record.title, as_of=as_of)
    return t(
        "answer_retired_note",
        language,
        name=record.title,
        kind=label("record_kind", record.kind, language),
        as_of=as_of,
    )


def with_retired_notes(answer: Answer, kb: KnowledgeBase) -> Answer:
    """The answer with a note, in its language, for each retired record the question names."""
    named = retired_named(answer.question, kb)
    if not named:
        return answer
    language: Language = "en" if answer.language == "en" else "ja"
    notes = [_note(record, language) for record in named]
    return replace(answer, answer="\n".join([*notes, answer.answer]), notes=[*answer.notes, *notes])


def ask(
    answerer: Answerer,
    question: str,
    *,
    kb: KnowledgeBase,
    filters: Filters | None = None,
    history: Sequence[Turn] = (),
    matcher: Matcher | None = None,
) -> Answer:
    """What a person asking gets: the answer from `kb`, with a note for each retired record it names."""
    answer = answerer.ask(question, filters=filters, history=history, kb=kb, matcher=matcher)
    return with_retired_notes(answer, kb)
