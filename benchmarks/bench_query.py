"""Warm `ask` and `match` latency and peak memory on the seed knowledge base and on synthetic
corpora of 10,000 and 100,000 passages (figures are printed, not asserted).

    python -m benchmarks.bench_query                    # seed, 10k, 100k
    python -m benchmarks.bench_query --sizes seed 10k   # some of them
    python -m benchmarks.bench_query --rebuild          # build the corpora again

Each corpus is built once (benchmarks/corpora.py, cached under $KAKEHASHI_BENCH_DIR or .bench/) in a
process of its own, then measured in a fresh process per size, so each peak RSS (VmHWM) is that of a
process that opened the index and answered: the real SearchIndex (Chroma + BM25 + RRF), the real
Answerer and Matcher, the real query embedder. Building the 100k corpus takes several minutes; a
rerun only queries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.corpora import (
    DEFAULT_SAMPLE,
    SIZES,
    bench_dir,
    build,
    corpus_dir,
    one_update,
    peak_rss_mib,
    rss_mib,
    settings_for,
)

HERE = Path(__file__).resolve().parent
EVAL_DIR = HERE.parent / "evals" / "dev"
EXTRA_QUESTIONS = [
    "MEDISOではどのような相談ができますか？",
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "再生・細胞医療・遺伝子治療製造設備投資支援事業は全部でいくらの事業？",
    "BINDSとはどんな事業？",
    "What does AMED's CiCLE program fund?",
    "バイオ医薬品の製造人材を育成する事業はありますか",
    "Which certified VCs have backed gene therapy startups?",
    "治験の費用を支援してくれる制度を教えて",
]


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


def measure(label: str, rounds: int) -> dict[str, Any]:
    """Runs in a fresh process: open the corpus, warm up, time ask and match."""
    from bot.cli_common import make_answerer
    from bot.cli_eval import run_question_eval
    from knowledge.loader import load_knowledge
    from retrieval.engine import open_index
    from retrieval.glossary import expand
    from retrieval.match import Limits, Matcher

    settings = settings_for(corpus_dir(label))
    started = time.perf_counter()
    index = open_index(settings)
    kb = load_knowledge(settings.storage.knowledge_dir)
    answerer = make_answerer(settings, index)
    matcher = Matcher(kb=kb, index=index)
    opened_ms = (time.perf_counter() - started) * 1000
    rss_open = rss_mib()

    questions = [r["q"] for r in _rows(EVAL_DIR / "dev_questions.jsonl")] + EXTRA_QUESTIONS
    profiles = [r["profile"] for r in _rows(HERE / "match_profiles.jsonl") + _rows(EVAL_DIR / "dev_match.jsonl")]
    started = time.perf_counter()
    answerer.ask(questions[0])
    first_ask_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    matcher.match(profiles[0])
    first_match_ms = (time.perf_counter() - started) * 1000

    ask, embed, dense, lexical, match = [], [], [], [], []
    for _ in range(rounds):
        for question in questions:
            t0 = time.perf_counter()
            answerer.ask(question)
            t1 = time.perf_counter()
            vector = index.embedder.embed_query(question)
            t2 = time.perf_counter()
            index.store.query(vector, limit=settings.search.candidates)
            t3 = time.perf_counter()
            index.lexical.search(expand(question), limit=settings.search.candidates)
            t4 = time.perf_counter()
            ask.append((t1 - t0) * 1000)
            embed.append((t2 - t1) * 1000)
            dense.append((t3 - t2) * 1000)
            lexical.append((t4 - t3) * 1000)
        for profile in profiles:
            t0 = time.perf_counter()
            matcher.match(profile, limits=Limits())
            match.append((time.perf_counter() - t0) * 1000)

    rows = _rows(EVAL_DIR / "dev_questions.jsonl")
    quality: dict[str, float] = {}
    if rows:
        stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 - the eval's misses, not needed here
        try:
            quality = run_question_eval(answerer, rows)
        finally:
            sys.stderr.close()
            sys.stderr = stderr
    peak = peak_rss_mib()
    update = one_update(index)
    recall = dense_recall(index, [index.embedder.embed_query(q) for q in questions], limit=settings.search.candidates)
    return {
        "label": label,
        "chunks": len(index),
        "open_ms": round(opened_ms),
        "rss_after_open_mib": round(rss_open, 1),
        "first_ask_ms": round(first_ask_ms),
        "first_match_ms": round(first_match_ms),
        "ask": _summary(ask),
        "match": _summary(match),
        "embed_query": _summary(embed),
        "chroma_query": _summary(dense),
        "bm25_search": _summary(lexical),
        "dev_recall@5": round(quality.get("recall@5", float("nan")), 3),
        "dev_answer_has_fact": round(quality.get("answer_has_fact", float("nan")), 3),
        "peak_rss_mib": round(peak, 1),
        "update_one": update,
        "peak_rss_after_update_mib": round(peak_rss_mib(), 1),
        "dense_recall": recall,
        "hnsw": {
            "ef_search": settings.chroma.ef_search,
            "max_neighbors": settings.chroma.max_neighbors,
            "ef_construction": settings.chroma.ef_construction,
        },
    }


def dense_recall(index: Any, queries: list[Any], *, limit: int) -> dict[str, float]:
    """How much of the true nearest `limit` (and 10) passages Chroma's HNSW returns, against brute force
    over every stored vector. Run last: reading all vectors would distort the peak RSS figures."""
    import numpy as np

    ids = sorted(index.store.ids())
    stored = index.store.vectors(ids)
    matrix = np.vstack([stored[i] for i in ids]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    found_top, found_all = 0, 0
    for vector in queries:
        scores = matrix @ (vector / np.linalg.norm(vector))
        exact = np.argpartition(-scores, limit)[:limit]
        exact = exact[np.argsort(-scores[exact])]
        returned = {chunk_id for chunk_id, _ in index.store.query(vector, limit=limit)}
        found_top += sum(ids[j] in returned for j in exact[:10])
        found_all += sum(ids[j] in returned for j in exact)
    return {
        "at_10": round(found_top / (10 * len(queries)), 4),
        f"at_{limit}": round(found_all / (limit * len(queries)), 4),
        "queries": len(queries),
    }


def _worker(args: list[str]) -> dict[str, Any]:
    """Run this module in a fresh interpreter and return the JSON it prints last."""
    # stderr is passed through: progress and errors show as they happen.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_query", *args],
        cwd=HERE.parent,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_query {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(
    sizes: list[str], *, rounds: int = 3, sample: int = DEFAULT_SAMPLE, rebuild: bool = False
) -> list[dict[str, Any]]:
    results = []
    for label in sizes:
        print(f"[{label}] building or reusing {corpus_dir(label)} …", flush=True)
        started = time.perf_counter()
        built = _worker(["--build", label, "--sample", str(sample), *(["--rebuild"] if rebuild else [])])
        print(
            f"[{label}] corpus ready in {time.perf_counter() - started:.0f} s: {built['chunks']} passages "
            f"(built in {built['ingest_s']} s, build peak RSS {built['build_peak_rss_mib']} MiB)",
            flush=True,
        )
        measured = _worker(["--measure", label, "--rounds", str(rounds)])
        measured["build"] = built
        measured["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        measured["load_average"] = os.getloadavg()
        results.append(measured)
        _print_one(measured)
    # Kept per size, so sizes measured in separate runs end up in one table.
    out = bench_dir() / "query-results.json"
    kept = {r["label"]: r for r in (json.loads(out.read_text(encoding="utf-8")) if out.exists() else [])}
    kept |= {r["label"]: r for r in results}
    table = [kept[label] for label in SIZES if label in kept]
    out.write_text(json.dumps(table, ensure_ascii=False, indent=1), encoding="utf-8")
    _print_table(table)
    return results


def _print_one(r: dict[str, Any]) -> None:
    b = r["build"]
    print(
        f"[{r['label']}] {r['chunks']} passages; open {r['open_ms']} ms, first ask {r['first_ask_ms']} ms, "
        f"first match {r['first_match_ms']} ms; peak RSS {r['peak_rss_mib']} MiB",
        flush=True,
    )
    u = r["update_one"]
    print(
        f"[{r['label']}] one changed passage: ingest {u['update_s']} s ({u['update_embedded']} embedded; "
        f"of which, timed alone: BM25 save {u['lexical_save_s']} s for a {u['lexical_file_mib']} MiB pickle, "
        f"postings rebuild {u['postings_build_s']} s, store.ids() {u['store_ids_s']} s); peak RSS after it "
        f"{r['peak_rss_after_update_mib']} MiB"
    )
    if r.get("dense_recall"):
        print(
            f"[{r['label']}] Chroma dense candidates vs brute force ({r['dense_recall']['queries']} questions, "
            f"HNSW {r['hnsw']}): recall {r['dense_recall']}"
        )
    if b.get("vectors"):
        v = b["vectors"]
        print(
            f"[{r['label']}] vectors: pairwise cosine real {v['real_pairwise_mean']:.3f}±{v['real_pairwise_std']:.3f}"
            f" vs synthetic {v['synthetic_pairwise_mean']:.3f}±{v['synthetic_pairwise_std']:.3f}; nearest "
            f"neighbour (in 1000) real {v['real_nn_mean']:.3f} vs synthetic {v['synthetic_nn_mean']:.3f}"
        )
        h = b["holdout"]
        print(
            f"[{r['label']}] vector model on held-out real sample passages: pairwise {h['real_pairwise_mean']:.3f} "
            f"real vs {h['synthetic_pairwise_mean']:.3f} made; nearest neighbour {h['real_nn_mean']:.3f} vs "
            f"{h['synthetic_nn_mean']:.3f}; made vs real vector of the same passage "
            f"{h['cosine_made_vs_real_same_passage']:.3f}"
        )


def _print_table(results: list[dict[str, Any]]) -> None:
    print("\nwarm latency in ms (p50 / p95) and peak RSS, fresh process per size:")
    print(
        f"{'corpus':>8} {'passages':>9} {'ask':>15} {'match':>15} {'embed q':>13} {'chroma':>13} {'bm25':>13} "
        f"{'peak RSS':>10} {'R@5':>5}"
    )

    def cell(r: dict[str, Any], key: str, width: int = 15) -> str:
        return f"{r[key]['p50']:.1f} / {r[key]['p95']:.1f}".rjust(width)

    for r in results:
        print(
            f"{r['label']:>8} {r['chunks']:>9} {cell(r, 'ask')} {cell(r, 'match')} {cell(r, 'embed_query', 13)} "
            f"{cell(r, 'chroma_query', 13)} {cell(r, 'bm25_search', 13)} {r['peak_rss_mib']:>7.0f} MiB "
            f"{r['dev_recall@5']:>5}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions and profiles")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="synthetic passages embedded for real")
    parser.add_argument("--rebuild", action="store_true", help="build the corpora again")
    parser.add_argument("--build", choices=list(SIZES), help=argparse.SUPPRESS)  # worker: build one corpus
    parser.add_argument("--measure", choices=list(SIZES), help=argparse.SUPPRESS)  # worker: measure one corpus
    args = parser.parse_args(argv)
    if args.build:
        print(json.dumps(build(args.build, sample=args.sample, force=args.rebuild), ensure_ascii=False))
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, args.rounds), ensure_ascii=False))
        return 0
    run(args.sizes, rounds=args.rounds, sample=args.sample, rebuild=args.rebuild)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
