"""The hand-off form, and the consultation card supporters work from in their channel."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import TypedDict

from bot.slack.blockkit import (
    JSON,
    Block,
    actions,
    button,
    checkboxes,
    context,
    fields_section,
    header,
    input_block,
    modal,
    option,
    picked,
    safe_url,
    section,
    text_input,
)
from bot.slack.ids import CURATE, HANDOFF_VIEW, LINK, RESOLVE, SOURCES, TAKE
from bot.slack.text import escape_mrkdwn, shorten, slack_to_plain
from bot.store import AnswerRecord, Consultation
from prompts.messages import t

URGENCY_CODES = ("low", "normal", "high")  # labels: slack_urgency_<code>
URGENCY_EMOJI = {"low": ":white_circle:", "normal": ":large_yellow_circle:", "high": ":red_circle:"}
STATUSES = ("open", "taken", "resolved")  # labels: slack_status_<status>


class HandoffForm(TypedDict):
    topic: str
    urgency: str
    consent: bool


def urgency_label(code: str, language: str) -> str:
    return t(f"slack_urgency_{code if code in URGENCY_CODES else 'normal'}", language)


def handoff_modal(*, private_metadata: JSON, language: str, topic: str = "") -> Block:
    topic_input = text_input(
        max_length=300,
        placeholder=t("slack_handoff_topic_example", language),
        initial=shorten(topic, 300) if topic else "",
    )
    urgency = {
        "type": "radio_buttons",
        "action_id": "value",
        "initial_option": option(urgency_label("normal", language), "normal"),
        "options": [option(urgency_label(code, language), code) for code in URGENCY_CODES],
    }
    return modal(
        callback_id=HANDOFF_VIEW,
        private_metadata=private_metadata,
        title=t("slack_handoff_title", language),
        submit=t("slack_handoff_submit", language),
        close=t("slack_cancel", language),
        blocks=[
            section(t("slack_handoff_intro", language)),
            input_block("topic", t("slack_handoff_topic", language), topic_input),
            input_block("urgency", t("slack_handoff_urgency", language), urgency),
            input_block(
                "consent",
                t("slack_handoff_sharing", language),
                checkboxes([option(t("slack_handoff_consent", language), "yes")]),
                optional=True,
            ),
        ],
    )


def handoff_form_values(state_values: JSON) -> HandoffForm:
    urgency = (picked(state_values, "urgency").get("selected_option") or {}).get("value") or "normal"
    return {
        "topic": (picked(state_values, "topic").get("value") or "").strip(),
        "urgency": urgency if urgency in URGENCY_CODES else "normal",
        "consent": bool(picked(state_values, "consent").get("selected_options")),
    }


# --- the consultation card -------------------------------------------------------------------------


def urgency_emoji(code: str) -> str:
    return URGENCY_EMOJI.get(code, URGENCY_EMOJI["normal"])


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    stamp = int(moment.replace(tzinfo=dt.UTC).timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _with_mentions(escaped: str) -> str:
    """Summary lines start `@U123:`; on the card they are real mentions."""
    return re.sub(r"(?m)^@([UW][A-Z0-9]{2,}):", r"<@\1>:", escaped)


def _place_label(channel: str | None) -> str:
    if not channel or channel.startswith("D"):
        return _t("card_dm")
    return f"<#{channel}>"


def _t(key: str, **values: object) -> str:
    """The card speaks the supporters' language (Japanese)."""
    return t(f"slack_{key}", "ja", **values)


def status_label(status: str) -> str:
    return _t(f"status_{status}") if status in STATUSES else status


def consultation_card(
    consultation: Consultation,
    *,
    answer: AnswerRecord | None = None,
    profile_text: str = "",
    permalink: str | None = None,
) -> list[Block]:
    """The card in the supporters' channel: the question once, what the founder wrote, what the bot
    answered (short, the rest a click away), the profile; what the asker agreed to share, nothing else."""
    c = consultation
    blocks: list[Block] = [
        header(_t("card_title", ref=c.ref, status=status_label(c.status))),
        fields_section(
            _t("card_asker", asker=f"<@{c.asker_user_id}>"),
            _t("card_urgency", urgency=f"{urgency_emoji(c.urgency)} {urgency_label(c.urgency, 'ja')}"),
            _t("card_received", when=when(c.created_at)),
            _t("card_place", place=_place_label(c.asker_channel_id)),
        ),
        section(_t("card_topic", topic=escape_mrkdwn(shorten(c.topic, 500)))),
    ]
    if c.consent_to_share:
        question = (c.question or "").strip()
        if question and question not in c.topic and c.topic not in question:
            blocks.append(section(_t("card_question", question=escape_mrkdwn(shorten(question, 600)))))
        if c.thread_summary:
            blocks.append(section(_t("card_messages", messages=_with_mentions(escape_mrkdwn(c.thread_summary[:2000])))))
        if profile_text:
            blocks.append(context(_t("card_profile", profile=escape_mrkdwn(shorten(profile_text, 600)))))
        if answer is not None:
            weak = _t("card_weak") if not answer.confident else ""
            blocks.append(
                section(
                    _t("card_answer", weak=weak, answer=escape_mrkdwn(shorten(answer.answer, 160))),
                    accessory=button(_t("card_answer_button"), SOURCES, str(answer.id)),
                )
            )
    else:
        blocks.append(context(_t("card_no_consent")))
    elements: list[Block] = []
    if c.status == "open":
        elements.append(button(_t("card_take"), TAKE, str(c.id), style="primary"))
    elif c.status == "taken":
        elements.append(button(_t("card_resolve"), RESOLVE, str(c.id), style="primary"))
    elif c.status == "resolved":
        elements.append(button(_t("card_curate"), CURATE, str(c.id)))
    channel_thread = (c.asker_channel_id or "").startswith(("C", "G"))
    if permalink and safe_url(permalink) and c.consent_to_share and channel_thread:
        elements.append(button(_t("card_open_thread"), LINK, str(c.id), url=permalink))
    if elements:
        blocks.append(actions(elements, block_id="kk_card_actions"))
    if c.status == "taken":
        blocks.append(context(_t("card_taken_by", assignee=f"<@{c.assignee_user_id}>", since=when(c.taken_at))))
    elif c.status == "resolved":
        blocks.append(
            context(
                _t("card_resolved_by", resolver=f"<@{c.resolved_by}>", when=when(c.resolved_at))
                + (_t("card_assignee", assignee=f"<@{c.assignee_user_id}>") if c.assignee_user_id else "")
            )
        )
    return blocks


def consultation_fallback_text(consultation: Consultation) -> str:
    c = consultation
    return escape_mrkdwn(shorten(_t("card_fallback", ref=c.ref, status=status_label(c.status), topic=c.topic), 300))


def thread_summary(
    messages: Iterable[JSON],
    *,
    bot_user_id: str | None,
    asker: str | None = None,
    skip: Sequence[str] = (),
    limit: int = 1800,
) -> str:
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
