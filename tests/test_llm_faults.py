"""The LLM misbehaves over real HTTP (tests/fakellm.py): the user still gets the extractive answer,
with a note in the question's language, after one request and within the configured timeout.
(tests/test_answer.py covers the plain 500 / garbage / empty cases and the prompt itself.)"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from core.settings import Settings
from knowledge.loader import KnowledgeBase
from prompts.messages import t
from retrieval.answer import Answerer, make_chat_model
from retrieval.index import SearchIndex
from tests.fakellm import Drip, FakeOpenAI, completion, no_choices

TIMEOUT_S = 1.0
# Retrieval and the extractive answer take tens of milliseconds warm; the rest is thread start-up slack.
MARGIN_S = 1.0
QUESTIONS = {
    "ja": ("BINDSとはどんな事業？", "生命科学・創薬研究支援基盤事業"),
    "en": ("What is the BINDS program?", "BINDS"),
}

Fault = Callable[[FakeOpenAI], Callable[[dict[str, Any]], tuple[int, Any]]]
FAULTS: dict[str, tuple[Fault, str]] = {
    "hangs": (lambda server: server.hang(30), "application/json"),
    "drips-forever": (
        lambda server: lambda body: (200, Drip(json.dumps(completion("遅すぎる回答 " * 40)).encode(), pause=0.3)),
        "application/json",
    ),
    "http-503": (
        lambda server: lambda body: (503, {"error": {"message": "overloaded", "type": "server_error"}}),
        "application/json",
    ),
    "rate-limited": (lambda server: lambda body: (429, {"error": {"message": "slow down"}}), "application/json"),
    "proxy-error-page": (lambda server: lambda body: (502, b"<html><h1>502 Bad Gateway</h1></html>"), "text/html"),
    "json-without-choices": (lambda server: lambda body: (200, no_choices()), "application/json"),
    "empty-choices": (lambda server: lambda body: (200, {**completion("x"), "choices": []}), "application/json"),
    "null-content": (lambda server: lambda body: (200, completion(None)), "application/json"),  # type: ignore[arg-type]
    "json-array": (lambda server: lambda body: (200, b"[1, 2, 3]"), "application/json"),
    "truncated-json": (
        lambda server: lambda body: (200, json.dumps(completion("途中で")).encode()[:40]),
        "application/json",
    ),
}


def _answerer(index: SearchIndex, base_url: str, kb: KnowledgeBase) -> Answerer:
    settings = Settings(
        llm_model="openai:fake-model", llm_base_url=base_url, llm_api_key=SecretStr("sk-test"), llm_timeout_s=TIMEOUT_S
    )
    return Answerer(index=index, kb=kb, chat_model=make_chat_model(settings))


def _assert_fallback(answerer: Answerer, language: str) -> float:
    question, fact = QUESTIONS[language]
    answerer.index.search(question, k=answerer.k)  # warm: the time below is the LLM's share
    started = time.monotonic()
    answer = answerer.ask(question)
    elapsed = time.monotonic() - started
    assert answer.mode == "extractive" and answer.confident
    assert (
        answer.answer.startswith(t("answer_llm_fallback_note", language))
        and t("answer_llm_fallback_note", language) in answer.notes
    )
    assert fact in answer.answer and answer.cited
    return elapsed


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_llm_gives_the_extractive_answer_with_a_note_in_bounded_time(
    seed_index: SearchIndex, seed_kb: KnowledgeBase, fault: str
) -> None:
    make_reply, content_type = FAULTS[fault]
    with FakeOpenAI(lambda body: (200, completion("unused")), content_type=content_type) as server:
        server.reply = make_reply(server)
        elapsed = _assert_fallback(_answerer(seed_index, server.base_url, seed_kb), "ja")
        assert len(server.requests) == 1  # no retries: each would add another timeout
    assert elapsed < TIMEOUT_S + MARGIN_S


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_note_is_in_the_language_of_the_question(
    seed_index: SearchIndex, seed_kb: KnowledgeBase, language: str
) -> None:
    with FakeOpenAI(lambda body: (500, {"error": {"message": "boom"}})) as server:
        _assert_fallback(_answerer(seed_index, server.base_url, seed_kb), language)
        assert len(server.requests) == 1


def test_an_unreachable_llm_server_falls_back_at_once(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> None:
    with socket.socket() as probe:  # a port nobody listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    elapsed = _assert_fallback(_answerer(seed_index, f"http://127.0.0.1:{port}/v1", seed_kb), "en")
    assert elapsed < TIMEOUT_S


def test_a_slow_but_complete_reply_within_the_timeout_is_used(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> None:
    def slow(body: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(TIMEOUT_S / 4)
        return 200, completion("BINDSは創薬研究を支援する事業です [1]。")

    with FakeOpenAI(slow) as server:
        answer = _answerer(seed_index, server.base_url, seed_kb).ask("BINDSとはどんな事業？")
    assert answer.mode == "llm" and answer.answer == "BINDSは創薬研究を支援する事業です [1]。"


def test_the_answer_deadline_follows_the_configured_timeout(seed_index: SearchIndex, seed_kb: KnowledgeBase) -> None:
    with FakeOpenAI(lambda body: (200, completion("unused"))) as server:
        server.reply = server.hang(30)
        settings = Settings(
            llm_model="openai:fake-model",
            llm_base_url=server.base_url,
            llm_api_key=SecretStr("sk-test"),
            llm_timeout_s=0.4,
        )
        answerer = Answerer(index=seed_index, kb=seed_kb, chat_model=make_chat_model(settings))
        assert answerer.llm_timeout_s == 0.4
        started = time.monotonic()
        answer = answerer.ask("BINDSとはどんな事業？")
        elapsed = time.monotonic() - started
    assert answer.mode == "extractive" and 0.35 <= elapsed < 0.4 + MARGIN_S


def test_a_trickling_llm_during_matchmaking_falls_back_to_the_vocabulary_in_bounded_time() -> None:
    from retrieval.profile import extract_profile

    text = "iPS細胞由来の細胞治療を開発する大学発スタートアップです。治験の資金を探しています。"
    # Each read is quick, so the HTTP client's own timeout never fires; only the overall deadline does.
    trickle = Drip(json.dumps(completion("遅すぎる回答 " * 40)).encode(), pause=0.3)
    with FakeOpenAI(lambda body: (200, trickle)) as server:
        settings = Settings(
            llm_model="openai:fake-model",
            llm_base_url=server.base_url,
            llm_api_key=SecretStr("sk-test"),
            llm_timeout_s=TIMEOUT_S,
        )
        started = time.monotonic()
        profile = extract_profile(text, chat_model=make_chat_model(settings))
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert profile == extract_profile(text)  # exactly what the vocabulary alone reads
    assert "cell_therapy" in {m.value for m in profile.modalities}
