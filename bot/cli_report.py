"""`kakehashi report gaps`: where the bot fell short, grouped by topic, so staff know what to add.

Reads the desk database (answers given without confidence, 👎 ratings with their reasons,
hand-offs to supporters) and the search index (to group questions and to name what in the
knowledge base comes closest). Needs no Slack settings. bot/cli.py adds it with `register(sub)`;
the weekly Slack post (bot/slack/gapsreport.py) shares bot/desk_gaps.py with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from sqlalchemy.engine import make_url

from bot.cli_common import CliError, embedded_store_held
from bot.desk_gaps import JST, gap_report
from bot.slack.feedback.blocks import reason_label
from bot.store import DeskStore, StoreError, parsed_safe, sqlite_file
from core.settings import Settings
from knowledge.loader import load_knowledge
from prompts.messages import t
from retrieval.embeddings import make_embedder
from retrieval.engine import open_index
from retrieval.gaps import GAP_KINDS, GapReport

EXAMPLES_SHOWN = 5


# --- text ---------------------------------------------------------------------------------------


def _both(key: str, **values: object) -> str:
    """A heading for staff who read either language: the Japanese, then the English."""
    ja, en = t(key, "ja", **values), t(key, "en", **values)
    return ja if ja == en else f"{ja} / {en}"


def _when(at: dt.datetime) -> str:
    return f"{at.astimezone(JST):%Y-%m-%d %H:%M}"


def kind_label(kind: str) -> str:
    return _both(f"report_kind_{kind}")


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_gap_report(report: GapReport, *, days: int) -> str:
    """Readable by staff in either language: headings in Japanese with English."""
    served = f"{_both('report_curated_served')}: {report.curated_served}\n"
    if report.empty:
        return f"{t('report_no_gaps', 'en', days=days)}（{t('report_no_gaps', 'ja', days=days)}）\n" + served
    by_kind = ", ".join(f"{kind_label(k)} {report.counts.get(k, 0)}" for k in GAP_KINDS)
    period = (
        f"{_when(report.since)} 〜 {_when(report.until)} JST"
        if report.since and report.until
        else t("report_last_days", "en", days=days)
    )
    lines = [
        f"{_both('report_title')} — {_both('report_last_days', days=days)} ({period})",
        f"{_both('report_items')}: {report.items}（{by_kind}） — {_both('report_topics')}: {len(report.topics)}",
        served.rstrip(),
        "",
    ]
    for n, topic in enumerate(report.topics, 1):
        lines.append(f"{n}. {_both('report_topic')}: {_one_line(topic.label, 160)}")
        if topic.terms:
            lines.append(f"   {_both('report_key_terms')}: {', '.join(topic.terms)}")
        by_kind = ", ".join(f"{kind_label(k)} {topic.counts[k]}" for k in GAP_KINDS)
        lines.append(
            f"   {_both('report_count')}: {_both('report_questions')} {topic.questions}（{by_kind}）; "
            f"{_both('report_latest')} {_when(topic.latest_at)}"
        )
        if topic.reasons:
            reasons = ", ".join(
                f"{reason_label(code, 'ja')} / {reason_label(code, 'en')} ×{count}"
                for code, count in topic.reasons.items()
            )
            lines.append(f"   {_both('report_reasons')}: {reasons}")
        for comment in topic.comments[:3]:
            lines.append(f"   {_both('report_comment')}: 「{_one_line(comment, 160)}」")
        if topic.nearest is not None:
            hint = topic.nearest
            where = f"{hint.title}（{hint.kind} {hint.origin}, {hint.similarity:.3f}）"
            if hint.close:
                lines.append(f"   {_both('report_closest_in_kb')}: {where}")
            else:
                lines.append(f"   {_both('report_new_topic')}（{_both('report_closest')}: {where}）")
        if topic.covered_by is not None:
            lines.append(
                f"   ✅ {_both('report_curated')}: {topic.covered_by.answer_id}"
                f"「{_one_line(topic.covered_by.question, 80)}」"
            )
        else:
            lines.append(
                f"   ✍ {_both('report_no_curated')}: "
                + t("report_how_to_write", "en", topic=_one_line(topic.label, 80))
            )
        lines.append(f"   {_both('report_questions')}:")
        for item in topic.items[:EXAMPLES_SHOWN]:
            dm = " [DM]" if item.private else ""  # staff see it here; the weekly channel post does not quote it
            lines.append(
                f"     - {_when(item.at)} [{t(f'report_item_{item.kind}', 'en')}]{dm} "
                f"{_one_line(item.text, 140)}{f'  ({item.ref})' if item.ref else ''}"
            )
        if len(topic.items) > EXAMPLES_SHOWN:
            lines.append(f"     {_both('report_more')}: {len(topic.items) - EXAMPLES_SHOWN}")
        lines.append("")
    lines += [f"{_both('report_note')}: {note}" for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"


# --- the command --------------------------------------------------------------------------------


def open_store(settings: Settings) -> DeskStore:
    """The desk database named by settings; a missing SQLite file is an error, not a new empty database."""
    url = settings.storage.effective_database_url
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError or ValueError for a malformed URL
        raise CliError(f"KAKEHASHI_DATABASE_URL is not a database URL: {parsed_safe(url)}") from exc
    file = sqlite_file(parsed)
    if file is not None and not file.exists():
        raise CliError(
            f"no desk database at {parsed.database}: set KAKEHASHI_DATA_DIR (or KAKEHASHI_DATABASE_URL) "
            "to where the bot keeps its data"
        )
    try:
        return DeskStore(url=url)
    except StoreError as exc:
        raise CliError(str(exc)) from exc


HELD_NOTE = (
    "a running bot holds the embedded search index, so the closest knowledge-base record of each topic "
    "is left out here (the weekly Slack post has it; with a Chroma server any process can read it)"
)


def cmd_report_gaps(args: argparse.Namespace, settings: Settings) -> int:
    days = args.days if args.days is not None else settings.gaps.window_days
    if days < 1:
        raise CliError(f"--days must be 1 or more, not {days}")
    now = dt.datetime.now(dt.UTC)
    store = open_store(settings)
    try:
        with embedded_store_held(settings) as held:
            # A second process opening the embedded store under a running bot disturbs the bot's searches:
            # then the report groups with the embedder alone and leaves the closest records out.
            report = gap_report(
                settings,
                store,
                index=(lambda: open_index(settings)) if held else None,
                embedder=lambda: make_embedder(settings),
                now=now,
                days=days,
                without_index_note=HELD_NOTE,
                knowledge=lambda: load_knowledge(settings.storage.knowledge_dir),
            )
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    if args.json:
        payload: dict[str, Any] = {"days": days, **report.to_json()}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_gap_report(report, days=days))
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    """Add `report` (with `report gaps`) to the `kakehashi` subcommands."""
    p = subparsers.add_parser("report", help="reports for supporters")
    reports = p.add_subparsers(dest="report", required=True, metavar="REPORT")
    g = reports.add_parser(
        "gaps", help="questions the bot could not answer well, grouped by topic: what to add to the knowledge base"
    )
    g.add_argument("--days", type=int, default=None, help="how many days back (default: KAKEHASHI_GAPS_WINDOW_DAYS, 7)")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.set_defaults(func=cmd_report_gaps)
