"""Cited answers, in one pipeline: understand -> gather evidence -> compose -> cite.

- Understand (retrieval/understand.py): language, intent, the things named, the attribute asked.
- Evidence: the named records' structured fields with their source quotes, and sentences of the
  hybrid-search passages picked by meaning (stored sentence vectors) as well as by words. Curated
  records' notes are never quoted: quotes come from the government's documents.
- Compose (retrieval/compose.py): a lead sentence that names the thing and states the fact, in the
  question's language, then the source's own wording as evidence.
- Cite (retrieval/cite.py): deck title, date and section; only what the text cites is marked cited.

Confidence means "the question was understood and the evidence states the asked fact"; it does not
depend on one embedding model's similarity values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from core.settings import Settings
from knowledge.loader import KnowledgeBase
from knowledge.normalize import fold_name, nfkc, squash
from knowledge.schema import CDMO, VC, ApplicationRound, Budget, BudgetKind, Program
from prompts import ANSWER_HUMAN_EN, ANSWER_HUMAN_JA, ANSWER_SYSTEM_EN, ANSWER_SYSTEM_JA
from prompts.messages import t
from retrieval import compose as words
from retrieval.chunking import Chunk
from retrieval.cite import Citation, Citations
from retrieval.curated import CuratedAnswers
from retrieval.deadline import chat_timeout, within
from retrieval.entities import Entity, EntityCatalog, startup_name
from retrieval.errors import LLMError
from retrieval.glossary import expansion_terms, in_deck_words
from retrieval.index import Filters, Hit, SearchIndex, near_duplicate
from retrieval.language import Language, detect_language
from retrieval.match import Matcher
from retrieval.sentences import MIN_SENTENCE_CHARS, sentence_pieces, split_sentences
from retrieval.understand import QuestionVocabulary, Turn, Understanding, understand

__all__ = ["Answer", "Answerer", "Citation", "Turn", "make_chat_model"]

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
_HIRAGANA_ONLY = re.compile(r"^[\u3041-\u309f]+$")
# What a sentence must contain to state the attribute asked (no pattern: any sentence on topic will do).
_SIGNALS: dict[str, re.Pattern[str]] = {
    "amount": re.compile(r"\d[\d,.]*\s*(兆|億|万|百万|千)?\s*円|\d[\d,.]*\s*億"),
    "rate": re.compile(r"\d+\s*/\s*\d+|定額|半額|\d+\s*%|\d+\s*割|分の"),
    "cap": re.compile(r"(上限|当たり|あたり|最大|まで).{0,20}\d|\d.{0,20}(上限|当たり|あたり|最大)"),
    "period": re.compile(
        r"(令和|平成)\s*\d+\s*年度?\s*[～〜~-]|\d+\s*年(間|以内)|\d{4}\s*年?\s*[～〜~\-–]\s*\d{4}|期間"
    ),
    "date": re.compile(r"(令和|平成)\s*\d+\s*年|\d{4}\s*年|\d+\s*月\s*\d*\s*日?|R\d+\.\d+"),
    "count": re.compile(r"\d"),
    "target": re.compile(r"\d"),
    "chair": re.compile(r"議長|座長|大臣|委員長"),
    "people": re.compile(r"サポーター|専門家|コーディネーター|メンター|アドバイザー|担当者|職員|人材|経験者"),
    "eligibility": re.compile(r"対象|要件|条件|限る|申請|応募|できる"),
    "rounds": re.compile(r"第\s*\d+\s*回|応募期間|採択"),
    "change": re.compile(r"[（(]\s*\d[\d,.]*\s*億?円?\s*[）)]|前年度|増"),
}
_MIN_COVERAGE = 0.34
_MIN_FIT_RELEVANCE = 0.25
# 「補助率と対象」 asks two things; 「応募期間はいつ」 asks one thing in words of three attributes.
_SECOND_ASKS = frozenset({"eligibility", "amount", "rate", "stages", "ministry", "period"})
_ONE_ASK = frozenset({"rounds", "period", "date"})
_UNSEEN_IDF = 5.0  # as rare as a word can be: no passage has it
_QUOTE_CHARS = 220
_KANA = re.compile(r"[\u3041-\u309f]")
_YEAR = re.compile(r"(令和|平成)\s*\d+\s*年|\d{4}\s*年|R\d+\.")
_KATAKANA_NAME = re.compile(r"[\u30a0-\u30ffー]{4,}")


@dataclass
class Answer:
    question: str
    answer: str
    confident: bool
    citations: list[Citation]
    language: Language = "ja"
    mode: str = "extractive"
    notes: list[str] = field(default_factory=list)
    # What the question asked for (fact, fit, compare, list, thanks, clarify, out_of_scope).
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
    """The chat model named in settings, via LangChain's init_chat_model; None means composed answers only."""
    if not settings.llm.model:
        return None
    from langchain.chat_models import init_chat_model

    provider, colon, model_name = settings.llm.model.partition(":")
    if not colon:
        # Settings admit a bare model name only with llm_base_url: an OpenAI-compatible endpoint.
        provider, model_name = "openai", settings.llm.model
    # No retries: each would add up to another timeout, and the composed answer is a good fallback.
    kwargs: dict[str, Any] = {"timeout": settings.llm.timeout_s, "max_retries": 0, "temperature": 0}
    if settings.llm.base_url:
        kwargs["base_url"] = settings.llm.base_url
    if settings.llm.api_key:
        kwargs["api_key"] = settings.llm.api_key.get_secret_value()
    return init_chat_model(model_name, model_provider=provider, **kwargs)


@dataclass
class _Draft:
    """An answer being composed: its lines, the structured facts behind it, and whether it states the fact."""

    lines: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)  # for the LLM: plain statements with their citation numbers
    confident: bool = False
    referred: bool = False  # the text already points to a supporter

    def add(self, line: str) -> None:
        if line:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Sentence:
    text: str
    chunk_id: str
    score: float
    coverage: float
    signal: bool
    own: float = 0.0  # coverage by the sentence's own words, without the line before it
    row: bool = False  # a table row: its header above says what its numbers are
    names_entity: bool = False  # the line (or the one above it) names the thing asked about


class Answerer:
    def __init__(
        self,
        *,
        index: SearchIndex,
        kb: KnowledgeBase | None = None,
        matcher: Matcher | None = None,
        chat_model: BaseChatModel | None = None,
        k: int = 8,
        llm_timeout_s: float | None = None,
        curated: CuratedAnswers | None = None,
    ) -> None:
        """`kb` lets the answer read the records' structured fields (else it quotes passages only);
        `matcher` answers "which support fits me" questions. `llm_timeout_s` bounds a whole LLM answer; by
        default the chat model's own request timeout (make_chat_model sets it from settings). `curated`
        gives a supporter's curated answer first when the question asks what one answers."""
        self.index = index
        self.curated = curated
        self.kb = kb
        self.matcher = matcher
        self.chat_model = chat_model
        self.k = k
        self.llm_timeout_s = chat_timeout(chat_model) if llm_timeout_s is None else llm_timeout_s
        self._catalogs: dict[int, EntityCatalog] = {}
        self._squashed: dict[str, str] = {}
        self._folded: dict[str, str] = {}
        self._ordinals: dict[tuple[str, Any], Any] = {}
        self._ordinals_of: Any = None

    # --- entry point --------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
        kb: KnowledgeBase | None = None,
        matcher: Matcher | None = None,
    ) -> Answer:
        kb = kb or self.kb
        matcher = matcher or self.matcher
        notes: list[str] = []
        query = question.strip()
        language = detect_language(query)
        if len(query) > MAX_QUESTION_CHARS:
            query = query[:MAX_QUESTION_CHARS]
            notes.append(t("answer_truncated_note", language, max_chars=MAX_QUESTION_CHARS))
        catalog = self._catalog(kb)
        u = understand(query, catalog=catalog, history=history)
        u.said = frozenset(_plain(line) for turn in history for line in turn.answer.splitlines() if line.strip())
        search_text = query
        if u.resolved_from_history and u.entity:
            search_text = f"{u.entity.name} {query}"
        vector = self.index.embedder.embed_query(search_text) if search_text else None
        curated = self._curated(question, query, language, notes, u, kb, vector, catalog)
        if curated is not None:
            return curated
        hits = self.index.search(search_text, k=self.k, filters=filters, query_vector=vector) if search_text else []
        hits = self._named_first(hits, u, filters)
        citations = Citations(hits=hits, lexical=self.index.lexical, kb=kb, language=language, squashed=self._squashed)
        draft = self._compose(u, hits, citations, vector, kb, matcher, history)
        text = draft.text
        mode = "extractive"
        if self.chat_model is not None and draft.confident and u.intent in ("fact", "compare", "fit"):
            try:
                text = self._llm_answer(query, language, draft, citations)
                mode = "llm"
            except LLMError as exc:
                log.warning("falling back to the composed answer: %s", exc)
                notes.append(t("answer_llm_fallback_note", language))
        if notes:
            text = "\n".join([*notes, text])
        cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text) if int(n) <= len(citations.items)})
        return Answer(
            question=question,
            answer=text,
            confident=draft.confident,
            citations=citations.items,
            language=language,
            mode=mode,
            notes=notes,
            intent=u.intent,
            cited=cited,
        )

    def _curated(
        self,
        question: str,
        query: str,
        language: Language,
        notes: list[str],
        u: Understanding,
        kb: KnowledgeBase | None,
        vector: np.ndarray | None,
        catalog: EntityCatalog | None,
    ) -> Answer | None:
        """A supporter's curated answer, when one answers this question (a follow-up that leans on the
        conversation is left to the pipeline, which reads the conversation)."""
        if self.curated is None or kb is None or u.resolved_from_history or not query:
            return None
        match = self.curated.find(query, kb=kb, vector=vector, catalog=catalog)
        if match is None:
            return None
        citations = Citations(hits=[], lexical=self.index.lexical, kb=kb, language=language, squashed=self._squashed)
        reply = self.curated.reply(match, language=language, kb=kb, citations=citations)
        text = "\n".join([*notes, reply.text])
        return Answer(
            question=question,
            answer=text,
            confident=True,
            citations=reply.citations,
            language=language,
            mode="curated",
            notes=[*notes, *reply.notes],
            intent="curated",
            cited=reply.cited,
        )

    def _named_first(self, hits: list[Hit], u: Understanding, filters: Filters | None) -> list[Hit]:
        """A question that names a program, VC or CDMO is best served first by that record's own passage."""
        mention = u.mentions[0] if u.mentions else None
        if (
            mention is None
            or mention.entity.record is None
            or not (mention.exact or mention.score >= 0.65)
            or (filters and not filters.empty)
        ):
            return hits
        origin = mention.entity.record.id
        lexical = self.index.lexical
        own = next((h for h in hits if h.chunk.origin == origin and h.chunk.kind != "document"), None)
        if own is None:
            chunk = next((c for c in lexical.chunks() if c.origin == origin and c.kind != "document"), None)
            if chunk is None:
                return hits
            own = Hit(chunk=chunk, score=hits[0].score if hits else 0.0)
            hits = hits[: max(0, self.k - 1)]
        return [own, *(h for h in hits if h is not own)]

    def _catalog(self, kb: KnowledgeBase | None) -> EntityCatalog | None:
        if kb is None:
            return None
        catalog = self._catalogs.get(id(kb))
        if catalog is None or catalog.kb is not kb:
            catalog = EntityCatalog(kb)
            self._catalogs = {id(kb): catalog}  # one knowledge snapshot at a time
        return catalog

    # --- compose, by intent -------------------------------------------------------------------

    def _compose(
        self,
        u: Understanding,
        hits: list[Hit],
        citations: Citations,
        vector: np.ndarray | None,
        kb: KnowledgeBase | None,
        matcher: Matcher | None,
        history: Sequence[Turn],
    ) -> _Draft:
        lang = u.language
        draft = _Draft()
        if u.intent == "thanks":
            draft.add(t("answer_thanks", lang))
            draft.confident = True
            return draft
        if u.intent == "clarify":
            draft.add(t("answer_clarify", lang))
            examples = self._likely_programs(u, hits, kb)
            if examples:
                draft.add(t("answer_clarify_examples", lang, names=words.join(examples, lang)))
            return draft
        if u.intent == "fit":
            self._fit(u, hits, citations, kb, matcher, draft)
        elif u.intent == "compare":
            self._compare(u, hits, citations, vector, draft)
        elif u.intent == "list" and kb is not None:
            self._list(u, kb, citations, draft)
            if not draft.lines:
                self._fact(u, hits, citations, vector, draft)
        else:
            self._fact(u, hits, citations, vector, draft)
        if not draft.confident and not draft.referred:
            draft.add(t("answer_supporter", lang))
        self._not_again(draft, history, lang)
        return draft

    @staticmethod
    def _not_again(draft: _Draft, history: Sequence[Turn], language: str) -> None:
        """A thread never gets the same answer twice: the lead already given is not given again."""
        if not draft.lines or not history:
            return
        given = {_plain(line) for turn in history for line in turn.answer.splitlines() if line.strip()}
        if _plain(draft.lines[0]) in given:
            draft.lines = [t("answer_repeat", language)]
            draft.confident = False
            return
        # What is known, or a quote, already said in the thread is not said again.
        draft.lines = [
            draft.lines[0],
            *(line for line in draft.lines[1:] if _plain(line) not in given or line == t("answer_supporter", language)),
        ]

    # --- facts --------------------------------------------------------------------------------

    def _fact(
        self, u: Understanding, hits: list[Hit], citations: Citations, vector: np.ndarray | None, draft: _Draft
    ) -> None:
        lang = u.language
        entity = u.entity
        if entity is None:
            unknown = self._unknown_name(u)
            if unknown:
                draft.add(t("answer_unknown_thing", lang, name=unknown))
                u.intent = "out_of_scope"
                return
        # 「補助率と対象を教えて」 asks two things: each one the record holds is answered.
        if entity is not None and self._structured(u, entity, citations, draft, attribute=u.attribute):
            second = u.attributes[1] if len(u.attributes) > 1 else None
            if draft.confident and second in _SECOND_ASKS and not {u.attribute, second} <= _ONE_ASK:
                self._structured(u, entity, citations, draft, attribute=second, first=False)
            elif draft.confident and "coverage" in u.attributes[1:] and isinstance(entity.record, Program):
                # "What does it fund, and at what rate?": the rate, then what it is for.
                record = entity.record
                summary = record.summary_en if u.language == "en" and record.summary_en else record.summary_ja
                draft.lines.insert(1, _first_sentence(summary, u.language, limit=260))
            return
        if (
            entity is not None
            and u.attribute in (None, "coverage")
            and entity.kind != "startup"
            and (u.language == "en" or self._about_itself(u, entity))
            and self._describe(u, entity, citations, draft)
        ):
            return
        passages = self._passages(entity, hits, citations)
        if not passages and entity is None and vector is not None:
            # An English question finds the records' English summaries first; the facts are in the decks.
            passages = [
                h.chunk
                for h in self.index.search(u.question, k=5, filters=Filters(kind="document"), query_vector=vector)
            ]
        chosen = self._sentences(u, entity, passages, vector, citations)
        name = _display(u, entity) if entity else ""
        if chosen and self._states_fact(u, chosen[0]):
            draft.confident = True
            # A second quote only when it is about the thing too, not a neighbouring line that shares a word.
            rest = [s for s in chosen[1:2] if self._states_fact(u, s) and (s.names_entity or s.own >= 0.5)]
            first = chosen[0]
            n = citations.cite_id(first.chunk_id)
            if lang == "ja":
                draft.add(
                    t("answer_quoted" if name else "answer_quoted_plain", lang, name=name, quote=first.text) + f" [{n}]"
                )
            else:
                # Figures worded in English where the signal is a figure (an amount, a year), not a bare digit.
                figures = (
                    words.english_values(first.text, _SIGNALS.get(u.attribute or ""))
                    if u.attribute in ("amount", "date", "period", "rate")
                    else []
                )
                lead = t("answer_quoted_lead" if name else "answer_quoted_plain_lead", lang, name=name)
                if figures:
                    lead = lead.rstrip(":") + f" ({words.join(figures, lang)}):"
                draft.add(lead)
                rest = [first, *rest]
            for sentence in rest:
                draft.add(f"> 「{sentence.text}」 [{citations.cite_id(sentence.chunk_id)}]")
            draft.facts += [
                f"{s.text} [{citations.cite_id(s.chunk_id)}]" for s in [first, *rest[1 if lang == "en" else 0 :]]
            ]
            return
        what = self._attribute_words(u)
        draft.add(t("answer_not_stated", lang, name=name, what=what) if name else t("answer_not_stated_plain", lang))
        u.intent = "out_of_scope" if u.intent == "fact" else u.intent
        known = self._known(entity, lang, citations)
        if known:
            draft.add(t("answer_known", lang))
            for line in known:
                draft.add(line)
        elif chosen and chosen[0].own >= 0.5:
            sentence = chosen[0]
            draft.add(t("answer_known", lang))
            draft.add(f"> 「{sentence.text}」 [{citations.cite_id(sentence.chunk_id)}]")

    def _describe(self, u: Understanding, entity: Entity, citations: Citations, draft: _Draft) -> bool:
        """「BTEPって何ですか」: what the thing is, in the record's summary, with the source's own words."""
        record = entity.record
        lang = u.language
        if isinstance(record, Program):
            summary = record.summary_en if lang == "en" and record.summary_en else record.summary_ja
        elif isinstance(record, CDMO):
            summary = record.services_ja or ""
        else:
            return False  # a VC is listed, not described; a document-only thing has no summary
        if not summary:
            return False
        name = _display(u, entity)
        first = _first_sentence(summary, lang, limit=260)
        # 「MEDISOは、…」: the summary often opens with the name already.
        for said in (entity.name, *getattr(record, "aliases", [])):
            if lang == "ja" and said and first.startswith(f"{said}は"):
                first = first[len(said) + 1 :].lstrip("、")
        lead = f"{name}: {first}" if lang == "en" else f"{name}は、{first}"
        if _plain(lead) in u.said:
            return False  # the thread heard what it is; a narrower question gets the source's own lines
        quoted: list[tuple[str, int]] = []
        # The source's own sentence that the lead sums up first, then its other prose (not budget lines).
        lead_grams = _grams(record.summary_ja if isinstance(record, Program) else first)
        prose = sorted(
            record.sources, key=lambda src: (-len(_grams(src.quote) & lead_grams), -len(_KANA.findall(src.quote)))
        )
        for source in prose[:6]:
            found = citations.sentence_with(source.quote, source.document)
            if found and len(found[0]) > 20 and all(found[0] != q for q, _ in quoted):
                quoted.append(found)
        draft.add(lead + (f" [{quoted[0][1]}]" if quoted else ""))
        for quote, n in quoted[:2]:
            draft.add(f"> 「{_short(quote)}」 [{n}]")
        draft.facts.append(draft.lines[0])
        draft.confident = True
        return True

    def _attribute_words(self, u: Understanding) -> str:
        names = {
            "ja": {
                "cap": "上限額",
                "rate": "補助率",
                "amount": "金額",
                "eligibility": "対象・要件",
                "period": "期間",
                "rounds": "公募の日程",
                "date": "日付",
                "count": "件数",
                "target": "目標",
                "chair": "担当",
                "change": "前年度との比較",
                "stages": "開発段階",
                "ministry": "所管",
                "backer": "出資したVC",
                "people": "担当する人",
                "coverage": "内容",
            },
            "en": {
                "cap": "a cap",
                "rate": "a subsidy rate",
                "amount": "that amount",
                "eligibility": "eligibility requirements",
                "period": "a period",
                "rounds": "that round",
                "date": "a date",
                "count": "that number",
                "target": "that target",
                "chair": "who chairs it",
                "change": "a year-on-year change",
                "stages": "stages",
                "ministry": "a ministry",
                "backer": "a backing VC",
                "coverage": "that",
                "people": "who provides it",
            },
        }[u.language]
        if u.language == "ja" and u.attribute:
            # The user's own word for it (「控除率」), when the vocabulary has it.
            terms = QuestionVocabulary.default().attributes.get(u.attribute)
            said = [
                t
                for t in (terms.found(u.question) if terms else [])
                if re.fullmatch(r"[\u4e00-\u9fff\u30a0-\u30ff]{2,}", t)
            ]
            if said:
                return max(said, key=len)
        return names.get(u.attribute or "", "この点" if u.language == "ja" else "this")

    def _about_itself(self, u: Understanding, entity: Entity) -> bool:
        """「MEDISOではどのような相談ができますか」: what the question asks beyond the name is what the thing is
        about (its summary says it), so the answer is what it is."""
        beyond = self._weights(u.content_beyond(entity), None)
        if not beyond:
            return True
        record = entity.record
        summary = f"{getattr(record, 'summary_ja', '') or ''} {getattr(record, 'services_ja', '') or ''}"
        tokens = set(self.index.lexical.tokenizer.tokenize(summary))
        return sum(w for t, w in beyond.items() if t in tokens) / sum(beyond.values()) >= 0.99

    def _structured(
        self,
        u: Understanding,
        entity: Entity,
        citations: Citations,
        draft: _Draft,
        *,
        attribute: str | None,
        first: bool = True,
    ) -> bool:
        """The asked attribute from the record's own fields, with the source quote that states it."""
        lang = u.language
        record = entity.record
        if record is None:
            return False
        name = _display(u, entity)

        def quote_for(*needles: str) -> tuple[str, int] | None:
            for source in record.sources:
                text = squash(source.quote)
                if any(squash(n) in text for n in needles if n):
                    found = citations.sentence_with(source.quote, source.document)
                    if found:
                        return found
            return None

        # English words never stand in the Japanese quotes; an English question is held to the field it asks.
        beyond = self._weights(u.content_beyond(entity), None) if lang == "ja" else {}
        names = " ".join([*_names(entity), entity.name_en or ""])

        def state(lead: str, *needles: str) -> bool:
            found = quote_for(*needles)
            if beyond:
                # The question asks about more than the field holds (「民間からの寄附は」 is not the budget):
                # the field answers only when its quote covers that too.
                tokens = set(self.index.lexical.tokenizer.tokenize(f"{names} {found[0] if found else ''} {lead}"))
                if sum(w for t, w in beyond.items() if t in tokens) / sum(beyond.values()) < _MIN_COVERAGE:
                    return False
            draft.confident = True
            if found:
                quote, n = found
                draft.add(f"{lead} [{n}]")
                draft.add(f"> 「{_short(quote)}」 [{n}]")
                draft.facts.append(f"{lead} [{n}]")
            else:
                draft.add(lead)
                draft.facts.append(lead)
            return True

        if (
            first
            and entity.kind == "startup"
            and entity.investment is not None
            and isinstance(record, VC)
            and (attribute == "backer" or (attribute is None and not u.content_beyond(entity)))
        ):
            investment = entity.investment
            vc = (
                f"{record.name_en or record.name} ({record.name})"
                if lang == "en" and record.name_en and record.name_en != record.name
                else record.name
            )
            round_text = words.round_name(investment.round, "", lang)
            if investment.announced:
                round_text += t("answer_backer_announced", lang, date=words.date_text(investment.announced, lang))
            lead = t(
                "answer_backer" if investment.round else "answer_backer_no_round",
                lang,
                startup=investment.startup,
                vc=vc,
                round=round_text,
            )
            found = None
            for source in investment.sources:
                n = citations.cite_quote(source.quote, source.document)
                if n:
                    found = (source.quote, n)
                    break
            draft.confident = True
            draft.add(f"{lead} [{found[1]}]" if found else lead)
            if found:
                draft.add(f"> 「{found[0]}」 [{found[1]}]")
            draft.facts.append(draft.lines[0])
            return True
        if first and isinstance(record, CDMO) and record.facilities:
            return self._facilities(u, record, name, citations, draft)
        if not isinstance(record, Program):
            return False
        if attribute == "amount" and record.budgets and "change" not in u.attributes:
            budget = self._budget(record, u)
            lead = words.budget_sentence(name, budget, lang)
            if not state(lead, budget.text, *([f"{budget.amount_oku_yen:g}億円"] if budget.amount_oku_yen else [])):
                return False
            others = [words.budget_short(b, lang) for b in record.budgets if b is not budget][:3]
            if others:
                draft.add(t("answer_other_budgets", lang, items=words.join(others, lang)))
            return True
        if attribute == "rate" and record.subsidy_rate:
            rate = (
                record.subsidy_rate
                if lang == "ja"
                else (getattr(record, "subsidy_rate_en", None) or words.english_figures(record.subsidy_rate))
            )
            if lang == "en" and re.match(r"[A-Z][a-z]", rate):
                rate = rate[0].lower() + rate[1:]  # it follows "the subsidy rate is"
            # The quote that states it: one holding the rate's own figures (「2倍」「10/10」「定額」).
            figures = re.findall(r"\d+\s*/\s*\d+|\d+\s*倍|定額|半額|\d+\s*%", record.subsidy_rate)
            return state(t("answer_rate", lang, name=name, rate=rate), record.subsidy_rate, *figures, "補助率")
        if attribute == "period" and record.period:
            period = record.period if lang == "ja" else words.english_figures(record.period)
            years = re.findall(r"(?:令和|平成)\s*\d+\s*年度?", record.period)
            return state(t("answer_period", lang, name=name, period=period), record.period, *years[-1:])
        if attribute == "ministry":
            ministry = words.enum_labels("ministry", [record.ministry], lang)
            if record.agency and record.agency != record.ministry:
                lead = t(
                    "answer_ministry_agency",
                    lang,
                    name=name,
                    ministry=ministry,
                    agency=words.enum_labels("ministry", [record.agency], lang),
                )
            else:
                lead = t("answer_ministry", lang, name=name, ministry=ministry)
            return state(lead, record.name_ja)
        if attribute == "stages" and record.stages:
            return state(
                t("answer_stages", lang, name=name, stages=words.enum_labels("stage", record.stages, lang)),
                "段階",
                "臨床",
            )
        if attribute == "rounds" and record.rounds and (u.round_number or not beyond):
            return self._rounds(u, record, name, citations, draft)
        if attribute == "eligibility" and record.requirements:
            items = getattr(record, "requirements_en", None) if lang == "en" else None
            return state(
                t("answer_requirements", lang, name=name, items=words.join(list(items or record.requirements), lang)),
                *record.requirements,
            )
        return False

    def _facilities(self, u: Understanding, record: CDMO, name: str, citations: Citations, draft: _Draft) -> bool:
        """Where a CDMO's sites are and how large, from the record; one region when the question names it."""
        lang = u.language
        text = fold_name(u.question)
        facilities = [
            f
            for f in record.facilities
            if fold_name(f.region_ja) in text or f.country.lower() in re.findall(r"[a-z]{2}", u.question.lower())
        ] or record.facilities
        if u.attribute not in (None, "coverage", "amount") or not re.search(
            r"施設|面積|拠点|facilit|sites?\b|floor area", u.question.lower()
        ):
            return False
        parts = []
        for f in facilities:
            area = f" {f.area_m2:,.0f} m²" if f.area_m2 is not None else ""
            parts.append(f"{f.region_ja}{area}" if lang == "ja" else f"{f.country}{area}")
        lead = t("answer_facilities", lang, name=name, sites=words.join(parts, lang))
        n = None
        for source in record.sources:
            if any(f"{f.area_m2:,.0f}" in source.quote for f in facilities if f.area_m2):
                n = citations.cite_quote(source.quote, source.document)
                if n:
                    draft.add(f"{lead} [{n}]")
                    draft.add(f"> 「{_short(source.quote)}」 [{n}]")
                    break
        if not n:
            draft.add(lead)
        draft.facts.append(draft.lines[0])
        draft.confident = True
        return True

    @staticmethod
    def _budget(record: Program, u: Understanding) -> Budget:
        budgets = record.budgets
        if u.fiscal_year:
            budgets = [b for b in budgets if b.fiscal_year == u.fiscal_year] or budgets
        text = u.question
        kind_words = (
            (BudgetKind.SUPPLEMENTARY, ("補正", "supplementary")),
            (BudgetKind.INITIAL, ("当初", "initial")),
            (BudgetKind.FUND_TOTAL, ("基金", "総額", "fund")),
            (BudgetKind.REQUEST, ("要求", "request")),
        )
        for kind, cues in kind_words:
            if any(c in text.lower() for c in cues):
                preferred = [b for b in budgets if b.kind is kind]
                if preferred:
                    budgets = preferred
                    break
        order = [
            BudgetKind.REQUEST,
            BudgetKind.INITIAL,
            BudgetKind.SUPPLEMENTARY,
            BudgetKind.FUND_TOTAL,
            BudgetKind.TOTAL,
            BudgetKind.ITEM_REQUEST,
        ]
        return min(budgets, key=lambda b: (-b.fiscal_year, order.index(b.kind)))

    def _rounds(self, u: Understanding, record: Program, name: str, citations: Citations, draft: _Draft) -> bool:
        lang = u.language
        numbered = [(int(m.group(1)), r) for r in record.rounds if (m := re.search(r"(\d+)", r.name))]
        if not numbered:
            return False
        numbered.sort(key=lambda pair: pair[0])
        last_number, last = numbered[-1]
        asked = next((r for n, r in numbered if n == u.round_number), None) if u.round_number else last

        def detail(r: ApplicationRound) -> str:
            parts = []
            if r.opens and r.closes:
                parts.append(
                    t(
                        "answer_round_applications",
                        lang,
                        opens=words.date_text(r.opens, lang),
                        closes=words.date_text(r.closes, lang),
                    )
                )
            if r.announced:
                parts.append(t("answer_round_announced", lang, date=words.date_text(r.announced, lang)))
            return words.join(parts, lang) or r.text

        n = citations.cite_quote(last.text) if asked is None else citations.cite_quote(asked.text)
        mark = f" [{n}]" if n else ""
        if asked is None:
            draft.add(
                t(
                    "answer_round_missing",
                    lang,
                    last=words.round_name(last_number, last.name, lang),
                    asked=words.round_name(u.round_number, "", lang),
                )
            )
            draft.add(
                t(
                    "answer_round",
                    lang,
                    name=name,
                    round=words.round_name(last_number, last.name, lang),
                    detail=detail(last),
                )
                + mark
            )
            u.intent = "out_of_scope"
            return True
        number = next(k for k, r in numbered if r is asked)
        draft.add(
            t("answer_round", lang, name=name, round=words.round_name(number, asked.name, lang), detail=detail(asked))
            + mark
        )
        draft.confident = True
        draft.facts.append(draft.lines[-1])
        return True

    def _known(self, entity: Entity | None, language: str, citations: Citations) -> list[str]:
        """For an attribute the sources do not state: what they do say about the thing (its budget, say)."""
        if entity is None or not isinstance(entity.record, Program):
            return []
        record = entity.record
        lines = []
        if record.budgets:
            budget = max(record.budgets, key=lambda b: b.fiscal_year)
            sentence = words.budget_sentence(entity.display(language), budget, language)
            n = next(
                (
                    citations.cite_quote(s.quote, s.document)
                    for s in record.sources
                    if squash(budget.text) in squash(s.quote)
                ),
                None,
            )
            lines.append(f"- {sentence}" + (f" [{n}]" if n else ""))
        summary = record.summary_en if language == "en" and record.summary_en else record.summary_ja
        if summary:
            lines.append(f"- {_first_sentence(summary, language)}")
        return lines

    def _unknown_name(self, u: Understanding) -> str | None:
        """A startup or company name the question asks about that no source mentions."""
        lexical = self.index.lexical
        if u.attribute != "backer":
            return None
        candidates = _KATAKANA_NAME.findall(u.question)
        candidates += re.findall(r"[A-Z][A-Za-z0-9]+(?:\s+[A-Z][A-Za-z0-9]+)*", u.question)
        for name in candidates:
            folded = fold_name(name)
            if len(folded) < 4 or any(folded in self._fold(c) for c in lexical.chunks()):
                continue
            return name
        return None

    def _fold(self, chunk: Chunk) -> str:
        text = self._folded.get(chunk.id)
        if text is None:
            text = self._folded[chunk.id] = fold_name(chunk.text)
        return text

    # --- sentences ----------------------------------------------------------------------------

    def _passages(self, entity: Entity | None, hits: list[Hit], citations: Citations) -> list[Chunk]:
        """Document passages to quote from: those that name the thing (the search's first), then the hits."""
        docs = [h.chunk for h in hits if h.chunk.kind == "document"]
        if entity is None:
            return docs[:5]
        if entity.document is not None:
            # A thing only a document describes: that document's passages.
            own = [c for c in self.index.lexical.chunks() if c.kind == "document" and c.origin == entity.document]
            return own[:14] or docs[:5]
        names = [fold_name(n) for n in _names(entity) if len(fold_name(n)) >= 3]
        sources = entity.investment.sources if entity.investment else (entity.record.sources if entity.record else [])
        quotes = [squash(s.quote) for s in sources]
        naming = [c for c in docs if any(n in self._fold(c) for n in names)]
        for chunk in self.index.lexical.chunks():
            if chunk.kind != "document" or chunk in naming:
                continue
            if any(n in self._fold(chunk) for n in names) or any(q in citations.squashed(chunk) for q in quotes):
                naming.append(chunk)
            if len(naming) >= 14:
                break
        return naming or docs[:5]

    def _header_before(self, chunk: Chunk) -> list[str]:
        """The last lines of the passage before `chunk` in its document, when `chunk` opens on a table row."""
        pieces = sentence_pieces(chunk.text)
        if not pieces or not any(_is_row(p) for p in pieces[:6]):
            return []
        lexical = self.index.lexical
        if self._ordinals_of is not lexical:
            self._ordinals = {
                (c.origin, c.metadata.get("ordinal")): c for c in lexical.chunks() if c.kind == "document"
            }
            self._ordinals_of = lexical
        ordinal = chunk.metadata.get("ordinal")
        header: list[str] = []
        # Up to two passages back: a long table can span three.
        for back in (1, 2):
            previous = self._ordinals.get((chunk.origin, ordinal - back)) if isinstance(ordinal, int) else None
            if previous is None:
                break
            header = sentence_pieces(previous.text)[-15:] + header
            if not any(_is_row(p) for p in sentence_pieces(previous.text)[:6]):
                break
        return header

    def _weights(self, text: str, entity: Entity | None, *, english: bool = False) -> dict[str, float]:
        lexical = self.index.lexical
        text = in_deck_words(text)
        exclude: set[str] = set()
        if entity is not None:
            for name in _names(entity):
                exclude |= set(lexical.tokenizer.tokenize(name))
        weights: dict[str, float] = {}
        for token in set(lexical.tokenizer.tokenize(text)):
            if _HIRAGANA_ONLY.match(token) or token in exclude:
                continue
            if not lexical.document_frequency(token):
                if english:
                    continue  # an English word cannot be looked for in Japanese slides
                # A Japanese word no passage has is asked content the sources lack: it counts, uncovered.
                weights[token] = _UNSEEN_IDF
                continue
            weights[token] = lexical.idf(token)
        return weights

    def _sentences(
        self,
        u: Understanding,
        entity: Entity | None,
        passages: list[Chunk],
        vector: np.ndarray | None,
        citations: Citations,
    ) -> list[_Sentence]:
        lexical = self.index.lexical
        # The words that ask for a narrow attribute (議長, 目標, 上限) are content too: the answer must say them.
        asked = " ".join(
            t
            for name in u.attributes
            if name in ("target", "chair")
            for t in QuestionVocabulary.default().attributes[name].found(u.question.lower())
            if re.search(r"[\u4e00-\u9fff]", t)
        )
        if u.language == "en":
            # The quotes are Japanese: an English question is looked for by its Japanese terms (glossary
            # expansions) and whatever Japanese words and figures it carries.
            basis = " ".join(
                [expansion_terms(u.question), *re.findall(r"[\u3040-\u30ff\u4e00-\u9fff0-9]+", nfkc(u.question))]
            )
        else:
            basis = u.content_beyond(entity) if entity is not None else u.content
        weights = self._weights(f"{basis} {asked}", entity, english=u.language == "en")
        total = sum(weights.values())
        signal = _SIGNALS.get(u.attribute or "")
        names = [fold_name(n) for n in _names(entity) if len(fold_name(n)) >= 3] if entity is not None else []
        raw_names = sorted({nfkc(n) for n in _names(entity)}, key=len, reverse=True) if entity is not None else []
        catalog = self._catalog(citations.kb) if entity is not None else None
        others = [n for n in (catalog.program_names() if catalog else []) if n not in names and len(n) >= 6]
        candidates: list[tuple[str, str, float, float, bool, bool, bool, np.ndarray | None]] = []
        for chunk in passages:
            pieces = sentence_pieces(chunk.text)
            # A table's header may sit in the passage before (slides are cut into passages by length).
            before: list[str] = [chunk.title, *self._header_before(chunk)]
            for piece in pieces:
                if len(piece) < MIN_SENTENCE_CHARS:
                    before.append(piece)  # 「合計」 over a table row: too short to quote, still its context
                    continue
                previous = " ".join(before[-2:])
                # A table row is read with everything above it in the passage (its header rows).
                row = _is_row(piece)
                context = set(lexical.tokenizer.tokenize(" ".join([*before, piece]) if row else f"{previous} {piece}"))
                folded_piece = fold_name(piece)
                if names and not any(n in folded_piece for n in names) and any(o in folded_piece for o in others):
                    before.append(piece)
                    continue  # a line about another program says nothing about this one
                if (
                    signal
                    and not signal.search(piece)
                    and len(before) > 1
                    and len(before[-1]) < 40
                    and signal.search(before[-1])
                    and any(n in folded_piece for n in names)
                ):
                    # The figure stands on the line above (「(R6補正 産投400億円の内数)」 over the program's
                    # name): quote the two lines together.
                    piece = f"{before[-1]} {piece}"
                own = set(lexical.tokenizer.tokenize(piece))
                own_coverage = sum(w for t, w in weights.items() if t in own) / total if total else 0.0
                if total:
                    coverage = sum(w * (0.5 * (t in own) + 0.5 * (t in context)) for t, w in weights.items()) / total
                else:
                    # Nothing asked beyond the thing itself: a line on topic is one that names it, or one
                    # on a slide that does.
                    coverage = (
                        1.0
                        if any(n in fold_name(f"{previous} {piece}") for n in names)
                        else (0.5 if any(n in self._fold(chunk) for n in names) else 0.0)
                    )
                # The figure must be the line's own, not a digit in the program's name (「第３期…計画」).
                unnamed = nfkc(piece)
                for raw in raw_names:
                    unnamed = unnamed.replace(raw, " ")
                has_signal = bool(signal.search(unnamed)) if signal else True
                if row:
                    # A row's own words are figures: the short labels just above it say what they are.
                    labels = [b for b in before[-2:] if len(b) < 15 and not _is_row(b)]
                    if labels:
                        piece = " ".join([*labels, piece])
                named = any(n in fold_name(piece) for n in names)
                candidates.append(
                    (piece, chunk.id, coverage, own_coverage, has_signal, row, named, self.index.sentences.get(piece))
                )
                before.append(piece)
        if signal and any(c[4] for c in candidates):
            # The attribute asked is a figure or a date: only lines that carry one can answer.
            candidates = [c for c in candidates if c[4]]
        if not candidates:
            return []
        # Meaning, by rank among this question's candidates: robust to another embedding model's scale.
        meaning = [float(vec @ vector) if vec is not None and vector is not None else -1.0 for *_, vec in candidates]
        order = sorted(range(len(candidates)), key=lambda i: -meaning[i])
        semantic_rank = {i: 1 - r / len(candidates) for r, i in enumerate(order)}
        scored = []
        for i, (line, chunk_id, coverage, own_coverage, has_signal, row, named, _) in enumerate(candidates):
            bonus = 0.3 if has_signal and signal else 0.0
            if bonus and u.attribute == "date" and not _YEAR.search(line):
                bonus = 0.15  # 「5月22日」 says less than 「令和6年5月22日」
            # A heading shares the question's words and says nothing more: a line that adds words of its own
            # informs (「…相談案件は常勤サポーターが精査」 over 「MEDISOによる相談支援」).
            novel = {t for t in lexical.tokenizer.tokenize(line) if t not in weights and not _HIRAGANA_ONLY.match(t)}
            informative = 0.4 + 0.6 * min(1.0, len(novel) / 12)
            score = (0.55 * coverage + 0.35 * semantic_rank[i]) * informative + bonus + (0.05 if named else 0.0)
            scored.append(_Sentence(_short(line), chunk_id, score, coverage, has_signal, own_coverage, row, named))
        scored.sort(key=lambda s: -s.score)
        # Lines that state what was asked come first; the others only say what is known instead.
        stating = [s for s in scored if self._states_fact(u, s)]
        scored = stating or scored
        chosen: list[_Sentence] = []
        for sentence in scored:
            if chosen and (sentence.score < 0.75 * chosen[0].score or len(chosen) == 2):
                break
            if any(near_duplicate(sentence.text, c.text, 0.7) for c in chosen):
                continue
            chosen.append(sentence)
        return chosen

    @staticmethod
    def _states_fact(u: Understanding, sentence: _Sentence) -> bool:
        if u.attribute in _SIGNALS and not sentence.signal:
            return False
        if u.entity is None:
            # Nothing named that the records know (a program only an uploaded document describes, say): the
            # line with the slide heading and the line before it must say what was asked, the line itself part.
            return sentence.coverage >= 0.6 and sentence.own >= 0.25
        if u.attribute in _SIGNALS and not sentence.row and sentence.coverage < 1.0 and sentence.own < 0.2:
            # The figure must be about what was asked: its own line has to say some of it.
            return False
        return sentence.coverage >= _MIN_COVERAGE

    # --- which support fits -------------------------------------------------------------------

    def _fit(
        self,
        u: Understanding,
        hits: list[Hit],
        citations: Citations,
        kb: KnowledgeBase | None,
        matcher: Matcher | None,
        draft: _Draft,
    ) -> None:
        lang = u.language
        if kb is None:
            self._fact(u, hits, citations, None, draft)
            return
        scores: dict[str, float] = {}
        programs = {p.id: p for p in kb.programs if p.status == "active" and p.category.value != "policy"}
        for rank, hit in enumerate(hits):
            # A slide speaks for the programs it names or whose quoted sentences it holds.
            ids = (
                [hit.chunk.origin]
                if hit.chunk.origin in programs
                else [
                    p.id
                    for p in programs.values()
                    if fold_name(p.name_ja) in self._fold(hit.chunk)
                    or any(len(q.quote) >= 15 and squash(q.quote) in citations.squashed(hit.chunk) for q in p.sources)
                ]
            )
            for pid in ids:
                scores[pid] = scores.get(pid, 0.0) + 1.0 / (rank + 2)
        if matcher is not None:
            try:
                result = matcher.match(u.question)
                if getattr(result, "out_of_scope", False):
                    # Not about health care or life science (a beauty salon, a bakery): nothing here fits, and
                    # the matcher says what to do instead.
                    for note in result.notes:
                        draft.add(note)
                    draft.referred = bool(result.notes)
                    u.intent = "out_of_scope"
                    return
                if not any(r.kind == "program" for r in result.recommendations):
                    # The matcher found nothing for this asker's profile: only a program whose own passage says
                    # much of what the question asks (介護 -> CARISO) still stands; a beauty salon gets none.
                    scores = {
                        pid: v for pid, v in scores.items() if v >= 0.3 or self._relevance(u, pid) >= _MIN_FIT_RELEVANCE
                    }
                for rank, rec in enumerate(r for r in result.recommendations if r.kind == "program"):
                    if rec.id in programs:
                        scores[rec.id] = scores.get(rec.id, 0.0) + 0.8 / (rank + 2)
            except Exception as exc:  # noqa: BLE001 - the search's ranking still answers
                log.warning("matching failed for a fit question, answering from the search: %s", exc)
        top = sorted(scores, key=lambda pid: -scores[pid])[:3]
        if not top:
            draft.add(t("answer_fit_none", lang))
            u.intent = "fit"
            return
        draft.confident = True
        draft.add(t("answer_fit_lead", lang))
        for i, pid in enumerate(top, 1):
            program = programs[pid]
            name = program.name_en if lang == "en" and program.name_en else program.name_ja
            summary = program.summary_en if lang == "en" and program.summary_en else program.summary_ja
            n = next((m for s in program.sources if (m := citations.cite_quote(s.quote, s.document))), None)
            line = t(
                "answer_fit_item",
                lang,
                i=i,
                name=name,
                ministry=words.enum_labels("ministry", [program.ministry], lang),
                reason=_first_sentence(summary, lang),
            )
            draft.add(line + (f" [{n}]" if n else ""))
            draft.facts.append(draft.lines[-1])
        draft.add(t("answer_fit_form", lang))

    def _relevance(self, u: Understanding, record_id: str) -> float:
        """How much of the question's content a record's own passage holds."""
        lexical = self.index.lexical
        chunk_id = next((c.id for c in lexical.chunks() if c.origin == record_id and c.kind != "document"), None)
        if chunk_id is None:
            return 0.0
        basis = expansion_terms(u.question) if u.language == "en" else u.content
        weights = self._weights(basis, None, english=u.language == "en")
        total = sum(weights.values())
        terms = lexical.terms(chunk_id)
        return sum(w for t, w in weights.items() if t in terms) / total if total else 0.0

    # --- comparisons --------------------------------------------------------------------------

    def _compare(
        self, u: Understanding, hits: list[Hit], citations: Citations, vector: np.ndarray | None, draft: _Draft
    ) -> None:
        lang = u.language
        programs: list[Entity] = []
        for e in u.entities:
            if isinstance(e.record, Program) and all(p.record is not e.record for p in programs):
                programs.append(e)
        if len(programs) >= 2:
            a, b = programs[:2]
            draft.add(t("answer_compare_lead", lang, a=a.display(lang), b=b.display(lang)))
            for entity in (a, b):
                record = entity.record
                assert isinstance(record, Program)
                n = next((m for s in record.sources if (m := citations.cite_quote(s.quote, s.document))), None)
                draft.add(t("answer_compare_row", lang, name=entity.display(lang)) + (f" [{n}]" if n else ""))
                rows = [("answer_compare_ministry", words.enum_labels("ministry", [record.ministry], lang))]
                if record.budgets:
                    latest = max(record.budgets, key=lambda x: x.fiscal_year)
                    rows.append(("answer_compare_budget", words.budget_short(latest, lang)))
                rows.append(("answer_compare_who", words.enum_labels("applicant", record.eligible, lang)))
                if record.stages:
                    rows.append(("answer_compare_stages", words.enum_labels("stage", record.stages, lang)))
                rows.append(("answer_compare_support", words.enum_labels("support", record.support, lang)))
                summary = record.summary_en if lang == "en" and record.summary_en else record.summary_ja
                rows.append(("answer_compare_summary", _first_sentences(summary, lang, limit=240)))
                for key, value in rows:
                    draft.add("- " + t(key, lang, value=value))
                draft.facts.append(" / ".join(draft.lines[-len(rows) :]))
            draft.confident = True
            return
        sides = _sides(u.question)
        quoted = []
        for side in sides[:2]:
            line = self._line_about(side, hits, citations)
            if line:
                quoted.append((side, *line))
        if len(quoted) == 2:
            draft.add(t("answer_compare_lead", lang, a=quoted[0][0], b=quoted[1][0]))
            for side, text, n in quoted:
                draft.add(t("answer_compare_side", lang, name=side, quote=f"「{text}」") + f" [{n}]")
                draft.facts.append(draft.lines[-1])
            draft.confident = True
            return
        self._fact(u, hits, citations, vector, draft)

    def _line_about(self, side: str, hits: list[Hit], citations: Citations) -> tuple[str, int] | None:
        """The source line that names `side`, with what follows it (a slide's heading and its points)."""
        key = fold_name(side)
        chunks = [h.chunk for h in hits if h.chunk.kind == "document"] + [
            c for c in self.index.lexical.chunks() if c.kind == "document"
        ]
        for chunk in chunks:
            if key not in self._fold(chunk):
                continue
            lines = split_sentences(chunk.text)
            for i, line in enumerate(lines):
                if key in fold_name(line):
                    text = line
                    for extra in lines[i + 1 : i + 4]:
                        if len(text) + len(extra) > _QUOTE_CHARS:
                            break
                        text += " " + extra
                    return _short(text), citations.cite_chunk(chunk)
        return None

    # --- lists --------------------------------------------------------------------------------

    def _list(self, u: Understanding, kb: KnowledgeBase, citations: Citations, draft: _Draft) -> None:
        lang = u.language
        text = u.question.lower()
        if "vc" in text or "ベンチャーキャピタル" in text:
            from retrieval.profile import extract_profile

            modalities = {m.value for m in extract_profile(u.question).modalities} - {"any"}
            vcs = [v for v in kb.vcs if v.status == "active"]
            if modalities:
                backers = [(v, [i for i in v.investments if modalities & {m.value for m in i.modalities}]) for v in vcs]
                backers = [(v, i) for v, i in backers if i]
                if not backers:
                    draft.add(t("answer_list_none", lang))
                    return
                what = words.enum_labels("modality", sorted(modalities), lang)
                draft.add(t("answer_list_backers", lang, what=what))
                for vc, investments in backers:
                    startups = words.join([i.startup for i in investments], lang)
                    n = next(
                        (m for i in investments for s in i.sources if (m := citations.cite_quote(s.quote, s.document))),
                        None,
                    )
                    draft.add(
                        f"- {vc.name_en if lang == 'en' and vc.name_en else vc.name}: {startups}"
                        + (f" [{n}]" if n else "")
                    )
                draft.add(t("answer_list_backers_note", lang))
                draft.confident = True
                return
            dates = {d.meta.file: d.meta.date for d in kb.documents}
            # The newest list is the one in the newest deck (000 of June 2025 lists 30; 004 of January, 28).
            newest = max(
                (c for v in vcs for c in v.certified_in),
                key=lambda c: (dates.get(c.document), c.document),
                default=None,
            )
            if newest is None:
                return
            listed = [v for v in vcs if any(c.document == newest.document for c in v.certified_in)]
            n = citations.cite_quote(newest.list_title, newest.document)
            as_of = dates.get(newest.document)
            title = (f"as of {as_of:%B %Y}" if as_of else "newest") if lang == "en" else newest.list_title
            draft.add(t("answer_list_vcs", lang, count=len(listed), title=title) + (f" [{n}]" if n else ""))
            draft.add(words.join([v.name_en if lang == "en" and v.name_en else v.name for v in listed], lang))
            draft.confident = True
            return
        if re.search(r"cdmo|cmo|受託|製造委託|委託先|contract manufactur", text):
            from retrieval.profile import extract_profile

            cdmos = [c for c in kb.cdmos if c.status == "active"]
            wanted = {m.value for m in extract_profile(u.question).modalities} - {"any"}
            if wanted:  # 「iPS細胞の…」: those whose modalities the sources give as matching
                cdmos = [c for c in cdmos if wanted & {m.value for m in c.modalities}] or cdmos
            # In Japan first: an asker writing in Japanese usually means a domestic site.
            cdmos.sort(key=lambda c: not any(f.country == "JP" for f in c.facilities))
            draft.add(t("answer_list_cdmos", lang, count=len(cdmos)))
            for cdmo in cdmos:
                sites = words.join([f.region_ja if lang == "ja" else f.country for f in cdmo.facilities], lang)
                n = next((m for src in cdmo.sources if (m := citations.cite_quote(src.quote, src.document))), None)
                draft.add(f"- {cdmo.name}（{sites}）" if lang == "ja" else f"- {cdmo.name} ({sites})")
                if n:
                    draft.lines[-1] += f" [{n}]"
            draft.confident = bool(cdmos)

    # --- likely programs, for a question that names none ----------------------------------------

    def _likely_programs(self, u: Understanding, hits: list[Hit], kb: KnowledgeBase | None) -> list[str]:
        if kb is None:
            return []
        programs = [p for p in kb.programs if p.status == "active"]
        if u.attribute == "rate":
            programs = [p for p in programs if p.subsidy_rate]
        elif u.attribute in ("amount", "change"):
            programs = [p for p in programs if p.budgets]
        by_id = {p.id: p for p in programs}
        ranked = [by_id[h.chunk.origin] for h in hits if h.chunk.origin in by_id]
        ranked += [p for p in programs if p not in ranked]
        lang = u.language
        return [(p.name_en if lang == "en" and p.name_en else p.name_ja) for p in ranked[:3]]

    # --- LLM ----------------------------------------------------------------------------------

    def _llm_answer(self, question: str, language: Language, draft: _Draft, citations: Citations) -> str:
        assert self.chat_model is not None
        system, human = (ANSWER_SYSTEM_JA, ANSWER_HUMAN_JA) if language == "ja" else (ANSWER_SYSTEM_EN, ANSWER_HUMAN_EN)
        prompt = ChatPromptTemplate.from_messages([("system", system), ("human", human)])
        chain = prompt | self.chat_model | StrOutputParser()
        cited = [c for c in citations.items if c.n in set(citations.cited)] or [
            c for c in citations.items if c.kind == "document"
        ][:3]
        facts = "\n".join(f"- {f}" for f in draft.facts)
        passages = "\n\n".join(f"[{c.n}] {c.label}\n{c.text}" for c in cited)
        material = f"Facts:\n{facts}\n\n{passages}"
        # An uploaded document must not be able to close the quoted-material block and speak as the prompt.
        material = re.sub(r"</?\s*passages\s*>", "[passages]", material, flags=re.IGNORECASE)
        try:
            text = within(self.llm_timeout_s, lambda: chain.invoke({"question": question, "passages": material}))
        except LLMError:
            raise
        except Exception as exc:  # provider errors come in many types (HTTP, timeout, parsing)
            raise LLMError(f"chat model failed: {type(exc).__name__}: {exc}") from exc
        text = (text or "").strip()
        if not text:
            raise LLMError("chat model returned an empty answer")
        unsupported = _unsupported_figures(text, material + "\n" + draft.text)
        if unsupported:
            raise LLMError(f"the model's answer states what the evidence does not: {', '.join(unsupported[:5])}")
        return text


def _is_row(line: str) -> bool:
    """A table row: mostly figures ("384 (185) 67 (24) 1,442"), read under its header."""
    chars = [c for c in line if not c.isspace()]
    return bool(chars) and sum(c.isdigit() for c in chars) / len(chars) >= 0.3


def _display(u: Understanding, entity: Entity) -> str:
    """The thing's name in the asker's language, with the short name they used (「医療研究開発革新基盤創成事業（CiCLE）」)."""
    name = entity.display(u.language)
    asked = fold_name(u.question)
    aliases = [a for a in getattr(entity.record, "aliases", []) if len(a) <= 12 and fold_name(a) not in fold_name(name)]
    alias = next((a for a in aliases if fold_name(a) in asked), None)
    if alias is None and u.resolved_from_history:
        # The thread named it before; its short name (an acronym) tells the asker which one this is about.
        alias = next((a for a in aliases if re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,11}", a)), None)
    return f"{name}（{alias}）" if alias and u.language == "ja" else (f"{name} ({alias})" if alias else name)


def _names(entity: Entity) -> list[str]:
    record = entity.record
    if entity.investment is not None:
        return [entity.investment.startup, startup_name(entity.investment.startup)]
    names = [entity.name, *getattr(record, "aliases", [])]
    return [n for n in names if n]


def _grams(text: str) -> set[str]:
    squashed = squash(text)
    return {squashed[i : i + 2] for i in range(len(squashed) - 1)}


def _plain(line: str) -> str:
    """A line as said, whatever its markers: citation numbers, a list dash or a quote mark."""
    return re.sub(r"\s*\[\d+\]", "", line).strip().lstrip("->").strip()


def _short(text: str, limit: int = _QUOTE_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _first_sentence(text: str, language: str, limit: int = 120) -> str:
    text = re.sub(r"\s+", " " if language == "en" else "", text).strip()
    end = re.search(r"(?<=[。])|(?<![Ee]\.g\.)(?<![Ii]\.e\.)(?<!incl\.)(?<!etc\.)(?<=\.)\s(?=[A-Z])", text)
    first = text[: end.start()].strip() if end and end.start() > 10 else text
    return _short(first, limit)


def _first_sentences(text: str, language: str, limit: int) -> str:
    """As many whole sentences as fit in `limit` characters (at least the first)."""
    text = re.sub(r"\s+", " " if language == "en" else "", text).strip()
    parts = re.split(r"(?<=[。])|(?<![Ee]\.g\.)(?<![Ii]\.e\.)(?<!incl\.)(?<!etc\.)(?<=\.)\s(?=[A-Z])", text)
    out = ""
    for part in parts:
        if out and len(out) + len(part) > limit:
            break
        out += part if language == "ja" else (" " + part if out else part)
    return _short(out.strip(), limit)


def _sides(question: str) -> list[str]:
    quoted = re.findall(r"[「『\"“]([^」』\"”]{2,})[」』\"”]", question)
    if len(quoted) >= 2:
        return quoted
    acronyms = re.findall(r"[（(]([A-Za-z]{2,})[）)]", question)
    if len(acronyms) >= 2:
        return acronyms
    pair = re.search(r"([^、。\s]{2,}?)と([^、。\s]{2,}?)(?:って|の違い|は|で|、)", question)
    return [pair.group(1), pair.group(2)] if pair else []


_FIGURE = re.compile(r"\d[\d,.]*")


def _unsupported_figures(text: str, evidence: str) -> list[str]:
    """Numbers in the model's answer that appear nowhere in the evidence (citation markers aside)."""
    body = re.sub(r"\[\d+\]", "", text)
    known = {f.replace(",", "") for f in _FIGURE.findall(squash(evidence))}
    return [
        f
        for f in _FIGURE.findall(squash(body))
        if f.replace(",", "").rstrip(".") not in known and f.replace(",", "") not in known
    ]
