"""Block Kit builders: pure functions from our objects to Slack's JSON, tested directly.

Everything a user or a record wrote is escaped here; the builders never call Slack.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.slack.messages import EXAMPLE_QUESTIONS, t
from bot.slack.sources import SourceCatalog
from bot.slack.text import escape_answer, escape_mrkdwn, shorten, slack_to_plain, split_for_sections
from knowledge.labels import label
from knowledge.schema import Applicant, Modality, Stage, Support
from retrieval.answer import Answer, Citation
from retrieval.match import MatchResult, Recommendation
from retrieval.profile import Profile

Block = dict[str, Any]

# action_id / callback_id values: the listeners register on these.
FEEDBACK = "kk_feedback"  # Slack's feedback_buttons; the value says up:/down: and the answer
SOURCES = "kk_sources"
DETAILS = "kk_details"
SHARE = "kk_share"
HANDOFF = "kk_handoff"
OPEN_MATCH = "kk_open_match"
TAKE = "kk_take"
RESOLVE = "kk_resolve"
LINK = "kk_link"  # link-out buttons; Slack still sends an action, which we acknowledge
CURATE = "kk_curate"  # 「回答として登録」 on a resolved consultation's card (staff only)
CURATE_GAP = "kk_curate_gap"  # 「回答を書く」 on a gaps-report topic no curated answer covers (staff only)
FEEDBACK_VIEW = "kk_feedback_view"
HANDOFF_VIEW = "kk_handoff_view"
MATCH_VIEW = "kk_match_view"
CURATE_VIEW = "kk_curate_view"

CARDS_PER_KIND = {"program": 3, "vc": 3, "cdmo": 3}
MAX_CARD_SOURCES = 5
SOURCE_QUOTE_CHARS = 600
# The matcher's words for a VC whose sources tie nothing to the profile (retrieval.match, "vc_no_fit").
_NO_FIT = "出資先の開発内容がこのプロフィールに合う"
NEEDS: tuple[Support, ...] = tuple(Support)[:9]  # the needs a founder states (see knowledge.schema.Support)
FEEDBACK_REASONS = {
    "wrong": {"ja": "内容が間違っている", "en": "It is wrong"},
    "outdated": {"ja": "情報が古い", "en": "It is out of date"},
    "irrelevant": {"ja": "質問に答えていない", "en": "It does not answer my question"},
    "sources": {"ja": "出典が不適切・不足", "en": "The sources are wrong or missing"},
    "other": {"ja": "その他", "en": "Something else"},
}
URGENCY = {
    "low": {"ja": "急ぎではない", "en": "Not urgent", "emoji": ":white_circle:"},
    "normal": {"ja": "通常", "en": "Normal", "emoji": ":large_yellow_circle:"},
    "high": {"ja": "至急", "en": "Urgent", "emoji": ":red_circle:"},
}
STATUS_JA = {"open": "未対応", "taken": "対応中", "resolved": "対応済み"}
KIND_LABEL = {
    "program": {"ja": "支援制度", "en": "Program"},
    "vc": {"ja": "認定VC", "en": "Certified VC"},
    "cdmo": {"ja": "CDMO", "en": "CDMO"},
}
KIND_HEADING = {
    "program": {"ja": "支援制度", "en": "Support programs"},
    "vc": {"ja": "認定VC（出資）", "en": "Certified VCs (investment)"},
    "cdmo": {"ja": "CDMO（製造受託）", "en": "CDMOs (contract manufacturing)"},
}
_CITED = re.compile(r"\[(\d{1,2})\]")


def _text(text: str, *, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:75] if len(text) > 75 else text, "emoji": emoji}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": _mrkdwn(text), **extra}


section = _section  # the listeners' name for it


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(x) for x in texts if x][:10]}


def button(label: str, action_id: str, value: str, *, style: str | None = None, url: str | None = None,
           confirm: dict[str, Any] | None = None) -> Block:
    element: Block = {"type": "button", "text": _text(label), "action_id": action_id, "value": value[:2000]}
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    if confirm:
        element["confirm"] = confirm
    return element


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def _safe_url(url: str | None) -> str | None:
    """A link we may put in mrkdwn or a button: http(s), no characters that would break the markup."""
    if not url or not re.match(r"^https?://[^\s<>|]+$", url):
        return None
    return url


def json_metadata(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(text) > 3000:
        raise ValueError("private_metadata over Slack's 3,000 characters")
    return text


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """What a modal of ours carried in private_metadata; {} when it is missing or not ours."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


# --- answers ------------------------------------------------------------------------------------


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


def citation_json(citation: Citation, catalog: SourceCatalog) -> dict[str, Any]:
    """What is stored with an answer: enough to show its sources again (the sources modal, sharing)."""
    return {"n": citation.n, "id": citation.id, "kind": citation.kind, "title": citation.title,
            "source": citation.source, "score": citation.score, "label": citation_label(citation, catalog),
            "text": shorten(citation.text, SOURCE_QUOTE_CHARS)}


def answer_text_blocks(answer: Answer) -> list[Block]:
    return [_section(piece) for piece in split_for_sections(escape_answer(answer.answer)) if piece.strip()]


def sources_line(labels: Sequence[tuple[int, str]], language: str) -> Block:
    """`出典: [1] 骨太特集 · [2] …` in one small line."""
    parts = [f"[{n}] {escape_mrkdwn(shorten(text, 70))}" for n, text in labels]
    return _context(f"*{t('sources', language)}*: " + " · ".join(parts))


def answer_footer_blocks(answer: Answer, *, answer_id: str, catalog: SourceCatalog, notes: Sequence[str] = (),
                         share: bool = False) -> list[Block]:
    """Everything under the answer text: weak-evidence note, the cited sources in one line, notes,
    buttons and Slack's own feedback buttons. A streamed answer gets these when the stream stops."""
    language = answer.language
    blocks: list[Block] = []
    if not answer.confident:
        blocks.append(_context(t("weak_evidence", language)))
    cited = cited_citations(answer)
    if cited:
        blocks.append(sources_line([(c.n, citation_label(c, catalog)) for c in cited], language))
    if notes:
        blocks.append(_context(*(escape_mrkdwn(n) for n in notes)))
    blocks.append(answer_actions(answer_id=answer_id, language=language, sources=bool(cited), share=share,
                                 offer_person=not answer.confident or answer.intent == "out_of_scope"))
    blocks.append(feedback_block(answer_id))
    return blocks


def feedback_block(answer_id: str) -> Block:
    """Slack's native 👍 / 👎 (feedback_buttons in a context_actions block); the value names the answer."""
    return {"type": "context_actions", "block_id": f"kk_feedback_{answer_id}"[:255], "elements": [{
        "type": "feedback_buttons", "action_id": FEEDBACK,
        "positive_button": {"text": _text("👍"), "value": f"up:{answer_id}",
                            "accessibility_label": "役に立った / Helpful"},
        "negative_button": {"text": _text("👎"), "value": f"down:{answer_id}",
                            "accessibility_label": "役に立たなかった / Not helpful"},
    }]}


def answer_actions(*, answer_id: str, language: str, sources: bool = True, share: bool = False,
                   offer_person: bool = False) -> Block:
    """Share (a private answer), the sources, and a person: first and highlighted when the bot could not
    really answer."""
    elements = []
    if offer_person:
        elements.append(button(t("handoff", language), HANDOFF, answer_id, style="primary"))
    if share:
        elements.append(button(t("share", language), SHARE, answer_id, style=None if offer_person else "primary"))
    if sources:
        elements.append(button(t("view_sources", language), SOURCES, answer_id))
    if not offer_person:
        elements.append(button(t("handoff", language), HANDOFF, answer_id))
    return {"type": "actions", "block_id": "kk_answer_actions", "elements": elements}


def answer_blocks(answer: Answer, *, answer_id: str, catalog: SourceCatalog, notes: Sequence[str] = (),
                  lead: str | None = None, share: bool = False) -> list[Block]:
    """A whole answer message; `lead` is an already-escaped line above it (who asked what); `share`
    adds 「チャンネルに共有」 (the answer is private to the asker until then)."""
    blocks: list[Block] = [_context(lead)] if lead else []
    blocks += answer_text_blocks(answer)
    blocks += answer_footer_blocks(answer, answer_id=answer_id, catalog=catalog, notes=notes, share=share)
    return blocks


def answer_fallback_text(answer: Answer) -> str:
    """The notification text of an answer message (one line, escaped, under Slack's limits)."""
    return escape_mrkdwn(shorten(answer.answer, 2900))


def answer_from_record(record: Any) -> Answer:
    """An answer as it was stored (to share it in the channel, or show its sources again)."""
    citations = [Citation(n=int(c.get("n", 0)), id=str(c.get("id", "")), kind=str(c.get("kind", "")),
                          title=str(c.get("title", "")), source=str(c.get("source", "")), text=str(c.get("text", "")),
                          score=float(c.get("score") or 0), label=str(c.get("label", "")))
                 for c in record.citations]
    return Answer(question=record.question, answer=record.answer, confident=record.confident, citations=citations,
                  language="en" if record.language == "en" else "ja", mode=record.mode,
                  cited=sorted(cited_numbers(record.answer)))


def sources_modal(record: Any, *, with_answer: bool = False) -> Block:
    """「出典を見る」: each passage the answer cites, quoted, under its human title; `with_answer` puts
    the answer itself first (the supporters' card shows only its beginning)."""
    language = record.language
    wanted = cited_numbers(record.answer)
    blocks: list[Block] = [_context(escape_mrkdwn(shorten(record.question, 280)))]
    if with_answer:
        blocks += [_section(piece) for piece in split_for_sections(escape_mrkdwn(record.answer)) if piece.strip()]
    for c in record.citations:
        if c.get("n") not in wanted:
            continue
        quote = escape_mrkdwn(shorten(str(c.get("text") or ""), SOURCE_QUOTE_CHARS)).replace("\n", " ")
        blocks.append(_section(f"*[{c.get('n')}] {escape_mrkdwn(shorten(str(c.get('label') or ''), 150))}*\n>{quote}"))
    if not any(b["type"] == "section" and b["text"]["text"].startswith("*[") for b in blocks):
        blocks.append(_section(t("no_sources", language)))
    return {"type": "modal", "title": _text(t("sources_title", language)), "close": _text(t("close", language)),
            "blocks": blocks[:100]}


def apology_blocks(*, reference: str, language: str) -> list[Block]:
    return [_section(t("apology", language, ref=escape_mrkdwn(reference)))]


# --- matchmaking --------------------------------------------------------------------------------


def _is_caveat(reason: str) -> bool:
    return reason.startswith(("注意", "Caveat"))


def _unmarked(text: str) -> str:
    return re.sub(r"\s*\[\d{1,2}(?:,\s*\d{1,2})*\]", "", text).strip()


def fit_words(rec: Recommendation, language: str) -> str:
    """Fit in words, never a score: how many of the reasons are matches, and how many need checking."""
    matched = sum(1 for r in rec.reasons if not _is_caveat(r))
    caveats = len(rec.reasons) - matched
    if language == "ja":
        return f"条件に合う点 {matched}" + (f"・要確認 {caveats}" if caveats else "")
    return f"{matched} point{'s' if matched != 1 else ''} fit" + (f", {caveats} to check" if caveats else "")


def match_cards(result: MatchResult, *, catalog: SourceCatalog, language: str) -> list[dict[str, Any]]:
    """The recommendations shown, as plain data (stored with the answer, so a card can be shared or
    opened in detail later): at most 3 of each kind, CDMOs only when manufacturing is asked, VCs
    whose sources say nothing that ties them to the profile left out."""
    cards: list[dict[str, Any]] = []
    for rec in shown_recommendations(result):
        positive = [r for r in rec.reasons if not _is_caveat(r)]
        # "open to startups" says least about fit: a need, modality or stage that matches says more
        positive.sort(key=lambda r: r.startswith(("対象者", "Eligible")))
        first = rec.citations[0] if rec.citations else None
        cards.append({
            "n": len(cards) + 1, "id": rec.id, "kind": rec.kind, "title": rec.name, "score": rec.score,
            "fit": fit_words(rec, language), "reason": _unmarked(positive[0] if positive else rec.reasons[0])
            if rec.reasons else "",
            "reasons": [_unmarked(r) for r in rec.reasons],
            "source": _document_title(first.source) if first else "",
            "quotes": [{"label": _document_title(c.source), "text": shorten(c.text.replace("**", ""), 400)}
                       for c in rec.citations[:MAX_CARD_SOURCES]],
            "url": _safe_url(catalog.url(rec.id)),
        })
    return cards


def _document_title(source: str) -> str:
    """A match citation's source as a reader knows it (deck title and date); an older "file.txt（title）" form
    is cut to the title, so no file name is ever shown."""
    filed = re.match(r"^\S+\.(?:txt|pdf|docx|md)\s*(?:（(.+)）|(.+))?$", source.strip())
    if filed:
        return (filed.group(1) or filed.group(2) or "").strip()
    return source


def shown_recommendations(result: MatchResult) -> list[Recommendation]:
    manufacturing = any(str(n) == "manufacturing" for n in result.profile.needs)
    shown: list[Recommendation] = []
    for kind, limit in CARDS_PER_KIND.items():
        if kind == "cdmo" and not manufacturing:
            continue
        candidates = result.of_kind(kind)
        if kind == "vc":
            candidates = [r for r in candidates if not any(_is_caveat(x) and _NO_FIT in x for x in r.reasons)]
        shown += candidates[:limit]
    return shown


def profile_summary(profile: Profile, language: str) -> str:
    """The situation a form or a message gave, as one line (a summary, not a question)."""
    separator = "、" if language == "ja" else ", "
    parts = []
    for name, field in (("who", "applicant"), ("stages", "stage"), ("modalities", "modality"),
                        ("disease_areas", "disease_area"), ("needs", "support"), ("destinations", "destination")):
        values = [label(field, str(v), "en" if language == "en" else "ja") for v in getattr(profile, name)]
        if name == "who" and profile.pre_founding:
            values.append("起業前" if language == "ja" else "before founding")
        if values:
            parts.append(separator.join(values))
    return " · ".join(parts)


def match_card_blocks(card: dict[str, Any], *, answer_id: str, language: str) -> list[Block]:
    """One recommendation: its name and fit in words, one reason, one source; details in a modal."""
    head = f"*{escape_mrkdwn(shorten(card['title'], 100))}*  ·  {escape_mrkdwn(card['fit'])}"
    lines = [head]
    if card.get("reason"):
        lines.append(escape_mrkdwn(shorten(card["reason"], 160)))
    section = _section("\n".join(lines))
    section["accessory"] = button(t("details", language), DETAILS, f"{answer_id}:{card['n']}")
    blocks = [section]
    if card.get("source"):
        blocks.append(_context(f"{t('sources', language)}: {escape_mrkdwn(shorten(card['source'], 90))}"))
    return blocks


def match_blocks(cards: Sequence[dict[str, Any]], *, answer_id: str, language: str, summary: str,
                 notes: Sequence[str] = (), lead: str | None = None, share: bool = False) -> list[Block]:
    """Recommendation cards: the situation in one line, then up to three of each kind."""
    blocks: list[Block] = [_context(lead)] if lead else []
    if summary:
        blocks.append(_context(f"{t('your_situation', language)}: {escape_mrkdwn(shorten(summary, 400))}"))
    if notes:
        blocks.append(_context(*(f":information_source: {escape_mrkdwn(shorten(n, 300))}" for n in notes[:3])))
    if not cards:
        blocks.append(_section(t("no_matches", language)))
    kind = None
    for card in cards:
        if card["kind"] != kind:
            kind = card["kind"]
            blocks.append(_section(f"*{KIND_HEADING.get(kind, {}).get(language, kind)}*"))
        blocks += match_card_blocks(card, answer_id=answer_id, language=language)
    elements = []
    if share:
        elements.append(button(t("share", language), SHARE, answer_id, style="primary"))
    elements += [button(t("search_again", language), OPEN_MATCH, "again"),
                 button(t("handoff", language), HANDOFF, answer_id)]
    blocks.append({"type": "actions", "block_id": "kk_match_actions", "elements": elements})
    blocks.append(feedback_block(answer_id))
    return blocks


def match_details_modal(card: dict[str, Any], language: str) -> Block:
    """「詳細」: every reason, and the quoted passages behind them."""
    blocks: list[Block] = [_section(f"*{escape_mrkdwn(shorten(card['title'], 140))}*\n{escape_mrkdwn(card['fit'])}")]
    reasons = "\n".join(f"• {escape_mrkdwn(shorten(r, 300))}" for r in card.get("reasons") or [])
    if reasons:
        blocks.append(_section(reasons[:2900]))
    for i, quote in enumerate(card.get("quotes") or [], 1):
        blocks.append(_section(f"*[{i}] {escape_mrkdwn(shorten(quote['label'], 120))}*\n"
                               f">{escape_mrkdwn(quote['text']).replace(chr(10), ' ')}"))
    if card.get("url"):
        blocks.append({"type": "actions", "elements": [button(t("website", language), LINK, "site",
                                                              url=card["url"])]})
    return {"type": "modal", "title": _text(t("details", language)), "close": _text(t("close", language)),
            "blocks": blocks[:100]}


def match_fallback_text(cards: Sequence[dict[str, Any]], language: str) -> str:
    names = [c["title"] for c in cards[:6]]
    lead = "おすすめ: " if language == "ja" else "Recommendations: "
    return escape_mrkdwn(shorten(lead + ", ".join(names), 2900)) if names else t("no_matches", language)


def match_modal(*, private_metadata: dict[str, Any], initial_text: str = "") -> Block:
    """The matchmaking form: who is asking, stage, modality, needs, free text."""
    example = "例: iPS細胞由来の心筋シートを開発中。非臨床試験の資金と委託製造先を探しています"
    free_text: Block = {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 2000,
                        "placeholder": _text(example)}
    if initial_text:
        free_text["initial_value"] = initial_text[:2000]
    return {
        "type": "modal",
        "callback_id": MATCH_VIEW,
        "private_metadata": json_metadata(private_metadata),
        "title": _text("支援を探す"),
        "submit": _text("探す"),
        "close": _text("キャンセル"),
        "blocks": [
            _section("開発の段階やニーズを教えてください。条件に合う支援制度・認定VC・CDMOを、理由と出典つきでご紹介します。"),
            {"type": "input", "block_id": "who", "optional": True, "label": _text("ご所属"),
             "element": {"type": "static_select", "action_id": "value", "placeholder": _text("選択してください"),
                         "options": [_option(label("applicant", a.value), a.value) for a in Applicant
                                     if a is not Applicant.ANY]}},
            {"type": "input", "block_id": "pre_founding", "optional": True, "label": _text("起業前ですか？"),
             "element": {"type": "checkboxes", "action_id": "value",
                         "options": [_option("まだ会社を設立していない（起業前）", "yes")]}},
            {"type": "input", "block_id": "stage", "optional": True, "label": _text("開発段階"),
             "element": {"type": "static_select", "action_id": "value", "placeholder": _text("選択してください"),
                         "options": [_option(label("stage", s.value), s.value) for s in Stage]}},
            {"type": "input", "block_id": "modality", "optional": True, "label": _text("モダリティ"),
             "element": {"type": "multi_static_select", "action_id": "value", "placeholder": _text("複数選べます"),
                         "options": [_option(label("modality", m.value), m.value) for m in Modality
                                     if m is not Modality.ANY]}},
            {"type": "input", "block_id": "needs", "optional": True, "label": _text("必要な支援"),
             "element": {"type": "multi_static_select", "action_id": "value", "placeholder": _text("複数選べます"),
                         "options": [_option(label("support", s.value), s.value) for s in NEEDS]}},
            {"type": "input", "block_id": "free_text", "optional": True, "label": _text("自由記述"),
             "element": free_text},
        ],
    }


def match_form_values(state_values: dict[str, Any]) -> dict[str, Any]:
    """The submitted match form as plain values (codes from knowledge.schema)."""

    def pick(block: str) -> dict[str, Any]:
        return (state_values.get(block) or {}).get("value") or {}

    who = (pick("who").get("selected_option") or {}).get("value")
    stage = (pick("stage").get("selected_option") or {}).get("value")
    return {
        "who": who,
        "pre_founding": bool(pick("pre_founding").get("selected_options")),
        "stage": stage,
        "modalities": [o["value"] for o in pick("modality").get("selected_options") or []],
        "needs": [o["value"] for o in pick("needs").get("selected_options") or []],
        "free_text": (pick("free_text").get("value") or "").strip(),
    }


def match_form_text(values: dict[str, Any]) -> str:
    """The form said in the knowledge base's own Japanese words, for the profile extractor."""
    lines = []
    if values.get("who"):
        lines.append(f"所属: {label('applicant', values['who'])}")
    if values.get("pre_founding"):
        lines.append("起業前です（まだ会社を設立していません）。")
    if values.get("stage"):
        lines.append(f"開発段階: {label('stage', values['stage'])}")
    if values.get("modalities"):
        lines.append("モダリティ: " + "、".join(label("modality", m) for m in values["modalities"]))
    if values.get("needs"):
        lines.append("必要な支援: " + "、".join(label("support", n) for n in values["needs"]))
    if values.get("free_text"):
        lines.append(values["free_text"])
    return "\n".join(lines)


# --- feedback and hand-off forms -----------------------------------------------------------------


def feedback_modal(*, private_metadata: dict[str, Any], language: str) -> Block:
    ja = language == "ja"
    return {
        "type": "modal",
        "callback_id": FEEDBACK_VIEW,
        "private_metadata": json_metadata(private_metadata),
        "title": _text("フィードバック" if ja else "Feedback"),
        "submit": _text("送信" if ja else "Send"),
        "close": _text("キャンセル" if ja else "Cancel"),
        "blocks": [
            {"type": "input", "block_id": "reasons", "label": _text("何が問題でしたか？" if ja else "What was wrong?"),
             "element": {"type": "checkboxes", "action_id": "value",
                         "options": [_option(labels[language], code) for code, labels in FEEDBACK_REASONS.items()]}},
            {"type": "input", "block_id": "comment", "optional": True,
             "label": _text("詳しく（任意）" if ja else "Details (optional)"),
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 2000}},
        ],
    }


def handoff_modal(*, private_metadata: dict[str, Any], language: str, topic: str = "") -> Block:
    ja = language == "ja"
    topic_input: Block = {"type": "plain_text_input", "action_id": "value", "max_length": 300,
                          "placeholder": _text("例: 補助金の申請要件について相談したい" if ja else
                                               "e.g. the grant's eligibility rules")}
    if topic:
        topic_input["initial_value"] = shorten(topic, 300)
    return {
        "type": "modal",
        "callback_id": HANDOFF_VIEW,
        "private_metadata": json_metadata(private_metadata),
        "title": _text("相談員につなぐ" if ja else "Talk to a supporter"),
        "submit": _text("依頼する" if ja else "Request"),
        "close": _text("キャンセル" if ja else "Cancel"),
        "blocks": [
            _section("相談員（サポーター）が内容を確認して、このスレッドでご連絡します。" if ja else
                     "A human supporter will look at this and reply in your thread."),
            {"type": "input", "block_id": "topic", "label": _text("相談したいこと" if ja else "Topic"),
             "element": topic_input},
            {"type": "input", "block_id": "urgency", "label": _text("緊急度" if ja else "Urgency"),
             "element": {"type": "radio_buttons", "action_id": "value",
                         "initial_option": _option(URGENCY["normal"][language], "normal"),
                         "options": [_option(u[language], code) for code, u in URGENCY.items()]}},
            {"type": "input", "block_id": "consent", "optional": True,
             "label": _text("スレッドの共有" if ja else "Sharing"),
             "element": {"type": "checkboxes", "action_id": "value",
                         "options": [_option("このスレッドの内容を相談員と共有することに同意します" if ja else
                                             "I agree to share this thread with the supporters", "yes")]}},
        ],
    }


def handoff_form_values(state_values: dict[str, Any]) -> dict[str, Any]:
    def pick(block: str) -> dict[str, Any]:
        return (state_values.get(block) or {}).get("value") or {}

    urgency = (pick("urgency").get("selected_option") or {}).get("value") or "normal"
    return {
        "topic": (pick("topic").get("value") or "").strip(),
        "urgency": urgency if urgency in URGENCY else "normal",
        "consent": bool(pick("consent").get("selected_options")),
    }


# --- the consultation card -------------------------------------------------------------------------


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    stamp = int(moment.replace(tzinfo=dt.UTC).timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _with_mentions(escaped: str) -> str:
    """Summary lines start `@U123:`; on the card they are real mentions."""
    return re.sub(r"(?m)^@([UW][A-Z0-9]{2,}):", r"<@\1>:", escaped)


def _place_label(channel: str | None) -> str:
    if not channel or channel.startswith("D"):
        return "Kakehashi とのDM"
    return f"<#{channel}>"


def consultation_card(consultation: Any, *, answer: Any | None = None, profile_text: str = "",
                      permalink: str | None = None) -> list[Block]:
    """The card in the supporters' channel: the question once, what the founder wrote, what the bot
    answered (short, the rest a click away), the profile; what the asker agreed to share, nothing else."""
    c = consultation
    urgency = URGENCY.get(c.urgency, URGENCY["normal"])
    blocks: list[Block] = [
        {"type": "header", "text": _text(f"相談 {c.ref}（{STATUS_JA.get(c.status, c.status)}）")},
        {"type": "section", "fields": [
            _mrkdwn(f"*相談者*\n<@{c.asker_user_id}>"),
            _mrkdwn(f"*緊急度*\n{urgency['emoji']} {urgency['ja']}"),
            _mrkdwn(f"*受付*\n{_when(c.created_at)}"),
            _mrkdwn(f"*場所*\n{_place_label(c.asker_channel_id)}"),
        ]},
        _section(f"*相談したいこと*\n{escape_mrkdwn(shorten(c.topic, 500))}"),
    ]
    if c.consent_to_share:
        question = (c.question or "").strip()
        if question and question not in c.topic and c.topic not in question:
            blocks.append(_section(f"*最初の質問*\n{escape_mrkdwn(shorten(question, 600))}"))
        if c.thread_summary:
            blocks.append(_section(f"*相談者のメッセージ*\n{_with_mentions(escape_mrkdwn(c.thread_summary[:2000]))}"))
        if profile_text:
            blocks.append(_context(f"*プロフィール*: {escape_mrkdwn(shorten(profile_text, 600))}"))
        if answer is not None:
            weak = "（根拠が弱いと判定）" if not answer.confident else ""
            section = _section(f"*ボットの回答*{weak}\n{escape_mrkdwn(shorten(answer.answer, 160))}")
            section["accessory"] = button("回答と出典", SOURCES, str(answer.id))
            blocks.append(section)
    else:
        blocks.append(_context(":lock: 相談者はスレッドの共有に同意していません。相談したいことのみ共有されています。"))
    elements: list[Block] = []
    if c.status == "open":
        elements.append(button("担当する", TAKE, str(c.id), style="primary"))
    elif c.status == "taken":
        elements.append(button("対応済みにする", RESOLVE, str(c.id), style="primary"))
    elif c.status == "resolved":
        elements.append(button("回答として登録", CURATE, str(c.id)))
    channel_thread = (c.asker_channel_id or "").startswith(("C", "G"))
    if permalink and _safe_url(permalink) and c.consent_to_share and channel_thread:
        elements.append(button("相談者のスレッドを開く", LINK, str(c.id), url=permalink))
    if elements:
        blocks.append({"type": "actions", "block_id": "kk_card_actions", "elements": elements})
    if c.status == "taken":
        blocks.append(_context(f":raising_hand: 担当: <@{c.assignee_user_id}>（{_when(c.taken_at)}〜）· "
                               "このスレッドに書いた返信は相談者に届き、相談者の返信もここに届きます"))
    elif c.status == "resolved":
        blocks.append(_context(f":white_check_mark: 対応済み: <@{c.resolved_by}>（{_when(c.resolved_at)}）"
                               + (f" · 担当: <@{c.assignee_user_id}>" if c.assignee_user_id else "")))
    return blocks


def consultation_fallback_text(consultation: Any) -> str:
    c = consultation
    return escape_mrkdwn(shorten(f"相談 {c.ref}（{STATUS_JA.get(c.status, c.status)}）: {c.topic}", 300))


def thread_summary(messages: Iterable[dict[str, Any]], *, bot_user_id: str | None, asker: str | None = None,
                   skip: Sequence[str] = (), limit: int = 1800) -> str:
    """What the founder wrote in the thread, one `@U123: text` line each (mentions on the card), newest
    last, cut to fit; the bot's own messages are left out (its answer is on the card), and so is text
    already shown (`skip`: the topic, the question)."""
    lines = []
    for message in messages:
        if message.get("subtype") not in (None, "thread_broadcast"):
            continue
        if message.get("bot_id") or message.get("user") == bot_user_id:
            continue
        if asker and message.get("user") != asker:
            continue
        text = " ".join(slack_to_plain(str(message.get("text") or ""), bot_user_id=bot_user_id).split())
        if not text or any(text == x.strip() for x in skip):
            continue
        lines.append(f"@{message.get('user', '?')}: {shorten(text, 300)}")
    while lines and sum(len(x) + 1 for x in lines) > limit:
        lines.pop(1 if len(lines) > 2 else 0)  # keep the opening message, drop the middle
    return "\n".join(lines)


# --- App Home and help -----------------------------------------------------------------------------


def help_blocks(language: str = "ja") -> list[Block]:
    if language != "ja":
        return [
            _section("*Kakehashi* answers questions about support programs, certified VCs and CDMOs for "
                     "healthcare and drug-discovery startups, with numbered sources."),
            _section("• `/kakehashi ask <question>` — a cited answer\n"
                     "• `/kakehashi match <about you>` — programs, VCs and CDMOs that fit (no text opens a form)\n"
                     "• `/kakehashi help` — this message\n"
                     "• Command results are shown only to you; \"Share in channel\" shares them.\n"
                     "• Mention `@Kakehashi` in a channel or send me a direct message; I answer in the thread."),
            {"type": "actions", "elements": [button(t("match_button", "en"), OPEN_MATCH, "help")]},
        ]
    return [
        _section("*Kakehashi（かけはし）* は、医療・創薬スタートアップ向けの支援制度・認定VC・CDMOについて、"
                 "政府資料に基づき番号つきの出典を添えてお答えします。"),
        _section("• `/kakehashi ask 質問` — 出典つきで回答します\n"
                 "• `/kakehashi match 自社の状況` — 合う支援制度・VC・CDMOをご紹介します"
                 "（文章なしでフォームが開きます）\n"
                 "• `/kakehashi help` — この説明\n"
                 "• コマンドの結果はあなただけに表示されます。「チャンネルに共有」で共有できます。\n"
                 "• チャンネルで `@Kakehashi` とメンションするか、DMで質問すると、スレッドでお答えします。\n"
                 "• 回答の「相談員につなぐ」から、人の相談員（サポーター）に引き継げます。"),
        {"type": "actions", "elements": [button(t("match_button", "ja"), OPEN_MATCH, "help")]},
    ]


def home_view(*, is_staff: bool, consultations: Sequence[Any] = (), counts: dict[str, int] | None = None,
              month_label: str = "") -> Block:
    blocks: list[Block] = [
        {"type": "header", "text": _text("Kakehashi（かけはし）")},
        _section("医療・創薬スタートアップのための相談窓口ボットです。支援制度（補助金・委託事業・税制）、"
                 "AMED認定VC、CDMOについて、政府資料に基づいて出典つきでお答えし、条件に合う支援をご紹介します。"
                 "難しいご相談は、人の相談員（サポーター）におつなぎします。"),
        {"type": "actions", "elements": [button(t("match_button", "ja"), OPEN_MATCH, "home", style="primary")]},
        {"type": "divider"},
        _section("*できること*\n"
                 "• チャンネルで `@Kakehashi 質問` — スレッドで出典つきの回答\n"
                 "• Kakehashi へのDM（メッセージタブ）で質問 — メッセージごとのスレッドで回答し、続けて質問すると流れを踏まえて回答\n"
                 "• `/kakehashi ask` / `match` / `help` — 結果はあなただけに表示され、「チャンネルに共有」で共有できます\n"
                 "• 回答の 👍 / 👎 で評価、「相談員につなぐ」で人の相談員へ"),
        _section("*質問の例*\n" + "\n".join(f"• {escape_mrkdwn(q)}" for q in EXAMPLE_QUESTIONS)),
    ]
    if is_staff:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": _text("相談員向け: 未対応・対応中の相談")})
        if counts is not None:
            blocks.append(_context(f"{escape_mrkdwn(month_label)} 受付 {counts.get('total', 0)} 件 · "
                                   f"未対応 {counts.get('open', 0)} · 対応中 {counts.get('taken', 0)} · "
                                   f"対応済み {counts.get('resolved', 0)}"))
        if not consultations:
            blocks.append(_section("未対応の相談はありません。"))
        for c in list(consultations)[:20]:
            urgency = URGENCY.get(c.urgency, URGENCY["normal"])
            line = (f"*{c.ref}* {urgency['emoji']} {STATUS_JA.get(c.status, c.status)} · <@{c.asker_user_id}> · "
                    f"{escape_mrkdwn(shorten(c.topic, 120))}")
            if c.status == "taken" and c.assignee_user_id:
                line += f"\n担当: <@{c.assignee_user_id}>"
            section = _section(line)
            if c.status == "open":
                section["accessory"] = button("担当する", TAKE, str(c.id), style="primary")
            elif c.status == "taken":
                section["accessory"] = button("対応済みにする", RESOLVE, str(c.id))
            blocks.append(section)
    return {"type": "home", "blocks": blocks[:100]}
