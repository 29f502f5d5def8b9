"""Where the time goes on a large corpus: cProfile of the first ask, warm asks, warm matches and a
one-passage incremental ingest (run `python -m benchmarks.bench_query --sizes 100k` first to build it).

    python -m benchmarks.profile_corpus 100k [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from benchmarks.bench_query import EVAL_DIR, EXTRA_QUESTIONS, HERE, _rows
from benchmarks.corpora import SIZES, corpus_dir, settings_for


def _profiled(name: str, fn: object, top: int) -> None:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(fn)  # type: ignore[arg-type]
    print(f"\n== {name}: {time.perf_counter() - started:.2f} s")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", choices=[s for s in SIZES if s != "seed"])
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)

    from bot.cli_common import make_answerer
    from knowledge.loader import load_knowledge
    from retrieval.engine import open_index
    from retrieval.index import Filters
    from retrieval.match import Matcher

    settings = settings_for(corpus_dir(args.size))
    started = time.perf_counter()
    index = open_index(settings)
    print(f"open_index: {time.perf_counter() - started:.2f} s ({len(index)} passages)")
    kb = load_knowledge(settings.storage.knowledge_dir)
    answerer = make_answerer(settings, index)
    matcher = Matcher(kb=kb, index=index)
    questions = [r["q"] for r in _rows(EVAL_DIR / "dev_questions.jsonl")] + EXTRA_QUESTIONS
    profiles = [r["profile"] for r in _rows(HERE / "match_profiles.jsonl") + _rows(EVAL_DIR / "dev_match.jsonl")]

    _profiled("first ask (builds the BM25 postings)", lambda: answerer.ask(questions[0]), args.top)
    matcher.match(profiles[0])
    _profiled(f"{len(questions)} warm asks", lambda: [answerer.ask(q) for q in questions], args.top)
    _profiled(f"{len(profiles)} warm matches", lambda: [matcher.match(p) for p in profiles], args.top)

    vector = index.embedder.embed_query(profiles[0])
    for kind in ("program", "vc", "cdmo"):
        where = Filters(kind=kind).chroma_where()
        timings = []
        for _ in range(5):
            t0 = time.perf_counter()
            index.store.query(vector, limit=80, where=where)
            timings.append((time.perf_counter() - t0) * 1000)
        print(f"chroma query filtered to kind={kind}: best {min(timings):.1f} ms, median {sorted(timings)[2]:.1f} ms")

    chunks = list(index.lexical.chunks())
    old = chunks[len(chunks) // 2]
    changed = replace(
        old,
        id=old.id.split("#")[0] + "#profile-update",
        text=old.text + "\n（改訂）",
        search_text=old.search_text + "\n（改訂）",
    )
    edited = [changed if c.id == old.id else c for c in chunks]

    # The changed passage is embedded for real (one passage, a fraction of a second of the total).
    _profiled("incremental ingest, one passage changed", lambda: index.ingest(edited), args.top)
    index.ingest(chunks)  # undo
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
