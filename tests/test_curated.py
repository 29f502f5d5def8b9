"""Curated answers: a supporter's answer, pinned as a record, is given first when a question asks the same
thing — in every process at once after the change, in the asker's language, never for a near miss, and no
longer once retired, stale or showing staff-only material. Real embedder, index and answerer throughout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from knowledge.errors import RecordError
from knowledge.freshness import stale_answers
from knowledge.journal import Actor
from retrieval.answer import Answerer
from retrieval.curated import CuratedAnswers, CuratedThreshold
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from retrieval.leaks import leaks
from retrieval.live import LiveKnowledge
from tests.kbfiles import ANSWER_ID, ANSWER_TEXT_EN, ANSWER_TEXT_JA, answer_yaml

STAFF = Actor(id="U0STAFF1", name="佐藤 花子", via="slack")
PARAPHRASE_JA = "MEDISOに相談するのにお金は必要？"
PARAPHRASE_EN = "Does it cost anything to consult MEDISO?"
UNRELATED = "MEDISOの所在地はどこですか？"
OTHER_OFFICE = "CARISOへの相談は無料ですか？"


def _live(knowledge: Path, data: Path, embedder: Embedder, *, today: dt.date | None = None) -> LiveKnowledge:
    settings = Settings(knowledge_dir=knowledge, data_dir=data)
    editor = KnowledgeEditor(root=knowledge)
    index = open_index(settings, embedder=embedder)
    kb = editor.load()
    ingest(settings, index, kb=kb)
    curated = CuratedAnswers(
        embedder=embedder,
        threshold=CuratedThreshold.load(),
        stale_days=settings.kb.stale_days,
        today=(lambda: today) if today else dt.date.today,
    )
    return LiveKnowledge(
        settings=settings,
        editor=editor,
        index=index,
        answerer=Answerer(index=index, k=5, curated=curated),
        kb=kb,
        check_interval_s=0.0,
    )


@pytest.fixture
def live(small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder) -> LiveKnowledge:
    return _live(small_knowledge_dir, tmp_path / "data", embedder, today=dt.date(2026, 12, 5))


def test_a_curated_answer_answers_paraphrases_in_both_languages_at_once_and_stops_when_retired(
    live: LiveKnowledge,
) -> None:
    assert live.ask(PARAPHRASE_JA).intent != "curated"
    live.editor.add_records(answer_yaml(), name="answer.yaml", actor=STAFF)

    ja = live.ask(PARAPHRASE_JA)  # the next question sees the new generation
    assert ja.intent == "curated" and ja.confident and ja.mode == "curated"
    assert ja.answer.startswith(ANSWER_TEXT_JA)
    assert "佐藤 花子さんが2026年11月20日に確認" in ja.answer
    cited = ja.cited_citations()
    assert cited and cited[0].label.startswith("医療系ベンチャー振興のための取組") and "[1]" in ja.answer
    assert not leaks(ja.answer, [ANSWER_ID])

    en = live.ask(PARAPHRASE_EN)
    assert en.intent == "curated" and en.answer.startswith(ANSWER_TEXT_EN) and "Checked by 佐藤 花子" in en.answer

    for question in (UNRELATED, OTHER_OFFICE):
        other = live.ask(question)
        assert other.intent != "curated" and ANSWER_TEXT_JA not in other.answer, question

    live.editor.retire(ANSWER_ID, actor=STAFF)
    assert live.ask(PARAPHRASE_JA).intent != "curated"
    live.editor.restore(ANSWER_ID, actor=STAFF)
    assert live.ask(PARAPHRASE_JA).intent == "curated"
    assert [c.action for c in live.editor.history(ANSWER_ID)] == ["restore", "retire", "add"]


def test_english_question_without_an_english_answer_gets_the_japanese_one_with_a_note(live: LiveKnowledge) -> None:
    live.editor.add_records(answer_yaml(answer_en=None), name="answer.yaml", actor=STAFF)
    en = live.ask(PARAPHRASE_EN)
    assert en.intent == "curated" and ANSWER_TEXT_JA in en.answer
    assert en.answer.startswith("(A supporter wrote this answer in Japanese; there is no English version yet.)")


def test_stale_and_leaking_curated_answers_are_not_used(
    small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    later = _live(small_knowledge_dir, tmp_path / "data", embedder, today=dt.date(2028, 1, 1))
    later.editor.add_records(answer_yaml(), name="answer.yaml", actor=STAFF)
    assert later.ask(PARAPHRASE_JA).intent != "curated"  # checked over kb_stale_days (365) ago
    # ... and `kb stale` lists it, so staff check it again.
    assert [(a.id, age) for a, age in stale_answers(later.kb, today=dt.date(2028, 1, 1), max_age_days=365)] == [
        (ANSWER_ID, (dt.date(2028, 1, 1) - dt.date(2026, 11, 20)).days)
    ]

    now = _live(small_knowledge_dir, tmp_path / "data2", embedder, today=dt.date(2026, 12, 5))
    leaking = answer_yaml(answer_ja="無料です（備考：001_e20f596e76c29b16.txt の読みによる）。")
    now.editor.add_records(leaking, name="answer.yaml", actor=STAFF)
    answer = now.ask(PARAPHRASE_JA)
    assert answer.intent != "curated" and "001_e20f596e76c29b16.txt" not in answer.answer


def test_an_answer_that_ages_while_the_knowledge_stays_the_same_stops_being_given(
    small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    days = [dt.date(2026, 12, 5)]
    live = _live(small_knowledge_dir, tmp_path / "data", embedder)
    live.answerer.curated = CuratedAnswers(
        embedder=embedder, threshold=CuratedThreshold.load(), stale_days=365, today=lambda: days[0]
    )
    live.editor.add_records(answer_yaml(), name="answer.yaml", actor=STAFF)
    assert live.ask(PARAPHRASE_JA).intent == "curated"
    days[0] = dt.date(2027, 11, 21)  # 366 days after as_of, no change to the knowledge meanwhile
    assert live.ask(PARAPHRASE_JA).intent != "curated"


def test_a_program_named_differently_is_not_answered(
    small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    live = _live(small_knowledge_dir, tmp_path / "data", embedder, today=dt.date(2026, 12, 5))
    live.editor.add_records(
        answer_yaml(answer_id="cariso-muryou", questions=("CARISOへの相談は無料ですか？",), record="mhlw-cariso"),
        name="a.yaml",
        actor=STAFF,
    )
    assert live.ask("CARISOって相談料かかりますか？").intent == "curated"
    assert live.ask("MEDISOって相談料かかりますか？").intent != "curated"


def test_bad_curated_answers_are_refused_with_file_and_field(small_knowledge_dir: Path) -> None:
    editor = KnowledgeEditor(root=small_knowledge_dir)
    with pytest.raises(RecordError) as missing:
        editor.add_records(answer_yaml(record="no-such-program"), name="a.yaml", actor=STAFF)
    assert missing.value.field == "sources[0].record" and "no-such-program" in str(missing.value)
    with pytest.raises(RecordError) as bad_quote:
        editor.add_records(answer_yaml().replace("総合的な支援", "無料の支援"), name="a.yaml", actor=STAFF)
    assert bad_quote.value.field == "sources[0].quote"
    with pytest.raises(RecordError) as no_question:
        editor.add_records(answer_yaml().replace("  - MEDISOへの相談は無料ですか？\n", ""), name="a.yaml", actor=STAFF)
    assert no_question.value.field == "questions" and no_question.value.line == 3
    assert not (small_knowledge_dir / "answers").exists() or not list((small_knowledge_dir / "answers").iterdir())


def test_curated_answers_stay_out_of_the_records_the_matcher_and_index_read(live: LiveKnowledge) -> None:
    live.editor.add_records(answer_yaml(), name="answer.yaml", actor=STAFF)
    live.refresh()
    assert ANSWER_ID not in [r.id for r in live.kb.records]
    assert [a.id for a in live.kb.answers] == [ANSWER_ID]
    assert all(c.origin != ANSWER_ID for c in live.index.lexical.chunks())
