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
from bot.slack.sources import SourceCatalog, ministry_label
from bot.slack.text import escape_mrkdwn, shorten, slack_to_plain, split_for_sections
from knowledge.schema import Applicant, Modality, Stage, Support
from retrieval.answer import Answer, Citation
from retrieval.chunking import APPLICANT_JA, MODALITY_JA, STAGE_JA, SUPPORT_JA
from retrieval.match import MatchResult, Recommendation

Block = dict[str, Any]

# action_id / callback_id values: the listeners register on these.
FEEDBACK_UP = "kk_feedback_up"
FEEDBACK_DOWN = "kk_feedback_down"
HANDOFF = "kk_handoff"
OPEN_MATCH = "kk_open_match"
TAKE = "kk_take"
RESOLVE = "kk_resolve"
LINK = "kk_link"  # link-out buttons; Slack still sends an action, which we acknowledge
FEEDBACK_VIEW = "kk_feedback_view"
HANDOFF_VIEW = "kk_handoff_view"
MATCH_VIEW = "kk_match_view"

MAX_SOURCES = 6
CARDS_PER_KIND = {"program": 4, "vc": 3, "cdmo": 3}
MAX_CARD_SOURCES = 5
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


def shown_citations(answer: Answer, limit: int = MAX_SOURCES) -> list[Citation]:
    """The passages the answer cites by number, then the best-ranked ones, in number order."""
    cited = cited_numbers(answer.answer)
    chosen = [c for c in answer.citations if c.n in cited]
    if len(chosen) < 3:
        chosen += [c for c in answer.citations if c.n not in cited][: 3 - len(chosen)]
    return sorted(chosen, key=lambda c: c.n)[:limit]


def source_line(citation: Citation, catalog: SourceCatalog, language: str) -> str:
    """`[n] title · ministry · source document`, the title linked where the record has a page."""
    info = catalog.lookup(citation.id)
    title = escape_mrkdwn(shorten(citation.title, 90))
    url = _safe_url(info.url if info else None)
    parts = [f"*[{citation.n}]* " + (f"<{url}|{title}>" if url else title)]
    ministry = ministry_label(info.ministry if info else None, language)
    if ministry:
        parts.append(escape_mrkdwn(ministry))
    documents = [d for d in (info.documents if info else ()) if d != citation.title]
    if documents:
        lead = "資料: " if language == "ja" else "Document: "
        parts.append(lead + escape_mrkdwn(shorten("、".join(documents), 120)))
    elif info is None:
        parts.append(escape_mrkdwn(shorten(citation.source, 120)))
    return " · ".join(parts)


def answer_text_blocks(answer: Answer) -> list[Block]:
    return [_section(piece) for piece in split_for_sections(escape_mrkdwn(answer.answer)) if piece.strip()]


def answer_footer_blocks(answer: Answer, *, answer_id: str, catalog: SourceCatalog,
                         notes: Sequence[str] = ()) -> list[Block]:
    """Everything under the answer text: weak-evidence note, numbered sources, notes, buttons.
    A streamed answer gets these when the stream stops."""
    language = answer.language
    blocks: list[Block] = []
    if not answer.confident:
        blocks.append(_context(t("weak_evidence", language)))
    citations = shown_citations(answer)
    if citations:
        lines = [source_line(c, catalog, language) for c in citations]
        blocks.append(_section(f"*{t('sources', language)}*\n" + "\n".join(lines)))
    if notes:
        blocks.append(_context(*(escape_mrkdwn(n) for n in notes)))
    blocks.append(answer_actions(answer_id=answer_id, language=language))
    return blocks


def _rating_buttons(*, answer_id: str, language: str) -> list[Block]:
    """👍 / 👎 and 「相談員につなぐ」, under every answer and every set of recommendations."""
    return [
        button("👍 " + t("good", language), FEEDBACK_UP, answer_id),
        button("👎 " + t("bad", language), FEEDBACK_DOWN, answer_id),
        button("🙋 " + t("handoff", language), HANDOFF, answer_id, style="primary"),
    ]


def answer_actions(*, answer_id: str, language: str) -> Block:
    return {"type": "actions", "block_id": "kk_answer_actions",
            "elements": _rating_buttons(answer_id=answer_id, language=language)}


def answer_blocks(answer: Answer, *, answer_id: str, catalog: SourceCatalog, notes: Sequence[str] = (),
                  lead: str | None = None) -> list[Block]:
    """A whole answer message; `lead` is an already-escaped line above it (who asked what)."""
    blocks: list[Block] = [_context(lead)] if lead else []
    blocks += answer_text_blocks(answer)
    blocks.append({"type": "divider"})
    blocks += answer_footer_blocks(answer, answer_id=answer_id, catalog=catalog, notes=notes)
    return blocks


def answer_fallback_text(answer: Answer) -> str:
    """The notification text of an answer message (one line, escaped, under Slack's limits)."""
    return escape_mrkdwn(shorten(answer.answer, 2900))


def apology_blocks(*, reference: str, language: str) -> list[Block]:
    return [_section(t("apology", language, ref=escape_mrkdwn(reference)))]


# --- matchmaking --------------------------------------------------------------------------------


def recommendation_blocks(index: int, rec: Recommendation, *, catalog: SourceCatalog, language: str) -> list[Block]:
    label = KIND_LABEL.get(rec.kind, {}).get(language, rec.kind)
    name = escape_mrkdwn(shorten(rec.name, 120))
    head = f"*{index}. {name}*  `{escape_mrkdwn(label)}`"
    head += f"  ({'適合度' if language == 'ja' else 'fit'} {rec.score:.2f})"
    reasons = [f"• {escape_mrkdwn(shorten(r, 200))}" for r in rec.reasons[:4]]
    section = _section("\n".join([head, *reasons]))
    url = _safe_url(catalog.url(rec.id))
    if url:
        section["accessory"] = button("詳細を見る" if language == "ja" else "Details", LINK, rec.id, url=url)
    blocks = [section]
    quotes = []
    for n, citation in enumerate(rec.citations[:MAX_CARD_SOURCES], 1):
        source = escape_mrkdwn(shorten(citation.source, 80))
        quote = escape_mrkdwn(shorten(citation.text.replace("**", ""), 110))
        quotes.append(f"[{n}] {source} — “{quote}”" if quote else f"[{n}] {source}")
    if quotes:
        blocks.append(_context(*quotes))
    return blocks


def match_blocks(result: MatchResult, *, answer_id: str, catalog: SourceCatalog, language: str, profile_text: str,
                 lead: str | None = None) -> list[Block]:
    """Recommendation cards: the profile we understood, then each match with reasons and sources."""
    blocks: list[Block] = [_context(lead)] if lead else []
    if profile_text.strip():
        blocks.append(_section(escape_mrkdwn(profile_text.strip()[:1500])))
    recommendations = shown_recommendations(result)
    notes = [escape_mrkdwn(n) for n in result.notes]
    if not recommendations and not notes:
        blocks.append(_section(t("no_matches", language)))
    elif notes:
        blocks.append(_context(*(f":information_source: {n}" for n in notes[:5])))
    kind = None
    for i, rec in enumerate(recommendations, 1):
        if rec.kind != kind:
            kind = rec.kind
            blocks.append({"type": "header", "text": _text(KIND_HEADING.get(kind, {}).get(language, kind))})
        else:
            blocks.append({"type": "divider"})
        blocks += recommendation_blocks(i, rec, catalog=catalog, language=language)
    blocks.append({"type": "divider"})
    blocks.append({
        "type": "actions",
        "block_id": "kk_match_actions",
        "elements": [
            *_rating_buttons(answer_id=answer_id, language=language),
            button("条件を変えて探す" if language == "ja" else "Search again", OPEN_MATCH, "again"),
        ],
    })
    return blocks


def shown_recommendations(result: MatchResult) -> list[Recommendation]:
    """The best few of each kind (programs, then VCs, then CDMOs), so no kind crowds out the others."""
    shown = []
    for kind, limit in CARDS_PER_KIND.items():
        shown += result.of_kind(kind)[:limit]
    shown += [r for r in result.recommendations if r.kind not in CARDS_PER_KIND][:2]
    return shown


def match_fallback_text(result: MatchResult, language: str) -> str:
    names = [r.name for r in shown_recommendations(result)[:6]]
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
                         "options": [_option(APPLICANT_JA[a.value], a.value) for a in Applicant
                                     if a is not Applicant.ANY]}},
            {"type": "input", "block_id": "pre_founding", "optional": True, "label": _text("起業前ですか？"),
             "element": {"type": "checkboxes", "action_id": "value",
                         "options": [_option("まだ会社を設立していない（起業前）", "yes")]}},
            {"type": "input", "block_id": "stage", "optional": True, "label": _text("開発段階"),
             "element": {"type": "static_select", "action_id": "value", "placeholder": _text("選択してください"),
                         "options": [_option(STAGE_JA[s.value], s.value) for s in Stage]}},
            {"type": "input", "block_id": "modality", "optional": True, "label": _text("モダリティ"),
             "element": {"type": "multi_static_select", "action_id": "value", "placeholder": _text("複数選べます"),
                         "options": [_option(MODALITY_JA[m.value], m.value) for m in Modality
                                     if m is not Modality.ANY]}},
            {"type": "input", "block_id": "needs", "optional": True, "label": _text("必要な支援"),
             "element": {"type": "multi_static_select", "action_id": "value", "placeholder": _text("複数選べます"),
                         "options": [_option(SUPPORT_JA[s.value], s.value) for s in NEEDS]}},
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
        lines.append(f"所属: {APPLICANT_JA.get(values['who'], values['who'])}")
    if values.get("pre_founding"):
        lines.append("起業前です（まだ会社を設立していません）。")
    if values.get("stage"):
        lines.append(f"開発段階: {STAGE_JA.get(values['stage'], values['stage'])}")
    if values.get("modalities"):
        lines.append("モダリティ: " + "、".join(MODALITY_JA.get(m, m) for m in values["modalities"]))
    if values.get("needs"):
        lines.append("必要な支援: " + "、".join(SUPPORT_JA.get(n, n) for n in values["needs"]))
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


def consultation_card(consultation: Any, *, answer: Any | None = None, profile_text: str = "",
                      permalink: str | None = None) -> list[Block]:
    """The card in the supporters' channel. What the asker agreed to share, and nothing else."""
    c = consultation
    urgency = URGENCY.get(c.urgency, URGENCY["normal"])
    blocks: list[Block] = [
        {"type": "header", "text": _text(f"相談 {c.ref}（{STATUS_JA.get(c.status, c.status)}）")},
        {"type": "section", "fields": [
            _mrkdwn(f"*相談者*\n<@{c.asker_user_id}>"),
            _mrkdwn(f"*緊急度*\n{urgency['emoji']} {urgency['ja']}"),
            _mrkdwn(f"*受付*\n{_when(c.created_at)}"),
            _mrkdwn(f"*状態*\n{STATUS_JA.get(c.status, c.status)}"),
        ]},
        _section(f"*相談したいこと*\n{escape_mrkdwn(shorten(c.topic, 500))}"),
    ]
    if c.consent_to_share:
        if c.question:
            blocks.append(_section(f"*質問*\n{escape_mrkdwn(shorten(c.question, 1000))}"))
        if c.thread_summary:
            blocks.append(_section(f"*スレッドの要約*\n{escape_mrkdwn(c.thread_summary[:2000])}"))
        if profile_text:
            blocks.append(_section(f"*プロフィール（自動抽出）*\n{escape_mrkdwn(shorten(profile_text, 1200))}"))
        if answer is not None:
            blocks.append(_section(f"*ボットの回答*\n{escape_mrkdwn(shorten(answer.answer, 1500))}"))
            citations = answer.citations if isinstance(answer.citations, list) else []
            numbers = cited_numbers(answer.answer)
            shown = [x for x in citations if x.get("n") in numbers] or citations[:3]
            if shown:
                lines = [f"[{x.get('n')}] {escape_mrkdwn(shorten(str(x.get('title', '')), 80))} — "
                         f"{escape_mrkdwn(shorten(str(x.get('source', '')), 100))}" for x in shown[:MAX_SOURCES]]
                blocks.append(_context("*出典*\n" + "\n".join(lines)))
            if not answer.confident:
                blocks.append(_context(":warning: ボットの回答は根拠が弱いと判定されています。"))
    else:
        blocks.append(_context(":lock: 相談者はスレッドの共有に同意していません。相談したいことのみ共有されています。"))
    elements: list[Block] = []
    if c.status == "open":
        elements.append(button("担当する", TAKE, str(c.id), style="primary"))
    elif c.status == "taken":
        elements.append(button("対応済みにする", RESOLVE, str(c.id), style="primary"))
    if permalink and _safe_url(permalink) and c.consent_to_share:
        elements.append(button("スレッドを開く", LINK, str(c.id), url=permalink))
    if elements:
        blocks.append({"type": "actions", "block_id": "kk_card_actions", "elements": elements})
    if c.status == "taken":
        blocks.append(_context(f":raising_hand: 担当: <@{c.assignee_user_id}>（{_when(c.taken_at)}〜）"))
    elif c.status == "resolved":
        blocks.append(_context(f":white_check_mark: 対応済み: <@{c.resolved_by}>（{_when(c.resolved_at)}）"
                               + (f" · 担当: <@{c.assignee_user_id}>" if c.assignee_user_id else "")))
    return blocks


def consultation_fallback_text(consultation: Any) -> str:
    c = consultation
    return escape_mrkdwn(shorten(f"相談 {c.ref}（{STATUS_JA.get(c.status, c.status)}）: {c.topic}", 300))


def thread_summary(messages: Iterable[dict[str, Any]], *, bot_user_id: str | None, limit: int = 1800) -> str:
    """A plain-text digest of a thread for the supporter: who said what, newest last, cut to fit."""
    lines = []
    for message in messages:
        if message.get("subtype") not in (None, "thread_broadcast"):
            continue
        text = " ".join(slack_to_plain(str(message.get("text") or ""), bot_user_id=bot_user_id).split())
        if not text:
            continue
        who = "Kakehashi" if (message.get("bot_id") or message.get("user") == bot_user_id) else \
            f"@{message.get('user', '?')}"
        lines.append(f"{who}: {shorten(text, 300)}")
    while lines and sum(len(x) + 1 for x in lines) > limit:
        lines.pop(1 if len(lines) > 2 else 0)  # keep the opening question, drop the middle
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
                 "• DMやAIアシスタント画面で質問 — 続けて質問すると、スレッドの流れを踏まえて回答\n"
                 "• `/kakehashi ask` / `match` / `help`\n"
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
