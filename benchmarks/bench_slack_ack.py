"""Slack over HTTP: acknowledgement latency (Slack allows 3 s), answers per second, and that nothing is
dropped or answered twice under 50 concurrent signed requests. Figures are printed; only lost or doubled
answers fail it.

Serves the real app over HTTP on 127.0.0.1 against the local fake Slack Web API (tests/fakeslack.py,
which records every post):

1. sequential: `/kakehashi help` (acknowledgement only) and `/kakehashi ask …` one after another;
2. concurrent slash commands: 50 users send `/kakehashi ask …` at the same moment (released together
   by a barrier); each must get exactly one answer;
3. concurrent events with retries: 50 @mentions at once, each delivered twice at the same moment (the
   original and Slack's retry, same event_id, X-Slack-Retry-Num: 1), so 100 requests; each mention
   must get exactly one answer.

    python -m benchmarks.bench_slack_ack            # 50 of each
    python -m benchmarks.bench_slack_ack -n 100

The index is the benchmark's seed corpus (benchmarks/corpora.py, cached under .bench/), or the one in
KAKEHASHI_DATA_DIR when that is set (built first if empty, about a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_query import EXTRA_QUESTIONS
from benchmarks.corpora import build, corpus_dir, settings_for
from benchmarks.machine import print_machine
from bot.cli_common import percentile
from bot.slack.sources import SourceCatalog
from core.settings import load_settings
from knowledge.loader import load_knowledge
from knowledge.seeding import prepare_knowledge_dir
from retrieval.answer import Answerer
from retrieval.engine import ingest, open_index
from retrieval.match import Matcher
from tests.fakeslack import BOT_USER_ID, FakeSlack
from tests.slack_fixtures import Rig, make_rig, posted_text
from tests.slackdriver import Reply

# The questions of the query benchmark, asked over Slack.
QUESTIONS = EXTRA_QUESTIONS


def report(name: str, seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    figures = {"n": len(ms), "p50": statistics.median(ms), "p95": percentile(ms, 0.95), "max": max(ms)}
    print(
        f"{name:<40} n={len(ms):<4} p50={figures['p50']:7.1f} ms  p95={figures['p95']:7.1f} ms  "
        f"max={figures['max']:7.1f} ms"
    )
    return figures


def _all_at_once(jobs: list[Any]) -> list[tuple[float, Reply | None, str | None]]:
    """Run each job in its own thread, released together by a barrier; per job (monotonic send time,
    reply or None, the error when the request did not get through)."""
    barrier = threading.Barrier(len(jobs))
    results: list[tuple[float, Reply | None, str | None]] = [(0.0, None, "never ran")] * len(jobs)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        sent = time.monotonic()
        try:
            results[i] = (sent, jobs[i](), None)
        except OSError as exc:  # refused or reset: the request was dropped before the app saw it
            results[i] = (sent, None, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _answers(rig: Rig, before: int, expected: int, key: Any) -> tuple[list[Any], Counter[str]]:
    """Wait for up to `expected` new answers, give stragglers (a doubled answer) time to show, count per key."""
    fake = rig.fake
    with contextlib.suppress(AssertionError):  # fewer than expected: counted below
        fake.wait_for("chat.postMessage", count=before + expected, timeout=120)
    rig.executor.wait_idle(timeout=120)
    time.sleep(1.0)
    rig.executor.wait_idle(timeout=120)
    posts = fake.calls_to("chat.postMessage")[before:]
    return posts, Counter(key(p) for p in posts)


def _problems(name: str, out: dict[str, Any], expected_posts: int, sent: int) -> list[str]:
    problems = []
    if out["dropped"]:
        problems.append(
            f"{name}: {out['dropped']} of {sent} requests dropped before the app answered ({out['errors'][0]})"
        )
    if out["answered"] != expected_posts:
        problems.append(f"{name}: {out['answered']} of {expected_posts} answered")
    if out["doubled"]:
        problems.append(f"{name}: answered twice: {out['doubled'][:5]}")
    if out["posts"] != out["answered"]:
        problems.append(f"{name}: {out['posts']} posts for {out['answered']} answers")
    bad = {k: v for k, v in out["statuses"].items() if k != 200}
    if bad:
        problems.append(f"{name}: HTTP statuses other than 200: {bad}")
    return problems


def concurrent_commands(rig: Rig, n: int) -> dict[str, Any]:
    users = [f"U0BENCH{i:03d}" for i in range(n)]
    before = len(rig.fake.calls_to("chat.postMessage"))
    jobs = [
        lambda u=u, i=i: rig.driver.command("ask " + QUESTIONS[i % len(QUESTIONS)], user=u) for i, u in enumerate(users)
    ]
    started = time.monotonic()
    sent = _all_at_once(jobs)
    delivered = [(u, t, r) for u, (t, r, _) in zip(users, sent, strict=True) if r is not None]
    statuses = Counter(r.status for _, _, r in delivered)
    posts, per_user = _answers(
        rig, before, len(delivered), lambda p: next((u for u in users if f"<@{u}>" in posted_text(p)), "?")
    )
    by_user = {u: p.at for p in posts for u in users if f"<@{u}>" in posted_text(p)}
    latency = [by_user[u] - t for u, t, _ in delivered if u in by_user]
    last = max((p.at for p in posts), default=started)
    out: dict[str, Any] = {
        "acks": report(f"ack: {n} concurrent /kakehashi ask", [r.seconds for _, _, r in delivered] or [0.0]),
        "answer": report("  answer posted after sending", latency or [0.0]),
        "answers_per_s": len(posts) / max(1e-9, last - started),
        "statuses": dict(statuses),
        "dropped": n - len(delivered),
        "errors": [e for _, _, e in sent if e],
        "answered": len(by_user),
        "posts": len(posts),
        "doubled": sorted(u for u, c in per_user.items() if c > 1),
    }
    print(
        f"  {out['answered']}/{n} answered, {out['dropped']} dropped at connect, {len(posts)} posts, "
        f"{out['answers_per_s']:.1f} answers/s; HTTP statuses {dict(statuses)}"
    )
    out["problems"] = _problems("slash commands", out, n, n)
    return out


def concurrent_mentions_with_retries(rig: Rig, n: int) -> dict[str, Any]:
    before = len(rig.fake.calls_to("chat.postMessage"))
    events = []
    for i in range(n):
        user, channel = f"U0MENT{i:03d}", "C0BENCH"
        text = f"<@{BOT_USER_ID}> {QUESTIONS[i % len(QUESTIONS)]}"
        ts = rig.fake.add_message(channel, text=text, user=user)
        events.append(
            (
                {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts},
                f"EvBENCH{i:05d}",
            )
        )
    jobs = []
    for event, event_id in events:
        jobs.append(lambda e=event, i=event_id: rig.driver.event(e, event_id=i))
        jobs.append(lambda e=event, i=event_id: rig.driver.event(e, event_id=i, retry_num=1))
    started = time.monotonic()
    sent = _all_at_once(jobs)
    statuses = Counter(r.status for _, r, _ in sent if r is not None)
    # An event counts as delivered when either of its two deliveries got through.
    delivered = {
        event["ts"]: min(t for t, r, _ in sent[2 * i : 2 * i + 2])
        for i, (event, _) in enumerate(events)
        if any(r is not None for _, r, _ in sent[2 * i : 2 * i + 2])
    }
    posts, per_thread = _answers(rig, before, len(delivered), lambda p: str(p.args.get("thread_ts")))
    latency = [
        p.at - delivered[str(p.args.get("thread_ts"))] for p in posts if str(p.args.get("thread_ts")) in delivered
    ]
    last = max((p.at for p in posts), default=started)
    out: dict[str, Any] = {
        "acks": report(
            f"ack: {n} mentions x 2 deliveries at once", [r.seconds for _, r, _ in sent if r is not None] or [0.0]
        ),
        "answer": report("  answer posted after first delivery", latency or [0.0]),
        "answers_per_s": len(posts) / max(1e-9, last - started),
        "statuses": dict(statuses),
        "dropped": sum(1 for _, r, _ in sent if r is None),
        "errors": [e for _, _, e in sent if e],
        "events_lost": n - len(delivered),
        "answered": sum(1 for event, _ in events if per_thread.get(event["ts"])),
        "posts": len(posts),
        "doubled": sorted(t for t, c in per_thread.items() if c > 1),
    }
    print(
        f"  {out['answered']}/{n} answered, {len(posts)} posts for {2 * n} deliveries ({out['dropped']} "
        f"deliveries dropped at connect, {out['events_lost']} events lost both), {out['answers_per_s']:.1f} "
        f"answers/s; HTTP statuses {dict(statuses)}"
    )
    out["problems"] = _problems("mentions", out, n, 2 * n)
    if not out["events_lost"] and out["dropped"]:
        # Slack retries events, so a dropped delivery whose twin got through loses nothing.
        out["problems"] = [p for p in out["problems"] if "dropped" not in p]
    return out


def run(n: int = 50) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    print_machine()
    if os.environ.get("KAKEHASHI_DATA_DIR"):
        settings = load_settings()
        prepare_knowledge_dir(settings)
        index = open_index(settings)
        if len(index) == 0:
            print("index is empty: ingesting the knowledge base first …", file=sys.stderr)
            ingest(settings, index)
    else:
        build("seed")
        settings = settings_for(corpus_dir("seed"))
        index = open_index(settings)
    kb = load_knowledge(settings.storage.knowledge_dir)
    fake = FakeSlack().start()
    figures: dict[str, Any] = {"passages": len(index)}
    with tempfile.TemporaryDirectory() as tmp:
        rig = make_rig(
            base=settings,
            fake=fake,
            tmp_path=Path(tmp),
            answerer=Answerer(index=index, k=8),
            matcher=Matcher(kb=kb, index=index),
            catalog=SourceCatalog.from_kb(kb),
        )
        try:
            rig.driver.command("help")  # warm up: the first request authorizes (auth.test)
            rig.driver.command("ask ウォームアップ")
            fake.wait_for("chat.postMessage", timeout=120)
            rig.settle()
            print(
                f"Slack over HTTP on 127.0.0.1 ({os.cpu_count()} CPUs, {len(index)} passages, "
                f"{rig.executor._max_workers} listener threads); Slack allows 3000 ms for the acknowledgement:"
            )

            help_acks = []
            for _ in range(n):
                reply = rig.driver.command("help")
                assert reply.status == 200, reply
                help_acks.append(reply.seconds)
            figures["sequential_help"] = report("ack: /kakehashi help, one at a time", help_acks)

            before = len(fake.calls_to("chat.postMessage"))
            ask_acks, sent_at = [], []
            for i in range(n):
                sent_at.append(time.monotonic())
                reply = rig.driver.command("ask " + QUESTIONS[i % len(QUESTIONS)])
                assert reply.status == 200, reply
                ask_acks.append(reply.seconds)
            posts = fake.wait_for("chat.postMessage", count=before + n, timeout=600)[before:]
            rig.settle()
            answered = sorted(p.at for p in posts)
            figures["sequential_ask"] = report("ack: /kakehashi ask, one after another", ask_acks)
            report("  answer posted (queued)", [done - sent for sent, done in zip(sent_at, answered, strict=True)])

            figures["concurrent_commands"] = concurrent_commands(rig, n)
            figures["concurrent_mentions"] = concurrent_mentions_with_retries(rig, n)
        finally:
            rig.server.stop()
            rig.executor.shutdown(wait=True)
            rig.store.close()
            fake.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="requests of each kind (default 50)")
    args = parser.parse_args(argv)
    figures = run(args.n)
    problems = figures["concurrent_commands"]["problems"] + figures["concurrent_mentions"]["problems"]
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
