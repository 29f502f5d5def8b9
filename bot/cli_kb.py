"""`kakehashi kb …`: staff keep the knowledge base current from the command line.

add FILE | retire ID | restore ID | list [--kind K] | show ID | history [ID] | diff CHANGE_ID |
revert CHANGE_ID | stale | export FILE | import FILE. Every change is validated whole, written
atomically, recorded in the history and indexed incrementally.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.cli_common import CliError, embedded_store_held, make_editor
from core.settings import Settings
from knowledge.errors import KnowledgeError, RecordError
from knowledge.freshness import stale_answers, stale_records
from knowledge.journal import Actor, Change
from knowledge.recordfiles import BASE_HEADER, RECORD_SUFFIXES
from knowledge.schema import Ministry
from retrieval.engine import ingest, open_index
from retrieval.leaks import leaks

KINDS = ("program", "vc", "cdmo", "answer", "document")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    kb = subparsers.add_parser("kb", help="add, update, retire and restore records and documents; history")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    p = sub.add_parser(
        "add",
        help="add or update the records in a YAML/Markdown record file, or add a document (PDF, .docx, .md, .txt)",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--title", help="document title (default: from the file)")
    p.add_argument("--ministry", choices=[m.value for m in Ministry], help="document's ministry (default: other)")
    p.add_argument("--date", type=dt.date.fromisoformat, help="document date YYYY-MM-DD (default: from the file)")
    p.add_argument("--id", dest="doc_id", help="document id; an existing id replaces that document's text")
    p.add_argument("--description", help="one-line description of the document (Japanese)")
    p.set_defaults(func=cmd_add)

    for name, help_text in (
        ("retire", "stop recommending and answering from a record (kept, restorable)"),
        ("restore", "bring a retired record back"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("record_id")
        p.set_defaults(func=cmd_status, status=name)

    p = sub.add_parser("list", help="list records and documents")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print a record file (with the base line that guards an update) or a document")
    p.add_argument("record_id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("history", help="changes, newest first (all, or of one record)")
    p.add_argument("record_id", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("diff", help="what a change changed: the before and after of each file")
    p.add_argument("change_id", type=int)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("revert", help="undo a change (recorded as a new change)")
    p.add_argument("change_id", type=int)
    p.set_defaults(func=cmd_revert)

    p = sub.add_parser("stale", help="records whose facts are old or whose application rounds are all past")
    p.add_argument("--days", type=int, help="age limit in days (default: KAKEHASHI_KB_STALE_DAYS)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stale)

    p = sub.add_parser("export", help="write records, documents and history to a .tar.gz")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="replace records, documents and history with an export (the old ones are kept beside them)"
    )
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_import)
    return kb


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(id=user, via="cli")


def reindex(settings: Settings) -> None:
    """Index what the change touched, unless a running bot owns the embedded store (it indexes the change
    itself within seconds of its next question)."""
    with embedded_store_held(settings) as held:
        if not held:
            print(
                "indexing: the running bot holds the embedded index and will index this change itself", file=sys.stderr
            )
            return
        report = ingest(settings, open_index(settings))
    print(
        f"indexed: {len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed; "
        f"embedded {report.embedded} passages in {report.seconds:.2f}s"
    )


def _report(change: Change, settings: Settings) -> None:
    print(f"change {change.id}: {change.summary}")
    for warning in change.warnings:
        print(f"warning: {warning}")
    for warning in _unusable_answers(change, settings):
        print(f"warning: {warning}")


def _unusable_answers(change: Change, settings: Settings) -> list[str]:
    """A curated answer the change saved that the desk will not give: what founders must not see, or too old."""
    if not any(f.path.startswith("answers/") for f in change.files):
        return []
    kb = make_editor(settings).load()
    ids = [r.id for r in kb.records] + [a.id for a in kb.answers]
    warnings = []
    for answer in (a for a in kb.answers if a.id in change.records and a.status == "active"):
        found = leaks("\n".join(filter(None, [answer.answer_ja, answer.answer_en])), ids)
        if found:
            warnings.append(
                f"{answer.id} will not be given: it shows what founders must not see "
                f"({', '.join(dict.fromkeys(found))}); remove it and add the file again"
            )
        if (dt.date.today() - answer.as_of).days > settings.kb.stale_days:
            warnings.append(
                f"{answer.id} will not be given: as_of {answer.as_of} is over {settings.kb.stale_days} "
                "days ago; set the date it was checked"
            )
    return warnings


def _run_change(settings: Settings, make: Callable[[], Change]) -> int:
    try:
        change = make()
    except RecordError as exc:
        # Every problem, not only the first: staff fix a file in one go.
        print(f"kakehashi: error: {exc}", file=sys.stderr)
        for field, line, message in exc.problems[1:]:
            print(f"  {exc.path}:{line}: field {field}: {message}", file=sys.stderr)
        return 2
    _report(change, settings)
    reindex(settings)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    editor = make_editor(settings)
    meta = {
        "title": args.title,
        "ministry": args.ministry,
        "date": args.date,
        "doc_id": args.doc_id,
        "description_ja": args.description,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    if meta and args.file.suffix.lower() in RECORD_SUFFIXES:
        raise CliError("--title, --ministry, --date, --id and --description are for documents, not record files")
    return _run_change(settings, lambda: editor.add_file(args.file, actor=cli_actor(), **meta))


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    editor = make_editor(settings)
    method = editor.retire if args.status == "retire" else editor.restore
    return _run_change(settings, lambda: method(args.record_id, actor=cli_actor()))


def cmd_revert(args: argparse.Namespace, settings: Settings) -> int:
    editor = make_editor(settings)
    return _run_change(settings, lambda: editor.revert(args.change_id, actor=cli_actor()))


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    kb = make_editor(settings).load()
    rows: list[dict[str, Any]] = []
    if args.kind != "document":
        for record in [*kb.records, *kb.answers]:
            if args.kind in (None, record.kind):
                rows.append(
                    {
                        "id": record.id,
                        "kind": record.kind,
                        "status": record.status,
                        "as_of": record.as_of.isoformat(),
                        "title": record.title,
                    }
                )
    if args.kind in (None, "document"):
        for document in kb.documents:
            rows.append(
                {
                    "id": document.meta.id,
                    "kind": "document",
                    "status": "active",
                    "as_of": document.meta.date.isoformat(),
                    "title": document.meta.title,
                    "file": document.meta.file,
                }
            )
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for row in rows:
        status = "" if row["status"] == "active" else "  [retired]"
        print(f"{row['kind']:<8} {row['id']:<48} {row['as_of']}  {row['title']}{status}")
    print(f"({len(rows)} shown)", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    editor = make_editor(settings)
    kb = editor.load()
    document = next((d for d in kb.documents if d.meta.id == args.record_id or d.meta.file == args.record_id), None)
    if document is not None:
        meta = document.meta
        print(
            f"document {meta.id}: {meta.title}\nfile: documents/{meta.file}\nministry: {meta.ministry.value}\n"
            f"date: {meta.date}\noriginal: {meta.original or '-'}\ncharacters: {len(document.text)}\n"
        )
        print(document.text[:2000] + ("\n…" if len(document.text) > 2000 else ""))
        return 0
    text, base = editor.record_text(args.record_id)
    # The base line lets `kb add` notice that someone else changed the record after this was printed.
    sys.stdout.write(f"{BASE_HEADER}{base}\n{text}")
    return 0


def _change_line(change: Change) -> str:
    when = change.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    warned = "".join(f"\n       warning: {w}" for w in change.warnings)
    return f"{change.id:>5}  {when}  {change.actor.label:<16} {change.action:<15} {change.summary}{warned}"


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    # An unknown id is allowed: a removed record still has history.
    changes = make_editor(settings).history(args.record_id, limit=args.limit)
    if args.json:
        for change in changes:
            data = change.to_json()
            data["files"] = [f["path"] for f in data["files"]]
            print(json.dumps(data, ensure_ascii=False))
        return 0
    if not changes:
        print("no changes recorded" + (f" for {args.record_id}" if args.record_id else ""))
    for change in changes:
        print(_change_line(change))
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    change = make_editor(settings).get_change(args.change_id)
    print(_change_line(change))
    for item in change.files:
        before = (item.before or "").splitlines(keepends=True)
        after = (item.after or "").splitlines(keepends=True)
        sys.stdout.writelines(difflib.unified_diff(before, after, fromfile=f"a/{item.path}", tofile=f"b/{item.path}"))
    return 0


def cmd_stale(args: argparse.Namespace, settings: Settings) -> int:
    days = args.days or settings.kb.stale_days
    kb = make_editor(settings).load()
    stale = stale_records(kb, today=dt.date.today(), max_age_days=days)
    answers = stale_answers(kb, today=dt.date.today(), max_age_days=days)
    unused = [
        (
            f"確認日 {a.as_of:%Y-%m-%d} から{age}日：この回答はもう使われていません / checked {a.as_of:%Y-%m-%d}, "
            f"{age} days ago (limit {days}): no longer given"
        )
        for a, age in answers
    ]
    if args.json:
        for item in stale:
            print(
                json.dumps(
                    {
                        "id": item.record.id,
                        "kind": item.record.kind,
                        "title": item.record.title,
                        "as_of": item.record.as_of.isoformat(),
                        "reasons": list(item.reasons),
                    },
                    ensure_ascii=False,
                )
            )
        for (answer, _), reason in zip(answers, unused, strict=True):
            print(
                json.dumps(
                    {
                        "id": answer.id,
                        "kind": answer.kind,
                        "title": answer.title,
                        "as_of": answer.as_of.isoformat(),
                        "reasons": [reason],
                    },
                    ensure_ascii=False,
                )
            )
        return 0
    for (answer, _), reason in zip(answers, unused, strict=True):
        print(f"{answer.kind:<8} {answer.id}  {answer.title}\n    - {reason}")
    if not stale:
        print(f"nothing stale: every active record is under {days} days old and has no rounds all in the past")
        return 0
    for item in stale:
        print(f"{item.record.kind:<8} {item.record.id}  {item.record.title}")
        for reason in item.reasons:
            print(f"    - {reason}")
    print(f"({len(stale)} records to check)", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    count = make_editor(settings).export(args.file)
    print(f"exported {count} files to {args.file}")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        kb = make_editor(settings).import_archive(args.file)
    except KnowledgeError as exc:
        raise CliError(f"nothing imported: {exc}") from exc
    print(
        f"imported {len(kb.records)} records, {len(kb.answers)} curated answers and {len(kb.documents)} documents "
        f"from {args.file}"
    )
    reindex(settings)
    return 0
