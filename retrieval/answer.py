"""Cited answers: extractive by default, through a LangChain chat model when one is configured.

Either way the answer is in the question's language, cites numbered passages,
and says plainly when the evidence is weak instead of guessing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from knowledge.settings import Settings
from prompts import ANSWER_HUMAN_EN, ANSWER_HUMAN_JA, ANSWER_SYSTEM_EN, ANSWER_SYSTEM_JA
from retrieval.deadline import chat_timeout, within
from retrieval.errors import LLMError
from retrieval.glossary import expansion_terms
from retrieval.index import Filters, Hit, SearchIndex, near_duplicate
from retrieval.language import Language, detect_language

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
_HIRAGANA_ONLY = re.compile(r"^[\u3041-\u309f]+$")
_JAPANESE = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")
_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
_AMOUNT = re.compile(r"\d[\d,.]*\s*(?:兆|億|万|百万|千)?円|\d[\d,.]*\s*(?:億|兆)")
_DATE = re.compile(r"(?:令和|平成|R)\s*\d+|\d{4}\s*(?:年|-|–|～|/)|\d+月")
_NUMBER = re.compile(r"\d")
_UNSEEN_IDF = 1.5
# A record's field line, and the question words that ask about it.
_FIELD_QUESTIONS = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "対象者": r"対象|誰|だれ|応募|申請|who|eligib|apply",
        "開発段階": r"段階|フェーズ|ステージ|stage|phase",
        "モダリティ": r"モダリティ|modalit",
        "疾患領域": r"疾患|領域|disease",
        "支援内容": r"支援内容|どんな支援|what support|kind of support",
    }.items()
}
_RECORD_FIELD = re.compile(r"^(" + "|".join(_FIELD_QUESTIONS) + r"):")
_ASKS_STAGE = _FIELD_QUESTIONS["開発段階"]
_STAGE_WORDS = re.compile(r"基礎研究|応用研究|非臨床|前臨床|臨床試験|第\d相|治験|製造|上市|実用化")
_COUNTER = re.compile(r"何(症例|件|社|人|名|例|か所|拠点|億円|年)")

_ASKS_AMOUNT = re.compile(r"いくら|金額|予算|要求額|総額|how much|budget|amount|cost", re.IGNORECASE)
_ASKS_TIME = re.compile(r"いつ|期間|何年|時期|when|period|year|date", re.IGNORECASE)
_ASKS_COUNT = re.compile(r"何件|何社|何症例|何人|何名|いくつ|どのくらい|どれくらい|how many|how large|share|割合", re.IGNORECASE)

WEAK_NOTE = {
    "ja": "資料の中に、この質問に確かに答える記述が見つかりませんでした。推測はしません。"
    "MEDISOのような相談員（サポーター）に相談することをおすすめします。",
    "en": "I could not find a passage that clearly answers this question, so I will not guess. "
    "Please consider consulting a human supporter (such as MEDISO's).",
}
CLOSEST = {"ja": "参考までに、最も近い記述:", "en": "For reference, the closest passage (in the source's wording):"}
LLM_FALLBACK_NOTE = {
    "ja": "（言語モデルが応答しなかったため、資料からの抜粋でお答えします）",
    "en": "(The language model did not respond, so this answer quotes the sources directly.)",
}
EXTRACTIVE_LEAD = {"ja": "", "en": "From the sources (quoted in their original Japanese where applicable):"}
TRUNCATED_NOTE = {
    "ja": f"（質問が長いため、最初の{MAX_QUESTION_CHARS}文字で検索しました）",
    "en": f"(Your question was long; I searched with its first {MAX_QUESTION_CHARS} characters.)",
}


def _clean(sentence: str) -> str:
    """Markdown emphasis and heading marks are layout, not the source's wording."""
    return sentence.replace("**", "").lstrip("#").strip()


@dataclass(frozen=True)
class Citation:
    n: int
    id: str
    kind: str
    title: str
    source: str
    text: str
    score: float
    # What a person recognises: the deck's title and date (and slide/page where known), or the record's name.
    label: str = ""


@dataclass
class Answer:
    question: str
    answer: str
    confident: bool
    citations: list[Citation]
    language: Language = "ja"
    mode: str = "extractive"
    notes: list[str] = field(default_factory=list)
    # What the question asked for (fact, fit, compare, list, thanks, clarify, out_of_scope, ...).
    intent: str = "fact"
    # The citation numbers the answer text uses; cards show only these.
    cited: list[int] = field(default_factory=list)

    def cited_citations(self) -> list[Citation]:
        wanted = set(self.cited)
        return [c for c in self.citations if c.n in wanted]

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "confident": self.confident,
            "citations": [asdict(c) for c in self.citations],
            "intent": self.intent,
            "cited": list(self.cited),
        }


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The chat model named in settings, via LangChain's init_chat_model; None means extractive only."""
    if not settings.llm_model:
        return None
    from langchain.chat_models import init_chat_model

    provider, colon, model_name = settings.llm_model.partition(":")
    if not colon:
        # Settings admit a bare model name only with llm_base_url: an OpenAI-compatible endpoint.
        provider, model_name = "openai", settings.llm_model
    # No retries: each would add up to another timeout, and the extractive answer is a good fallback.
    kwargs: dict[str, Any] = {"timeout": settings.llm_timeout_s, "max_retries": 0, "temperature": 0}
    if settings.llm_base_url:
        kwargs["base_url"] = settings.llm_base_url
    if settings.llm_api_key:
        kwargs["api_key"] = settings.llm_api_key.get_secret_value()
    return init_chat_model(model_name, model_provider=provider, **kwargs)  # type: ignore[return-value]


class Answerer:
    def __init__(self, *, index: SearchIndex, chat_model: BaseChatModel | None = None, k: int = 8,
                 llm_timeout_s: float | None = None) -> None:
        """`llm_timeout_s` bounds a whole LLM answer; by default the chat model's own request
        timeout (make_chat_model sets it from settings)."""
        self.index = index
        self.chat_model = chat_model
        self.k = k
        self.llm_timeout_s = chat_timeout(chat_model) if llm_timeout_s is None else llm_timeout_s

    # --- evidence -----------------------------------------------------------------------------

    def _content_tokens(self, question: str) -> dict[str, float]:
        """Query tokens that carry meaning, weighted by how rare they are in the corpus;
        glossary expansions count half, since the user did not write them."""
        lexical = self.index.lexical  # one snapshot: a knowledge update may swap the index meanwhile
        tokens: dict[str, float] = {}
        for weight, text in ((0.5, expansion_terms(question)), (1.0, question)):
            for token in set(lexical.tokenizer.tokenize(text)):
                if _HIRAGANA_ONLY.match(token):
                    continue
                # A word found nowhere in the corpus (English against Japanese slides) would carry
                # the top idf and make every English answer look weak; it counts as a common word.
                idf = lexical.idf(token) if lexical.document_frequency(token) else _UNSEEN_IDF
                tokens[token] = weight * idf
        return tokens

    def _tokens(self, text: str) -> set[str]:
        return set(self.index.lexical.tokenizer.tokenize(text))

    @staticmethod
    def _coverage(weights: dict[str, float], present: Collection[str]) -> float:
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 0.0

    def _confident(self, weights: dict[str, float], hits: list[Hit]) -> bool:
        if not hits:
            return False
        # The lexical index already holds each passage's tokens; no need to tokenize them again (unless a
        # knowledge update swapped the index between the search and now).
        lexical = self.index.lexical
        best = max(self._coverage(weights, lexical.terms(h.chunk.id) if h.chunk.id in lexical
                                  else self._tokens(h.chunk.search_text)) for h in hits[:3])
        top_dense = max((h.dense or 0.0) for h in hits[:3])
        # Calibrated on hand-written on- and off-topic questions (not the eval set): off-topic
        # questions can share a word with the corpus ("capital"), but then the dense match stays low.
        return (best >= 0.5 and top_dense >= 0.78) or (best >= 0.35 and top_dense >= 0.83)

    # --- extractive ---------------------------------------------------------------------------

    def _sentence_score(self, question: str, weights: dict[str, float], sentence: str, context: str,
                        rank: int) -> float:
        """How well a sentence answers: it shares the question's rare terms (itself or with the line
        before it, which often names the program), says something the question does not, and has
        the kind of fact the question asks for (an amount, a date, a count)."""
        tokens = self._tokens(sentence)
        own = self._coverage(weights, tokens)
        with_context = self._coverage(weights, self._tokens(context + sentence))
        novel = len({t for t in tokens if t not in weights and not _HIRAGANA_ONLY.match(t)})
        informative = 0.25 + 0.75 * min(1.0, novel / 8)
        if sentence.startswith("#"):
            informative *= 0.5
        field = _RECORD_FIELD.match(sentence)
        if field and not _FIELD_QUESTIONS[field.group(1)].search(question):
            # Structured fields (who, stage, modality) answer only questions about them.
            informative *= 0.6
        score = (0.25 * own + 0.75 * with_context) * informative + 0.08 / (rank + 1)
        if _ASKS_AMOUNT.search(question) and _AMOUNT.search(sentence):
            score += 0.3
        if _ASKS_TIME.search(question) and _DATE.search(sentence):
            score += 0.25
        if _ASKS_STAGE.search(question) and _STAGE_WORDS.search(sentence):
            score += 0.25
        counter = _COUNTER.search(question)
        if counter and re.search(r"\d[\d,.]*\s*[万千億]?\s*" + re.escape(counter.group(1)), sentence):
            score += 0.4
        elif _ASKS_COUNT.search(question) and _NUMBER.search(sentence):
            score += 0.15
        return score

    def _extract(self, question: str, weights: dict[str, float], hits: list[Hit],
                 language: Language) -> list[tuple[str, int]]:
        scored: list[tuple[float, str, int]] = []
        for rank, hit in enumerate(hits[:5]):
            lines = [m.group().strip(" 　-・•◆▶➢✓") for m in _SENTENCE.finditer(hit.chunk.text)]
            # A record states facts about the thing named on its first line; a slide about its heading.
            subject = lines[0] if hit.chunk.kind != "document" and lines else ""
            previous = ""
            for sentence in lines:
                if len(sentence) < 6:
                    previous = sentence or previous
                    continue
                context = f"{subject} {previous}" if sentence != subject else previous
                score = self._sentence_score(question, weights, sentence, context, rank)
                scored.append((score, _clean(sentence), rank + 1))
                previous = sentence
        if not scored:
            return []
        scored.sort(key=lambda item: -item[0])
        best = scored[0][0]
        chosen: list[tuple[str, int]] = []
        length = 0
        for score, sentence, n in scored:
            if score < 0.6 * best or len(chosen) == 3:
                break
            if chosen and length + len(sentence) > 420:
                continue
            if any(near_duplicate(sentence, s, 0.7) for s, _ in chosen):
                continue
            chosen.append((sentence, n))
            length += len(sentence)
        if language == "en" and not any(_JAPANESE.search(s) for s, _ in chosen):
            # An English answer still shows the source's own (Japanese) wording.
            japanese = next(((s, n) for score, s, n in scored if _JAPANESE.search(s) and score >= 0.4 * best), None)
            if japanese:
                chosen.append(japanese)
        return chosen

    def _extractive_answer(self, question: str, language: Language, weights: dict[str, float],
                           hits: list[Hit], confident: bool) -> str:
        if not hits:
            return WEAK_NOTE[language]
        sentences = self._extract(question, weights, hits, language)
        body = "\n".join(f"{s} [{n}]" for s, n in sentences)
        if not confident:
            return f"{WEAK_NOTE[language]}\n{CLOSEST[language]}\n{body}"
        lead = EXTRACTIVE_LEAD[language]
        return f"{lead}\n{body}" if lead else body

    # --- LLM ----------------------------------------------------------------------------------

    def _llm_answer(self, question: str, language: Language, hits: list[Hit]) -> str:
        assert self.chat_model is not None
        system, human = (ANSWER_SYSTEM_JA, ANSWER_HUMAN_JA) if language == "ja" else (ANSWER_SYSTEM_EN, ANSWER_HUMAN_EN)
        prompt = ChatPromptTemplate.from_messages([("system", system), ("human", human)])
        chain = prompt | self.chat_model | StrOutputParser()
        passages = "\n\n".join(f"[{i}] {h.chunk.title}（{h.chunk.source}）\n{h.chunk.text}" for i, h in enumerate(hits, 1))
        # An uploaded document must not be able to close the quoted-material block and speak as the prompt.
        passages = re.sub(r"</?\s*passages\s*>", "[passages]", passages, flags=re.IGNORECASE)
        try:
            text = within(self.llm_timeout_s, lambda: chain.invoke({"question": question, "passages": passages}))
        except LLMError:
            raise
        except Exception as exc:  # provider errors come in many types (HTTP, timeout, parsing)
            raise LLMError(f"chat model failed: {type(exc).__name__}: {exc}") from exc
        text = (text or "").strip()
        if not text:
            raise LLMError("chat model returned an empty answer")
        return text

    # --- entry point --------------------------------------------------------------------------

    def ask(self, question: str, *, filters: Filters | None = None) -> Answer:
        language = detect_language(question)
        notes = []
        query = question.strip()
        if len(query) > MAX_QUESTION_CHARS:
            query = query[:MAX_QUESTION_CHARS]
            notes.append(TRUNCATED_NOTE[language])
        hits = self.index.search(query, k=self.k, filters=filters) if query else []
        weights = self._content_tokens(query)
        confident = self._confident(weights, hits)
        citations = [
            Citation(n=i, id=h.chunk.id, kind=h.chunk.kind, title=h.chunk.title, source=h.chunk.source,
                     text=h.chunk.text, score=round(h.score, 6))
            for i, h in enumerate(hits, 1)
        ]
        mode = "extractive"
        if self.chat_model is not None and confident:
            try:
                text = self._llm_answer(query, language, hits)
                mode = "llm"
            except LLMError as exc:
                log.warning("falling back to an extractive answer: %s", exc)
                notes.append(LLM_FALLBACK_NOTE[language])
                text = self._extractive_answer(query, language, weights, hits, confident)
        else:
            text = self._extractive_answer(query, language, weights, hits, confident)
        if notes:
            text = "\n".join([*notes, text])
        return Answer(question=question, answer=text, confident=confident, citations=citations,
                      language=language, mode=mode, notes=notes)
