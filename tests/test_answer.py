"""Cited answers: extractive by default, an LLM over real HTTP when configured."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from pydantic import SecretStr

from bot.cli_eval import in_english
from core.settings import Settings
from knowledge.loader import KnowledgeBase
from knowledge.normalize import squash
from prompts import ANSWER_SYSTEM_EN, ANSWER_SYSTEM_JA
from retrieval.answer import Answerer, Turn, make_chat_model
from retrieval.index import SearchIndex
from retrieval.language import detect_language
from retrieval.leaks import leaks
from retrieval.match import Matcher
from tests.fakellm import FakeOpenAI, completion


def _cited_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_language_detection() -> None:
    assert detect_language("BTEPって何ですか") == "ja"
    assert detect_language("What does MEDISO do for startups?") == "en"
    assert detect_language("What is the budget of 創薬支援推進事業 next year?") == "en"
    assert detect_language("MEDISOの相談件数は？") == "ja"


@pytest.fixture(scope="module")
def answerer(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> Answerer:
    return Answerer(index=seed_index, kb=seed_kb, matcher=Matcher(kb=seed_kb, index=seed_index))


def _quoted_lines_stand_in_their_passage(answer: Any) -> None:
    """Every quoted line under [n] is in passage n, in the source's wording, and n is a document."""
    for line in answer.answer.splitlines():
        match = re.match(r"> 「(.+?)(…)?」 \[(\d+)\]$", line)
        if match:
            citation = answer.citations[int(match.group(3)) - 1]
            assert citation.kind == "document"
            assert squash(match.group(1))[:20] in squash(citation.text.replace("**", ""))


def test_a_fact_leads_with_the_program_and_the_figure_then_the_source_wording(answerer: Answerer) -> None:
    answer = answerer.ask("BTEPの令和8年度の概算要求額は？")
    lead = answer.answer.splitlines()[0]
    assert answer.confident and answer.intent == "fact"
    assert "創薬人材クロスアポイントメント推進事業" in lead and "91百万円" in lead and "令和8年度" in lead
    assert re.search(r"\[\d+\]$", lead)
    _quoted_lines_stand_in_their_passage(answer)
    assert answer.cited and set(answer.cited) <= {c.n for c in answer.citations}
    assert all(c.kind == "document" for c in answer.cited_citations())


def test_english_question_gets_english_words_and_figures(answerer: Answerer) -> None:
    answer = answerer.ask("How much is the FY2026 budget request for BTEP?")
    lead = answer.answer.splitlines()[0]
    assert answer.language == "en" and answer.confident
    assert "¥91 million" in lead and "FY2026" in lead and "Cross-Appointment" in lead
    assert in_english(answer.answer)
    assert any("Sep 2025" in c.label for c in answer.cited_citations())


def test_a_quoted_fact_comes_from_the_named_programs_passages(answerer: Answerer) -> None:
    answer = answerer.ask("ゲノム研究バイオバンクには何症例のデータがありますか？")
    assert answer.confident and "44万症例" in answer.answer
    _quoted_lines_stand_in_their_passage(answer)


def test_a_fact_the_sources_do_not_state_is_declined_with_what_is_known(answerer: Answerer) -> None:
    answer = answerer.ask("BTEPでクロスアポの費用補助を受ける場合、1人あたりの補助上限っていくらですか？")
    assert not answer.confident
    assert "記載がありません" in answer.answer and "サポーター" in answer.answer
    assert "91百万円" in answer.answer  # what is known: the program's whole budget, said as that


def test_a_later_round_than_the_sources_have_is_declined(answerer: Answerer) -> None:
    answer = answerer.ask("創薬ベンチャーエコシステム強化事業の第12回の応募期間はいつ？")
    assert not answer.confident and "第8回" in answer.answer


def test_comparison_puts_both_programs_side_by_side(answerer: Answerer) -> None:
    answer = answerer.ask("「創薬支援推進事業」と「創薬基盤強化支援事業」の違いは？")
    assert answer.intent == "compare" and answer.confident
    text = answer.answer
    assert "創薬支援推進事業" in text and "創薬基盤強化支援事業" in text and text.count("所管:") == 2


def test_which_support_fits_goes_to_the_matcher_and_offers_the_form(answerer: Answerer) -> None:
    answer = answerer.ask(
        "小児の希少疾患の薬を開発しているベンチャーです。PMDAへの薬事相談で何か使える支援ありますか？"
    )
    assert answer.intent == "fit" and answer.confident
    assert re.search(r"^1\. ", answer.answer, re.MULTILINE) and "match" in answer.answer
    assert "薬事相談" in answer.answer


def test_which_cdmos_is_a_list_from_the_records_with_their_sites(answerer: Answerer) -> None:
    answer = answerer.ask("iPS細胞を使った再生医療の製造を委託できるCDMOはありますか？")
    assert answer.intent == "list" and answer.confident
    lines = answer.answer.splitlines()
    assert lines[1].startswith("- AGC Biologics（日本")  # the one with a site in Japan comes first
    english = answerer.ask("Are there CDMOs for gene therapy in Japan?")
    assert english.intent == "list" and "AGC Biologics (JP" in english.answer and in_english(english.answer)


def test_context_free_follow_up_asks_which_program(answerer: Answerer) -> None:
    for question in ("補助率ってどれくらいですか？", "ok and is that open to foreign companies too?"):
        answer = answerer.ask(question)
        assert answer.intent == "clarify" and not answer.confident


def test_follow_up_in_a_thread_is_resolved_and_never_repeated(answerer: Answerer) -> None:
    first = answerer.ask("BTEPの令和8年度の概算要求額は？")
    follow = answerer.ask("前年度と比べて予算って増えてます？", history=[Turn(first.question, first.answer)])
    assert follow.intent != "clarify" and "創薬人材クロスアポイントメント推進事業" in follow.answer
    again = answerer.ask("BTEPの令和8年度の概算要求額は？", history=[Turn(first.question, first.answer)])
    assert again.answer.splitlines()[0] != first.answer.splitlines()[0]
    thanks = answerer.ask("ありがとう！", history=[Turn(first.question, first.answer)])
    assert thanks.intent == "thanks" and len(thanks.answer) < 60 and not thanks.cited


def test_an_unknown_startup_is_said_to_be_missing(answerer: Answerer) -> None:
    answer = answerer.ask("ゼフィランサスバイオって、どこの認定VCの出資を受けていますか？")
    assert not answer.confident and "見当たりません" in answer.answer


def test_no_answer_shows_staff_material(answerer: Answerer, seed_kb: KnowledgeBase) -> None:
    ids = [r.id for r in seed_kb.records]
    for question in (
        "CiCLEとは？",
        "ジェクスヴァルの出資VCは？",
        "AGC Biologicsは日本で何をしていますか？",
        "What does MEDISO do?",
        "DBJのスタートアップ・イノベーションファンドの予算は？",
        "認定VCは何社ありますか？",
    ):
        answer = answerer.ask(question)
        assert not leaks(answer.answer, ids), (question, answer.answer)


def test_off_topic_question_is_not_guessed(answerer: Answerer) -> None:
    for question in ("東京の明日の天気は？", "How do I reset my email password?"):
        answer = answerer.ask(question)
        assert not answer.confident


def test_json_contract_keeps_ranked_citations_and_adds_intent_and_cited(answerer: Answerer) -> None:
    answer = answerer.ask("創薬ベンチャーエコシステム強化事業の基金総額は？")
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert any("3,500億円" in c.text or "3500億円" in c.text for c in answer.citations[:5])
    payload = answer.to_json()
    assert set(payload) == {"question", "answer", "confident", "citations", "intent", "cited"}
    assert payload["cited"] == sorted(_cited_numbers(answer.answer))


def test_long_question_is_cut_with_a_note(answerer: Answerer) -> None:
    answer = answerer.ask("MEDISOとは何ですか。" * 400)
    assert "最初の2000文字" in answer.answer


def _llm_settings(server: FakeOpenAI, **extra: Any) -> Settings:
    return Settings(
        llm_model="openai:fake-model", llm_base_url=server.base_url, llm_api_key=SecretStr("sk-test"), **extra
    )


def test_llm_answer_over_http(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> None:
    def reply(body: dict[str, Any]) -> tuple[int, Any]:
        return 200, completion("MEDISOは医療系ベンチャーの相談窓口です [1]。")

    with FakeOpenAI(reply) as server:
        answerer = Answerer(index=seed_index, kb=seed_kb, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("MEDISOではどんな支援を受けられますか？")
    assert answer.mode == "llm"
    assert answer.answer == "MEDISOは医療系ベンチャーの相談窓口です [1]。"
    request = server.requests[0]
    assert request["model"] == "fake-model"
    system, human = request["messages"][0]["content"], request["messages"][1]["content"]
    assert system == ANSWER_SYSTEM_JA.strip() or system == ANSWER_SYSTEM_JA
    assert "MEDISOではどんな支援を受けられますか？" in human
    # Structured facts and the cited passages go to the model, never staff notes.
    assert "Facts:" in human and "医療系ベンチャー・トータルサポート事業" in human
    assert "備考" not in human and "notes_ja" not in human
    assert server.headers[0].get("authorization") == "Bearer sk-test"


def test_llm_answer_with_figures_the_evidence_lacks_is_rejected(
    seed_index: SearchIndex, seed_kb: KnowledgeBase
) -> None:
    with FakeOpenAI(lambda body: (200, completion("BTEPの予算は500億円です [1]。"))) as server:
        answerer = Answerer(index=seed_index, kb=seed_kb, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("BTEPの令和8年度の概算要求額は？")
    assert server.requests and answer.mode == "extractive"
    assert "500億円" not in answer.answer and "91百万円" in answer.answer


def test_llm_prompt_follows_the_question_language(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> None:
    with FakeOpenAI(lambda body: (200, completion("MEDISO is a one-stop support office [1]."))) as server:
        answerer = Answerer(index=seed_index, kb=seed_kb, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("What does the MEDISO support office help startups with?")
    assert answer.mode == "llm"
    assert server.requests[0]["messages"][0]["content"].strip() == ANSWER_SYSTEM_EN.strip()


@pytest.mark.parametrize(
    "reply",
    [
        lambda body: (500, {"error": {"message": "internal error", "type": "server_error"}}),
        lambda body: (200, b"this is not json"),
        lambda body: (200, completion("")),
    ],
    ids=["http-500", "garbage", "empty"],
)
def test_llm_failure_falls_back_to_extractive_answer(seed_index: SearchIndex, reply: Any) -> None:
    with FakeOpenAI(reply) as server:
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("BINDSとはどんな事業？")
    assert answer.mode == "extractive"
    assert "言語モデルが応答しなかった" in answer.answer
    assert "生命科学・創薬研究支援基盤事業" in answer.answer


def test_llm_timeout_is_bounded(seed_index: SearchIndex) -> None:
    def slow(body: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(5)
        return 200, completion("too late")

    with FakeOpenAI(slow) as server:
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(_llm_settings(server, llm_timeout_s=0.5)))
        started = time.perf_counter()
        answer = answerer.ask("BINDSとはどんな事業？")
        elapsed = time.perf_counter() - started
    assert answer.mode == "extractive"
    assert elapsed < 4  # one retry at most, each bounded by the timeout


def test_weak_evidence_does_not_ask_the_llm(seed_index: SearchIndex) -> None:
    with FakeOpenAI(lambda body: (200, completion("invented"))) as server:
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("おいしいラーメン屋を教えて")
    assert not answer.confident and not server.requests
    assert "invented" not in answer.answer


def _prompt_questions() -> list[str]:
    from bot.slack.home import example_questions, suggested_prompts

    return [p["message"] for p in (*suggested_prompts("ja"), *suggested_prompts("en"))] + example_questions()


@pytest.mark.parametrize("question", _prompt_questions())
def test_suggested_prompts_and_home_examples_get_answers_a_supporter_would_send(
    answerer: Answerer, seed_kb: KnowledgeBase, question: str
) -> None:
    """What the DM's suggested prompts and the App Home offer must be answered, not declined: confidently,
    in the asker's language, from a cited deck, with no staff material."""
    answer = answerer.ask(question)
    assert answer.confident, answer.answer
    assert answer.intent in ("fact", "fit", "list", "compare"), answer.intent
    assert not leaks(answer.answer, [r.id for r in seed_kb.records])
    if answer.language == "en":
        assert in_english(answer.answer), answer.answer
    if answer.intent != "fit":  # fit questions go to the matcher's cards in Slack
        assert answer.cited and all(c.kind == "document" and c.label for c in answer.cited_citations())
    # It names what it is about in its first line: a program, a count of VCs, or the fit list's lead.
    assert len(answer.answer.splitlines()[0]) > 15
