"""The App Home tab, `/kakehashi help`, and what the assistant suggests asking: the bot introducing itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from slack_sdk import WebClient

from bot.slack.blockkit import Block, actions, button, context, divider, header, section
from bot.slack.deps import Deps
from bot.slack.handoff.blocks import status_label, urgency_emoji
from bot.slack.ids import OPEN_MATCH, RESOLVE, TAKE
from bot.slack.kb.flow import with_freshness
from bot.slack.text import escape_mrkdwn, shorten
from bot.store import Consultation
from prompts.messages import t

SUGGESTED_PROMPTS = 4  # slack_prompt<n>_title / slack_prompt<n>_message


def suggested_prompts(language: str) -> list[dict[str, str]]:
    """What the assistant panel and the DM greeting offer to ask (Slack shows at most four)."""
    return [
        {"title": t(f"slack_prompt{n}_title", language), "message": t(f"slack_prompt{n}_message", language)}
        for n in range(1, SUGGESTED_PROMPTS + 1)
    ]


def example_questions() -> list[str]:
    """The App Home's example questions."""
    return t("slack_home_examples", "ja").splitlines()


def help_blocks(language: str = "ja") -> list[Block]:
    language = "ja" if language == "ja" else "en"
    return [
        section(t("slack_help_intro", language)),
        section(t("slack_help_commands", language)),
        actions([button(t("slack_match_button", language), OPEN_MATCH, "help")]),
    ]


def home_view(
    *,
    is_staff: bool,
    consultations: Sequence[Consultation] = (),
    counts: dict[str, int] | None = None,
    month_label: str = "",
) -> Block:
    blocks: list[Block] = [
        header(t("slack_home_title", "ja")),
        section(t("slack_home_intro", "ja")),
        actions([button(t("slack_match_button", "ja"), OPEN_MATCH, "home", style="primary")]),
        divider(),
        section(t("slack_home_can_do", "ja")),
        section(
            t("slack_home_examples_title", "ja")
            + "\n"
            + "\n".join(f"• {escape_mrkdwn(q)}" for q in example_questions())
        ),
    ]
    if is_staff:
        blocks.append(divider())
        blocks.append(header(t("slack_home_staff_title", "ja")))
        if counts is not None:
            blocks.append(
                context(
                    t(
                        "slack_home_counts",
                        "ja",
                        month=escape_mrkdwn(month_label),
                        **{k: counts.get(k, 0) for k in ("total", "open", "taken", "resolved")},
                    )
                )
            )
        if not consultations:
            blocks.append(section(t("slack_home_none_open", "ja")))
        for c in list(consultations)[:20]:
            line = (
                f"*{c.ref}* {urgency_emoji(c.urgency)} {status_label(c.status)} · <@{c.asker_user_id}> · "
                f"{escape_mrkdwn(shorten(c.topic, 120))}"
            )
            if c.status == "taken" and c.assignee_user_id:
                line += "\n" + t("slack_home_assignee", "ja", assignee=f"<@{c.assignee_user_id}>")
            accessory = None
            if c.status == "open":
                accessory = button(t("slack_card_take", "ja"), TAKE, str(c.id), style="primary")
            elif c.status == "taken":
                accessory = button(t("slack_card_resolve", "ja"), RESOLVE, str(c.id))
            blocks.append(section(line, accessory=accessory) if accessory else section(line))
    return {"type": "home", "blocks": blocks[:100]}


def publish_home(deps: Deps, client: WebClient, user_id: str) -> None:
    staff = deps.is_staff(user_id)
    consultations: list[Consultation] = []
    counts, month = None, ""
    if staff:
        consultations = deps.store.consultations(statuses=("open", "taken"))
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        counts = deps.store.consultation_counts(since=start)
        month = f"{start:%Y年%m月}"
    view = home_view(is_staff=staff, consultations=consultations, counts=counts, month_label=month)
    if staff:
        view = with_freshness(deps, view)  # the knowledge editor's part of the App Home
    client.views_publish(user_id=user_id, view=view)
