"""What every knowledge change made from Slack does after it is written: tell the staff member,
bring the running bot up to date (LiveKnowledge.refresh), and say when it is searchable.

Shared by the `/kakehashi kb` commands, the record and document forms, and file uploads.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blockkit import JSON, MAX_VIEW_BLOCKS
from bot.slack.deps import Deps
from bot.slack.edge import log_failure, slack_error
from bot.slack.kb.blocks import change_done_text, home_freshness_blocks
from knowledge.editor import KnowledgeEditor
from knowledge.errors import ConflictError, KnowledgeError, RecordError
from knowledge.freshness import stale_records
from knowledge.journal import Actor, Change
from knowledge.loader import KnowledgeBase
from prompts.messages import t

Blocks = list[JSON]


def actor_for(user_id: str) -> Actor:
    return Actor(id=user_id, via="slack")


def editor_of(deps: Deps) -> KnowledgeEditor:
    if deps.editor is None:
        raise RuntimeError("the knowledge editor is not configured")
    return deps.editor


def current_kb(deps: Deps) -> KnowledgeBase:
    """The knowledge the bot serves (in memory); the editor's disk copy when there is no live knowledge."""
    if deps.live is not None:
        return deps.live.kb
    return editor_of(deps).load()


def problems_of(error: RecordError) -> list[tuple[str, int | None, str]]:
    """Every (field path, line, message) of a RecordError; one built from its field when it lists none."""
    if error.problems:
        return [(path, line, message) for path, line, message in error.problems]
    return [(error.field or "", error.line, error.reason)]


def conflict_text(error: ConflictError, language: str) -> str:
    change = error.change
    if change is None:
        return t("slack_kb_conflict_unknown", language)
    who = change.actor.name or change.actor.id
    who = (f"{who} さん" if language == "ja" else who) if change.actor.via == "slack" else who
    when = f"{change.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return t("slack_kb_conflict", language, who=who, change=change.id, when=when)


def refresh_and_tell(
    deps: Deps,
    client: WebClient,
    *,
    channel: str,
    ts: str,
    render: Callable[[str], tuple[str, Blocks | None]],
    language: str,
) -> None:
    """Refresh the running bot's knowledge, then rewrite the confirmation at (channel, ts) with
    `render(note)`, the note saying whether and how fast the change became searchable."""
    started = time.perf_counter()
    if deps.live is None:
        note = t("slack_kb_not_live", language)
    else:
        try:
            deps.live.refresh()
            note = t("slack_kb_searchable", language, seconds=time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - the change is saved; the next question retries the refresh
            reference = log_failure(deps.logger, what="refreshing the knowledge after a change", error=exc)
            note = t("slack_kb_refresh_failed", language, ref=reference)
    text, blocks = render(note)
    try:
        kwargs: JSON = {"blocks": blocks} if blocks is not None else {}
        client.chat_update(channel=channel, ts=ts, text=text, **kwargs)
    except SlackApiError as exc:
        deps.logger.warning("could not update the confirmation %s/%s: %s", channel, ts, slack_error(exc))


def announce_change(
    deps: Deps,
    client: WebClient,
    *,
    user: str,
    change: Change,
    language: str,
    channel: str | None = None,
    thread_ts: str | None = None,
) -> None:
    """Post the confirmation (change id and summary) to the staff member's DM, or to `channel`, then
    refresh and update it with when it became searchable."""
    where = channel or user
    first = change_done_text(change, searchable=t("slack_kb_refreshing", language), language=language)
    try:
        response = client.chat_postMessage(
            channel=where, thread_ts=thread_ts, text=first, unfurl_links=False, unfurl_media=False
        )
    except SlackApiError as exc:  # the change is saved and recorded; make it searchable all the same
        deps.logger.warning("could not confirm change %s to %s: %s", change.id, where, slack_error(exc))
        if deps.live is not None:
            try:
                deps.live.refresh()
            except Exception as refresh_error:  # noqa: BLE001 - the next question retries it
                deps.logger.error("refreshing after change %s failed: %s", change.id, refresh_error)
        return
    refresh_and_tell(
        deps,
        client,
        channel=str(response["channel"]),
        ts=str(response["ts"]),
        language=language,
        render=lambda note: (change_done_text(change, searchable=note, language=language), None),
    )


def with_freshness(deps: Deps, view: JSON) -> JSON:
    """A staff member's App Home with the knowledge freshness section (stale records, oldest first),
    kept within the 100 blocks a view may hold. Without an editor the view is returned as it is."""
    if deps.editor is None:
        return view
    max_age = deps.settings.kb.stale_days
    try:
        stale = stale_records(current_kb(deps), today=dt.date.today(), max_age_days=max_age)
    except KnowledgeError as exc:
        deps.logger.warning("no freshness section on the App Home: %s", exc)
        return view
    blocks = list(view.get("blocks") or [])
    room = MAX_VIEW_BLOCKS - len(blocks)
    limit = 10
    extra = home_freshness_blocks(stale, max_age_days=max_age, limit=limit)
    while len(extra) > room and limit > 0:
        limit -= 1
        extra = home_freshness_blocks(stale, max_age_days=max_age, limit=limit)
    if len(extra) > room:
        return view
    return {**view, "blocks": blocks + extra}
