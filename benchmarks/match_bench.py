"""Warm latency of `Matcher.match`, and the top picks for hand-written profiles (figures, not assertions).

    KAKEHASHI_DATA_DIR=... python benchmarks/match_bench.py [--rounds 5] [--show]

Uses the index named by the settings (builds it first if it is empty). The profiles in
benchmarks/match_profiles.jsonl were written to check quality beyond the development set:
each carries what a MEDISO supporter would expect, to read next to what came back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bot.cli_match import make_matcher
from core.settings import load_settings
from knowledge.seeding import prepare_knowledge_dir
from retrieval.match import Limits
from retrieval.profile import extract_profile

HERE = Path(__file__).resolve().parent
PROFILES = HERE / "match_profiles.jsonl"
DEV = HERE.parent / "evals" / "dev" / "dev_match.jsonl"
DEV_PROFILES = HERE.parent / "evals" / "dev" / "dev_profiles.jsonl"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms  (n={len(ordered)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="passes over all profiles")
    parser.add_argument("--show", action="store_true", help="print each profile's top picks")
    args = parser.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    started = time.perf_counter()
    settings = load_settings()
    prepare_knowledge_dir(settings)  # as the command line does: the default folder is seeded on first use
    matcher = make_matcher(settings)
    print(f"cold start (load knowledge, open index, load embedder): {(time.perf_counter() - started) * 1000:.0f} ms")
    rows = _rows(PROFILES) + _rows(DEV) + _rows(DEV_PROFILES)
    started = time.perf_counter()
    matcher.match(rows[0]["profile"])
    print(f"first match (caches, portfolio vectors):                {(time.perf_counter() - started) * 1000:.0f} ms")

    total, extract, embed = [], [], []
    for _ in range(args.rounds):
        for row in rows:
            t0 = time.perf_counter()
            extract_profile(row["profile"], vocabulary=matcher.vocabulary)
            t1 = time.perf_counter()
            matcher.index.embedder.embed_query(row["profile"])
            t2 = time.perf_counter()
            matcher.match(row["profile"], limits=Limits())
            t3 = time.perf_counter()
            extract.append((t1 - t0) * 1000)
            embed.append((t2 - t1) * 1000)
            total.append((t3 - t2) * 1000)
    print(f"warm match (whole call):  {_ms(total)}")
    print(f"  profile extraction:     {_ms(extract)}")
    print(f"  query embedding:        {_ms(embed)}")

    if args.show:
        for row in rows:
            result = matcher.match(row["profile"])
            fields = {k: v for k, v in result.profile.model_dump(mode="json").items() if v and k != "free_text"}
            print(f"\n== {row['id']}: {row['profile']}\n   profile: {fields}")
            if row.get("expect"):
                print(f"   expect:  {row['expect']}")
            for kind in ("program", "vc", "cdmo"):
                picks = [f"{r.name} ({r.score:.2f})" for r in result.of_kind(kind)]
                print(f"   {kind:7} {' | '.join(picks) if picks else '-'}")
            for note in result.notes:
                print(f"   note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
