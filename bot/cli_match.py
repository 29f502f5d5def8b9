"""`kakehashi match`, and the matchmaking part of `kakehashi eval`.

bot/cli.py wires these in: `register(sub)` adds the subcommand, and `cmd_eval` (bot/cli_eval.py) calls
`eval_match(...)`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from bot.cli_common import CliError, percentile, read_jsonl, ready_index, stdin_lines
from core.settings import Settings
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.normalize import squash
from prompts.messages import t
from retrieval.answer import make_chat_model
from retrieval.index import SearchIndex
from retrieval.match import Limits, Matcher, MatchResult, Recommendation
from retrieval.profile import render_profile

DEV_MATCH_FILE = "dev_match.jsonl"
_QUOTE_CHARS = 110


def make_matcher(settings: Settings, *, index: SearchIndex | None = None, kb: KnowledgeBase | None = None) -> Matcher:
    """A Matcher over the knowledge files named in settings, reusing `index` and `kb` when given."""
    kb = kb or load_knowledge(settings.storage.knowledge_dir)
    return Matcher(kb=kb, index=index or ready_index(settings, kb=kb), chat_model=make_chat_model(settings))


def _format_recommendation(rank: int, rec: Recommendation, language: str) -> list[str]:
    """What a founder reads: name, fit in words, reasons and sources by title (record ids and scores are in
    --json, for staff)."""
    other = f"（{rec.name_en}）" if language == "en" and rec.name_en and rec.name_en != rec.name else ""
    lines = [f"{rank}. {rec.name}{other}" + (f"  — {rec.fit}" if rec.fit else "")]
    lines += [f"   - {reason}" for reason in rec.reasons]
    lines.append(f"   {t('cli_match_sources', language)}:")
    for n, citation in enumerate(rec.citations, 1):
        quote = " ".join(citation.text.replace("**", "").split())
        quote = quote if len(quote) <= _QUOTE_CHARS else quote[:_QUOTE_CHARS] + "…"
        lines.append(f"     [{n}] {citation.source}: 「{quote}」")
    return lines


def format_match(result: MatchResult) -> str:
    """The profile as understood, then each kind's recommendations with reasons and sources, then the human route."""
    language = result.language
    lines = [render_profile(result.profile, language), ""]
    if not result.nothing_fits:
        for kind in ("program", "vc", "cdmo"):
            recs = result.of_kind(kind)
            lines.append(f"■ {t(f'cli_match_{kind}', language)}")
            if not recs:
                lines.append(f"  {t('cli_match_none', language)}")
            for rank, rec in enumerate(recs, 1):
                lines += _format_recommendation(rank, rec, language)
            lines.append("")
    lines += result.notes
    if result.referral is not None:
        lines += ["", f"■ {t('cli_match_referral', language)}", *_format_recommendation(1, result.referral, language)]
    return "\n".join(lines).rstrip() + "\n"


def cmd_match(args: argparse.Namespace, settings: Settings) -> int:
    matcher = make_matcher(settings)
    texts = stdin_lines(sys.stdin) if args.profile == "-" else [args.profile]
    for text in texts:
        if not text.strip():
            raise CliError("the profile text is empty: describe who you are, your stage, modality and needs")
        result = matcher.match(text, limits=Limits())
        if args.json:
            sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            sys.stdout.write(format_match(result))
            sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    """Add `match` to the `kakehashi` subcommands (the object `add_subparsers()` returned)."""
    p = subparsers.add_parser("match", help="recommend programs, certified VCs and CDMOs for a profile, with reasons")
    p.add_argument(
        "profile",
        metavar="PROFILE_TEXT",
        help="who you are, stage, modality, disease area and needs, in Japanese or English; "
        "- reads one profile per line from stdin",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per profile")
    p.set_defaults(func=cmd_match)


# --- evaluation ---------------------------------------------------------------------------------

DEV_PROFILES_FILE = "dev_profiles.jsonl"
_PROFILE_TOP = 3  # a card shows three of each kind


def _names(matcher: Matcher, recs: list[Recommendation]) -> list[str]:
    names = []
    for rec in recs:
        record = matcher.kb.get(rec.id)
        names.append(
            squash(" ".join([record.title, getattr(record, "name_en", None) or "", *getattr(record, "aliases", [])]))
        )
    return names


def _any_named(names: list[str], wanted: list[str]) -> bool:
    return any(squash(w) in name for name in names for w in wanted)


def judge_profile(matcher: Matcher, row: dict[str, Any], result: MatchResult) -> dict[str, bool]:
    """Each check a dev_profiles row asks for, True when the result meets it."""
    programs = result.of_kind("program")
    checks: dict[str, bool] = {}
    if row.get("nothing_fits"):
        checks["nothing_fits"] = not programs
    if row.get("programs_any"):
        checks["programs_any"] = _any_named(_names(matcher, programs[:_PROFILE_TOP]), row["programs_any"])
    if row.get("cdmo_any"):
        checks["cdmo_any"] = _any_named(_names(matcher, result.of_kind("cdmo")[:_PROFILE_TOP]), row["cdmo_any"])
    if "vc_required" in row:
        checks["vc_required"] = bool(result.of_kind("vc")) == bool(row["vc_required"])
    return checks


def run_profile_eval(matcher: Matcher, rows: list[dict[str, Any]], *, err: TextIO = sys.stderr) -> dict[str, float]:
    """dev_profiles.jsonl: a profile passes when every check it states holds (programs in the top 3, a CDMO in
    the top 3, VCs recommended exactly when required, no programs when nothing fits)."""
    passed = 0
    per_check: dict[str, list[bool]] = {}
    for row in rows:
        result = matcher.match(row["profile"], limits=Limits())
        checks = judge_profile(matcher, row, result)
        for name, ok in checks.items():
            per_check.setdefault(name, []).append(ok)
        if all(checks.values()):
            passed += 1
        else:
            failed = [name for name, ok in checks.items() if not ok]
            print(
                f"  miss {row.get('id', '?')} ({', '.join(failed)}): programs "
                f"{[r.id for r in result.of_kind('program')[:_PROFILE_TOP]]}, vcs "
                f"{[r.id for r in result.of_kind('vc')[:_PROFILE_TOP]]}, cdmos "
                f"{[r.id for r in result.of_kind('cdmo')[:_PROFILE_TOP]]}",
                file=err,
            )
    n = len(rows) or 1
    summary = {"profiles": len(rows), "profiles_passed": passed / n}
    summary |= {f"{name}_rate": sum(oks) / len(oks) for name, oks in per_check.items()}
    return summary


def run_match_eval(matcher: Matcher, rows: list[dict[str, Any]], *, err: TextIO = sys.stderr) -> dict[str, float]:
    """How often a wanted program is among the top 5 programs, and the warm latency of match()."""
    matcher.match("ウォームアップ: 非臨床段階の創薬スタートアップ")  # load caches so latency measures the warm path
    hits = 0
    latencies: list[float] = []
    for row in rows:
        started = time.perf_counter()
        result = matcher.match(row["profile"], limits=Limits())
        latencies.append((time.perf_counter() - started) * 1000)
        wanted = [squash(name) for name in row["programs_any"]]
        top = [matcher.kb.get(r.id) for r in result.of_kind("program")[:5]]
        names = [squash(getattr(record, "name_ja", "")) for record in top]
        rank = next((i for i, name in enumerate(names, 1) if any(w in name for w in wanted)), None)
        hits += rank is not None
        if rank is None:
            print(f"  miss {row.get('id', '?')}: top programs {[r.id for r in top]}", file=err)
    # Latency over more calls than the small dev set gives a steadier median.
    for row in rows * 4:
        started = time.perf_counter()
        matcher.match(row["profile"], limits=Limits())
        latencies.append((time.perf_counter() - started) * 1000)
    n = len(rows) or 1
    return {
        "profiles": len(rows),
        "program_in_top5": hits / n,
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p95_ms": percentile(latencies, 0.95),
    }


def eval_match(
    *,
    settings: Settings,
    eval_dir: Path,
    index: SearchIndex | None = None,
    kb: KnowledgeBase | None = None,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Run dev_match.jsonl (top-5 program hit rate, warm latency) and, when present, dev_profiles.jsonl."""
    matcher = make_matcher(settings, index=index, kb=kb)
    rows = read_jsonl(Path(eval_dir) / DEV_MATCH_FILE, required=("profile", "programs_any"))
    result = run_match_eval(matcher, rows)
    out.write(f"match profiles: {result['profiles']}\n")
    out.write(f"match: wanted program in top 5: {result['program_in_top5']:.3f}\n")
    profiles_path = Path(eval_dir) / DEV_PROFILES_FILE
    if profiles_path.exists():
        profile_rows = read_jsonl(profiles_path, required=("profile",))
        summary = run_profile_eval(matcher, profile_rows)
        result |= {f"dev_profiles_{k}": v for k, v in summary.items()}
        out.write(f"dev profiles: {summary['profiles']}, all checks pass: {summary['profiles_passed']:.3f}\n")
        for name in ("programs_any", "cdmo_any", "vc_required", "nothing_fits"):
            if f"{name}_rate" in summary:
                out.write(f"dev profiles: {name}: {summary[f'{name}_rate']:.3f}\n")
    out.write(f"match warm latency p50: {result['p50_ms']:.1f} ms, p95: {result['p95_ms']:.1f} ms\n")
    out.flush()
    return result
