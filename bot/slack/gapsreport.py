"""The weekly knowledge-gaps report in the supporters' channel.

`gaps_blocks` is a pure Block Kit builder; `post_weekly_gaps` posts this week's report once,
however many bot processes share the database (the week's key is claimed with
`DeskStore.claim_event`, an insert that only one process can win); `GapsScheduler` is the
daemon thread `serve` starts when KAKEHASHI_GAPS_WEEKLY is on.

The claimed key is not kept for ever (processed events are pruned after two days), so a report
is only posted on its day (gaps_weekday, from gaps_hour, Japan time): within a day the key is
still there to stop a second post.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from slack_sdk import WebClient

from bot.desk_gaps import JST, gap_report
from bot.slack.blockkit import JSON, button
from bot.slack.deps import AnswererLike, Deps
from bot.slack.edge import log_failure, new_reference
from bot.slack.feedback.blocks import reason_label
from bot.slack.ids import CURATE_GAP
from bot.slack.sources import SourceCatalog
from bot.slack.text import escape_mrkdwn, shorten
from bot.store import DeskStore, StoreError
from core.settings import Settings
from knowledge.loader import load_knowledge
from prompts.messages import t
from retrieval.gaps import GAP_KINDS, GapReport, GapTopic
from retrieval.index import SearchIndex

Block = JSON

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
TOPICS_SHOWN = 15  # 3 blocks of heading, 2 a topic, 1 for the rest: within Slack's 50
EXAMPLES_SHOWN = 3
CHECK_EVERY_S = 300.0


def _days(report: GapReport) -> int:
    if report.since and report.until:
        return max(1, round((report.until - report.since).total_seconds() / 86400))
    return 7


def _jst(at: dt.datetime | None, pattern: str = "%Y-%m-%d") -> str:
    return at.astimezone(JST).strftime(pattern) if at else "?"


def _topic_blocks(n: int, topic: GapTopic, language: str) -> list[Block]:
    """One topic. Questions asked in DMs are counted but never quoted here: the post goes to a channel."""
    heading = t("slack_gaps_private_topic", language) if topic.private else escape_mrkdwn(shorten(topic.label, 200))
    lines = [
        f"*{n}. {heading}*",
        t(
            "slack_gaps_questions",
            language,
            questions=topic.questions,
            latest=_jst(topic.latest_at, "%m/%d %H:%M"),
            **topic.counts,
        ),
    ]
    if topic.terms and not topic.private:
        lines.append(t("slack_gaps_terms", language, terms=escape_mrkdwn(", ".join(topic.terms))))
    if topic.reasons:
        reasons = ", ".join(f"{reason_label(code, language)} ×{count}" for code, count in topic.reasons.items())
        lines.append(t("slack_gaps_reasons", language, reasons=escape_mrkdwn(reasons)))
    if topic.nearest is not None:
        hint = topic.nearest
        title = escape_mrkdwn(shorten(hint.title, 120))
        lines.append(
            t("slack_gaps_close", language, title=title, origin=escape_mrkdwn(hint.origin))
            if hint.close
            else t("slack_gaps_new", language, title=title)
        )
    if topic.covered_by is not None:
        lines.append(t("slack_gaps_covered", language, question=escape_mrkdwn(shorten(topic.covered_by.question, 150))))
    else:
        lines.append(t("slack_gaps_uncovered", language))
    private = sum(1 for i in topic.items if i.private)
    if private and not topic.private:
        lines.append(t("slack_gaps_private_count", language, n=private))
    blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:SECTION_LIMIT]}}]
    # The offer names a question the desk answered in a channel (its id, checked on click), never DM text.
    shared_answer = next((i.answer_id for i in topic.items if not i.private and i.answer_id), None)
    if topic.covered_by is None and shared_answer:
        blocks[0]["accessory"] = button(t("slack_gaps_write", language), CURATE_GAP, shared_answer)
    # Other wordings of the question, and what 👎 raters wrote: what staff need to write the answer.
    shared = [i for i in topic.items if not i.private]
    seen: list[str] = []
    for text in (i.text for i in shared):
        if " ".join(text.split()) != " ".join(topic.label.split()) and text not in seen:
            seen.append(text)
    comments = [i.comment.strip() for i in shared if i.kind == "thumbs_down" and i.comment.strip()]
    elements = [f"・{escape_mrkdwn(shorten(text, 150))}" for text in seen[:EXAMPLES_SHOWN]]
    elements += [f"💬 「{escape_mrkdwn(shorten(comment, 150))}」" for comment in comments[:2]]
    if elements:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": e} for e in elements[:10]]})
    return blocks


def gaps_blocks(report: GapReport, language: str = "ja", *, max_topics: int = TOPICS_SHOWN) -> list[Block]:
    """The report as Block Kit: totals, then the largest topics with their counts, key terms, 👎
    reasons and where the knowledge base stands; user text escaped; within Slack's limits."""
    days = _days(report)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": t("slack_gaps_title", language), "emoji": True}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": t(
                        "slack_gaps_period", language, since=_jst(report.since), until=_jst(report.until), days=days
                    ),
                }
            ],
        },
    ]
    blocks[1]["elements"].append(
        {"type": "mrkdwn", "text": t("slack_gaps_curated_served", language, n=report.curated_served)}
    )
    if report.empty:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": t("slack_gaps_none", language, days=days)}}
        )
        return blocks
    blocks[1]["elements"].append(
        {
            "type": "mrkdwn",
            "text": t(
                "slack_gaps_totals",
                language,
                topics=len(report.topics),
                **{k: report.counts.get(k, 0) for k in GAP_KINDS},
            ),
        }
    )
    blocks.append({"type": "divider"})
    shown = max(0, min(max_topics, (MAX_BLOCKS - len(blocks) - 1) // 2))
    for n, topic in enumerate(report.topics[:shown], 1):
        blocks += _topic_blocks(n, topic, language)
    rest = len(report.topics) - shown
    if rest > 0:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": t("slack_gaps_more", language, n=rest)}]}
        )
    return blocks[:MAX_BLOCKS]


def gaps_fallback_text(report: GapReport, language: str = "ja") -> str:
    """The notification text (and what clients without blocks show)."""
    if report.empty:
        return t("slack_gaps_fallback_none", language, days=_days(report))
    return t("slack_gaps_fallback", language, topics=len(report.topics), items=report.items, days=_days(report))


# --- posting ------------------------------------------------------------------------------------


def week_key(now: dt.datetime) -> str:
    """The claim for one ISO week in Japan time, e.g. gaps-report-2026-W48."""
    year, week, _ = now.astimezone(JST).isocalendar()
    return f"gaps-report-{year}-W{week:02d}"


def is_due(now: dt.datetime, settings: Settings) -> bool:
    """Whether `now` is on the report's day, at or after its hour (Japan time)."""
    local = now.astimezone(JST)
    return local.weekday() == settings.gaps.weekday and local.hour >= settings.gaps.hour


def post_weekly_gaps(deps: Deps, client: WebClient, now: dt.datetime, *, index: SearchIndex | None = None) -> bool:
    """Post the report for the window ending `now` to the supporters' channel, unless this week's
    report was already claimed (by this or another process). True when this call posted it.

    `index` defaults to the answerer's. The week is claimed before posting, so a failed post is
    logged (with a reference) and not retried: at most one report a week, never two.
    """
    channel = deps.settings.slack.supporters_channel
    if not channel:
        deps.logger.warning("gaps report: KAKEHASHI_SUPPORTERS_CHANNEL is not set; nothing posted")
        return False
    index = index or getattr(deps.answerer, "index", None)
    if not isinstance(index, SearchIndex):
        raise TypeError("post_weekly_gaps needs a SearchIndex (pass index=, or an Answerer in deps)")
    try:
        if not deps.store.claim_event(week_key(now)):
            return False
    except StoreError as exc:  # the database is down: the scheduler tries again at its next check
        deps.logger.error("gaps report for %s: cannot claim the week in the database: %s", week_key(now), exc)
        return False
    try:
        report = gap_report(
            deps.settings,
            deps.store,
            index=index,
            now=now,
            days=deps.settings.gaps.window_days,
            knowledge=lambda: (
                deps.live.kb if deps.live is not None else load_knowledge(deps.settings.storage.knowledge_dir)
            ),
        )
        client.chat_postMessage(
            channel=channel,
            text=gaps_fallback_text(report),
            blocks=gaps_blocks(report),
            unfurl_links=False,
            unfurl_media=False,
        )
    except Exception as exc:  # noqa: BLE001 - the Slack edge: a failed weekly post must not stop the bot
        log_failure(deps.logger, what=f"gaps report for {week_key(now)}", error=exc)
        return False
    deps.logger.info("gaps report for %s posted to %s: %d topics", week_key(now), channel, len(report.topics))
    return True


class GapsScheduler:
    """A daemon thread that checks every few minutes whether the weekly report is due and posts it."""

    def __init__(
        self,
        *,
        deps: Deps,
        client: WebClient,
        index: SearchIndex | None = None,
        interval_s: float = CHECK_EVERY_S,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._deps = deps
        self._client = client
        self._index = index
        self._interval_s = interval_s
        self._clock = clock
        self._done: str | None = None  # the week this process has settled (posted, or seen claimed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kakehashi-gaps-report", daemon=True)

    def start(self) -> GapsScheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def tick(self) -> bool:
        """One check; True when this call posted the report."""
        now = self._clock()
        if not is_due(now, self._deps.settings) or self._done == week_key(now):
            return False
        posted = post_weekly_gaps(self._deps, self._client, now, index=self._index)
        self._done = week_key(now)
        return posted

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # a broken check is logged; the next one tries again
                self._deps.logger.error(
                    "gaps report check failed [ref %s]: %s",
                    new_reference(),
                    exc,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
            self._stop.wait(self._interval_s)


def start_weekly_gaps(
    *,
    settings: Settings,
    store: DeskStore,
    answerer: AnswererLike,
    client: WebClient,
    logger: logging.Logger | None = None,
    interval_s: float = CHECK_EVERY_S,
) -> GapsScheduler | None:
    """What `serve` calls: the running scheduler when KAKEHASHI_GAPS_WEEKLY is on, else None."""
    if not settings.gaps.weekly:
        return None
    deps = Deps(
        settings=settings,
        answerer=answerer,
        matcher=None,
        store=store,
        catalog=SourceCatalog.empty(),
        logger=logger or logging.getLogger("kakehashi.gaps"),
    )
    return GapsScheduler(deps=deps, client=client, interval_s=interval_s).start()
