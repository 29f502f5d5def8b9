"""Matchmaking as Slack shows it: recommendation cards (fit in words, one reason, one source), their details,
and the form asking who the founder is, their stage, modality and needs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypedDict, cast

from bot.slack.blockkit import (
    JSON,
    Block,
    actions,
    button,
    checkboxes,
    context,
    input_block,
    modal,
    option,
    picked,
    safe_url,
    section,
    static_select,
    text_input,
)
from bot.slack.feedback.blocks import feedback_block
from bot.slack.ids import DETAILS, HANDOFF, LINK, MATCH_VIEW, OPEN_MATCH, SHARE
from bot.slack.sources import SourceCatalog
from bot.slack.text import escape_mrkdwn, shorten
from knowledge.labels import label
from knowledge.schema import Applicant, Modality, Stage
from prompts.messages import t
from retrieval.match import MatchResult, Recommendation
from retrieval.profile import NEEDS, Profile

CARDS_PER_KIND = {"program": 3, "vc": 3, "cdmo": 3}
MAX_CARD_SOURCES = 5
# The matcher's words for a VC whose sources tie nothing to the profile (retrieval.match, "vc_no_fit").
_NO_FIT = "出資先の開発内容がこのプロフィールに合う"


class CardQuote(TypedDict):
    label: str
    text: str


class MatchCard(TypedDict):
    """A recommendation as shown, and stored with the answer (to share it or open its details later)."""

    n: int
    id: str
    kind: str
    title: str
    score: float
    fit: str
    reason: str
    reasons: list[str]
    source: str
    quotes: list[CardQuote]
    url: str | None


def stored_cards(citations: list[JSON]) -> list[MatchCard]:
    """A match answer's stored citations are the cards it showed (see match_cards)."""
    return cast(list[MatchCard], citations)


class MatchForm(TypedDict):
    who: str | None
    pre_founding: bool
    stage: str | None
    modalities: list[str]
    needs: list[str]
    free_text: str


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


def match_cards(result: MatchResult, *, catalog: SourceCatalog, language: str) -> list[MatchCard]:
    """The recommendations shown, as plain data (stored with the answer, so a card can be shared or
    opened in detail later): at most 3 of each kind, CDMOs only when manufacturing is asked, VCs
    whose sources say nothing that ties them to the profile left out."""
    cards: list[MatchCard] = []
    for rec in shown_recommendations(result):
        positive = [r for r in rec.reasons if not _is_caveat(r)]
        # "open to startups" says least about fit: a need, modality or stage that matches says more
        positive.sort(key=lambda r: r.startswith(("対象者", "Eligible")))
        first = rec.citations[0] if rec.citations else None
        cards.append(
            {
                "n": len(cards) + 1,
                "id": rec.id,
                "kind": rec.kind,
                "title": rec.name,
                "score": rec.score,
                "fit": fit_words(rec, language),
                "reason": _unmarked(positive[0] if positive else rec.reasons[0]) if rec.reasons else "",
                "reasons": [_unmarked(r) for r in rec.reasons],
                "source": _document_title(first.source) if first else "",
                "quotes": [
                    {"label": _document_title(c.source), "text": shorten(c.text.replace("**", ""), 400)}
                    for c in rec.citations[:MAX_CARD_SOURCES]
                ],
                "url": safe_url(catalog.url(rec.id)),
            }
        )
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
    for name, field in (
        ("who", "applicant"),
        ("stages", "stage"),
        ("modalities", "modality"),
        ("disease_areas", "disease_area"),
        ("needs", "support"),
        ("destinations", "destination"),
    ):
        values = [label(field, str(v), "en" if language == "en" else "ja") for v in getattr(profile, name)]
        if name == "who" and profile.pre_founding:
            values.append("起業前" if language == "ja" else "before founding")
        if values:
            parts.append(separator.join(values))
    return " · ".join(parts)


def match_card_blocks(card: MatchCard, *, answer_id: str, language: str) -> list[Block]:
    """One recommendation: its name and fit in words, one reason, one source; details in a modal."""
    head = f"*{escape_mrkdwn(shorten(card['title'], 100))}*  ·  {escape_mrkdwn(card['fit'])}"
    lines = [head]
    if card.get("reason"):
        lines.append(escape_mrkdwn(shorten(card["reason"], 160)))
    blocks = [
        section("\n".join(lines), accessory=button(t("slack_details", language), DETAILS, f"{answer_id}:{card['n']}"))
    ]
    if card.get("source"):
        blocks.append(context(f"{t('slack_sources', language)}: {escape_mrkdwn(shorten(card['source'], 90))}"))
    return blocks


def match_blocks(
    cards: Sequence[MatchCard],
    *,
    answer_id: str,
    language: str,
    summary: str,
    notes: Sequence[str] = (),
    lead: str | None = None,
    share: bool = False,
) -> list[Block]:
    """Recommendation cards: the situation in one line, then up to three of each kind."""
    blocks: list[Block] = [context(lead)] if lead else []
    if summary:
        blocks.append(context(f"{t('slack_your_situation', language)}: {escape_mrkdwn(shorten(summary, 400))}"))
    if notes:
        blocks.append(context(*(f":information_source: {escape_mrkdwn(shorten(n, 300))}" for n in notes[:3])))
    if not cards:
        blocks.append(section(t("slack_no_matches", language)))
    kind = None
    for card in cards:
        if card["kind"] != kind:
            kind = card["kind"]
            blocks.append(section(f"*{t(f'slack_kind_heading_{kind}', language)}*"))
        blocks += match_card_blocks(card, answer_id=answer_id, language=language)
    elements = []
    if share:
        elements.append(button(t("slack_share", language), SHARE, answer_id, style="primary"))
    elements += [
        button(t("slack_search_again", language), OPEN_MATCH, "again"),
        button(t("slack_handoff", language), HANDOFF, answer_id),
    ]
    blocks.append(actions(elements, block_id="kk_match_actions"))
    blocks.append(feedback_block(answer_id))
    return blocks


def match_details_modal(card: MatchCard, language: str) -> Block:
    """「詳細」: every reason, and the quoted passages behind them."""
    blocks: list[Block] = [section(f"*{escape_mrkdwn(shorten(card['title'], 140))}*\n{escape_mrkdwn(card['fit'])}")]
    reasons = "\n".join(f"• {escape_mrkdwn(shorten(r, 300))}" for r in card.get("reasons") or [])
    if reasons:
        blocks.append(section(reasons[:2900]))
    for i, quote in enumerate(card.get("quotes") or [], 1):
        blocks.append(
            section(
                f"*[{i}] {escape_mrkdwn(shorten(quote['label'], 120))}*\n"
                f">{escape_mrkdwn(quote['text']).replace(chr(10), ' ')}"
            )
        )
    if card.get("url"):
        blocks.append(actions([button(t("slack_website", language), LINK, "site", url=card["url"])]))
    return modal(title=t("slack_details", language), close=t("slack_close", language), blocks=blocks)


def match_fallback_text(cards: Sequence[MatchCard], language: str) -> str:
    names = [c["title"] for c in cards[:6]]
    lead = "おすすめ: " if language == "ja" else "Recommendations: "
    return escape_mrkdwn(shorten(lead + ", ".join(names), 2900)) if names else t("slack_no_matches", language)


def match_modal(*, private_metadata: JSON, initial_text: str = "") -> Block:
    """The matchmaking form: who is asking, stage, modality, needs (every need the profile reader knows,
    retrieval.profile.NEEDS), free text."""
    many = t("slack_match_many", "ja")
    return modal(
        callback_id=MATCH_VIEW,
        private_metadata=private_metadata,
        title=t("slack_match_title", "ja"),
        submit=t("slack_match_submit", "ja"),
        close=t("slack_cancel", "ja"),
        blocks=[
            section(t("slack_match_intro", "ja")),
            input_block(
                "who",
                t("slack_match_who", "ja"),
                static_select(
                    [option(label("applicant", a.value), a.value) for a in Applicant if a is not Applicant.ANY]
                ),
                optional=True,
            ),
            input_block(
                "pre_founding",
                t("slack_match_pre_founding", "ja"),
                checkboxes([option(t("slack_match_not_founded", "ja"), "yes")]),
                optional=True,
            ),
            input_block(
                "stage",
                t("slack_match_stage", "ja"),
                static_select([option(label("stage", s.value), s.value) for s in Stage]),
                optional=True,
            ),
            input_block(
                "modality",
                t("slack_match_modality", "ja"),
                static_select(
                    [option(label("modality", m.value), m.value) for m in Modality if m is not Modality.ANY],
                    placeholder=many,
                    multi=True,
                ),
                optional=True,
            ),
            input_block(
                "needs",
                t("slack_match_needs", "ja"),
                static_select(
                    [option(label("support", s.value), s.value) for s in NEEDS], placeholder=many, multi=True
                ),
                optional=True,
            ),
            input_block(
                "free_text",
                t("slack_match_free_text", "ja"),
                text_input(
                    max_length=2000, multiline=True, placeholder=t("slack_match_example", "ja"), initial=initial_text
                ),
                optional=True,
            ),
        ],
    )


def match_form_values(state_values: JSON) -> MatchForm:
    """The submitted match form as plain values (codes from knowledge.schema)."""

    def pick(block: str) -> JSON:
        return picked(state_values, block)

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


def match_form_text(values: MatchForm) -> str:
    """The form said in the knowledge base's own Japanese words, for the profile extractor."""
    lines = []
    if values["who"]:
        lines.append(f"所属: {label('applicant', values['who'])}")
    if values.get("pre_founding"):
        lines.append("起業前です（まだ会社を設立していません）。")
    if values["stage"]:
        lines.append(f"開発段階: {label('stage', values['stage'])}")
    if values.get("modalities"):
        lines.append("モダリティ: " + "、".join(label("modality", m) for m in values["modalities"]))
    if values.get("needs"):
        lines.append("必要な支援: " + "、".join(label("support", n) for n in values["needs"]))
    if values.get("free_text"):
        lines.append(values["free_text"])
    return "\n".join(lines)
