"""A question naming a record staff retired is told so, in the question's language."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from typing import Literal

import pytest

from knowledge.loader import KnowledgeBase
from retrieval.answer import Answer
from retrieval.retired import retired_named, with_retired_notes


@pytest.fixture
def kb_with_retired(seed_kb: KnowledgeBase) -> KnowledgeBase:
    """The seed knowledge with BINDS and one certified VC retired (copies: the session's kb is shared)."""
    programs = [p.model_copy(update={"status": "retired"}) if "binds" in p.id else p for p in seed_kb.programs]
    vcs = [v.model_copy(update={"status": "retired"}) if i == 0 else v for i, v in enumerate(seed_kb.vcs)]
    return replace(seed_kb, programs=programs, vcs=vcs)


def _answer(question: str, language: Literal["ja", "en"] = "ja") -> Answer:
    return Answer(question=question, answer="（検索結果の回答）", confident=False, citations=[], language=language)


def test_a_retired_program_named_by_its_alias_or_english_name_is_noted(kb_with_retired: KnowledgeBase) -> None:
    binds = next(p for p in kb_with_retired.programs if p.status == "retired")
    alias = next(a for a in binds.aliases if len(a) >= 3)
    noted = with_retired_notes(_answer(f"{alias.lower()}の公募はいつですか？"), kb_with_retired)
    assert noted.answer.startswith(f"※「{binds.name_ja}」（事業）は") and noted.answer.endswith("（検索結果の回答）")
    assert noted.notes and binds.as_of.isoformat() in noted.notes[0]
    if binds.name_en:
        english = with_retired_notes(_answer(f"Is {binds.name_en} still open?", "en"), kb_with_retired)
        assert english.answer.startswith(f'Note: "{binds.name_ja}" (program) has been recorded by staff as ended')


def test_active_records_and_unnamed_questions_are_left_alone(
    kb_with_retired: KnowledgeBase, seed_kb: KnowledgeBase
) -> None:
    question = "創薬ベンチャーエコシステム強化事業の補助率は？"
    assert with_retired_notes(_answer(question), kb_with_retired).answer == "（検索結果の回答）"
    binds = next(p for p in seed_kb.programs if "binds" in p.id)
    assert binds.status == "active" and not retired_named(f"{binds.name_ja}とは？", seed_kb)


def test_a_retired_vc_is_found_by_its_name_in_full_width_or_other_case(kb_with_retired: KnowledgeBase) -> None:
    vc = kb_with_retired.vcs[0]
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in vc.name)  # ASCII typed full width
    assert unicodedata.normalize("NFKC", wide) == unicodedata.normalize("NFKC", vc.name)
    assert [r.id for r in retired_named(f"{wide}に出資してもらえますか", kb_with_retired)] == [vc.id]
