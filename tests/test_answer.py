"""Cited answers: extractive by default, an LLM over real HTTP when configured."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from knowledge.settings import Settings
from prompts import ANSWER_SYSTEM_EN, ANSWER_SYSTEM_JA
from retrieval.answer import WEAK_NOTE, Answerer, make_chat_model
from retrieval.index import SearchIndex
from retrieval.language import detect_language
from tests.fakellm import FakeOpenAI, completion


def _cited_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_language_detection() -> None:
    assert detect_language("BTEPって何ですか") == "ja"
    assert detect_language("What does MEDISO do for startups?") == "en"
    assert detect_language("What is the budget of 創薬支援推進事業 next year?") == "en"
    assert detect_language("MEDISOの相談件数は？") == "ja"


def test_extractive_answer_quotes_the_fact_with_its_citation(seed_index: SearchIndex) -> None:
    answer = Answerer(index=seed_index).ask("ゲノム研究バイオバンクには何症例のデータがありますか？")
    assert answer.confident
    assert "44万症例" in answer.answer
    numbers = _cited_numbers(answer.answer)
    assert numbers and numbers <= {c.n for c in answer.citations}
    # The sentence quoted under [n] is in passage n, in the source's wording.
    for line in answer.answer.splitlines():
        match = re.match(r"(.+) \[(\d+)\]$", line)
        if match:
            cited = answer.citations[int(match.group(2)) - 1].text
            assert match.group(1).replace(" ", "")[:15] in cited.replace("**", "").replace(" ", "")


def test_citations_are_ranked_passages_with_full_text(seed_index: SearchIndex) -> None:
    answer = Answerer(index=seed_index, k=8).ask("創薬ベンチャーエコシステム強化事業の基金総額は？")
    assert len(answer.citations) >= 5
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    scores = [c.score for c in answer.citations]
    assert scores == sorted(scores, reverse=True)
    assert any("3,500億円" in c.text or "3500億円" in c.text for c in answer.citations[:3])
    payload = answer.to_json()
    assert set(payload) == {"question", "answer", "confident", "citations", "intent", "cited"}
    assert set(payload["citations"][0]) == {"n", "id", "kind", "title", "source", "text", "score", "label"}


def test_english_question_gets_an_english_answer(seed_index: SearchIndex) -> None:
    answer = Answerer(index=seed_index).ask("What does the Bio-Talent Exchange Program do?")
    assert answer.language == "en"
    assert answer.answer.startswith("From the sources")
    assert _cited_numbers(answer.answer)


def test_off_topic_question_is_not_guessed(seed_index: SearchIndex) -> None:
    for question, language in (("東京の明日の天気は？", "ja"), ("How do I reset my email password?", "en")):
        answer = Answerer(index=seed_index).ask(question)
        assert not answer.confident
        assert answer.answer.startswith(WEAK_NOTE[language])


def test_long_question_is_cut_with_a_note(seed_index: SearchIndex) -> None:
    answer = Answerer(index=seed_index).ask("MEDISOとは何ですか。" * 400)
    assert "最初の2000文字" in answer.answer


def _llm_settings(server: FakeOpenAI, **extra: Any) -> Settings:
    return Settings(llm_model="openai:fake-model", llm_base_url=server.base_url, llm_api_key="sk-test", **extra)


def test_llm_answer_over_http(seed_index: SearchIndex) -> None:
    def reply(body: dict[str, Any]) -> tuple[int, Any]:
        return 200, completion("MEDISOは医療系ベンチャーの相談窓口です [1]。")

    with FakeOpenAI(reply) as server:
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(_llm_settings(server)))
        answer = answerer.ask("MEDISOではどんな支援を受けられますか？")
    assert answer.mode == "llm"
    assert answer.answer == "MEDISOは医療系ベンチャーの相談窓口です [1]。"
    request = server.requests[0]
    assert request["model"] == "fake-model"
    system, human = request["messages"][0]["content"], request["messages"][1]["content"]
    assert system == ANSWER_SYSTEM_JA.strip() or system == ANSWER_SYSTEM_JA
    assert "MEDISOではどんな支援を受けられますか？" in human
    assert "[1]" in human and answer.citations[0].text[:30] in human
    assert server.headers[0].get("authorization") == "Bearer sk-test"


def test_llm_prompt_follows_the_question_language(seed_index: SearchIndex) -> None:
    with FakeOpenAI(lambda body: (200, completion("MEDISO is a one-stop support office [1]."))) as server:
        answerer = Answerer(index=seed_index, chat_model=make_chat_model(_llm_settings(server)))
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
