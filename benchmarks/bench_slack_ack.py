"""Slash-command acknowledgement latency: how long Slack waits for our HTTP 200 (it allows 3 s).

Serves the real app over HTTP on 127.0.0.1 against the local fake Slack Web API, sends signed
`/kakehashi` requests one after another and prints p50 / p95 / max of the acknowledgement, for
`help` (acknowledgement only) and for `ask` (the answer is worked out after the acknowledgement,
so later acknowledgements compete with earlier answers for the CPU), and how long the answers
took to be posted. Figures are printed, not asserted.

    python benchmarks/bench_slack_ack.py            # 50 requests of each kind
    KAKEHASHI_DATA_DIR=/path python benchmarks/bench_slack_ack.py -n 100

It uses the index in KAKEHASHI_DATA_DIR (built first if empty, about a minute).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.slack.sources import SourceCatalog
from knowledge.loader import load_knowledge
from knowledge.settings import load_settings
from retrieval.answer import Answerer
from retrieval.engine import ingest, open_index
from retrieval.match import Matcher
from tests.fakeslack import FakeSlack
from tests.slack_fixtures import make_rig

QUESTIONS = [
    "MEDISOではどのような相談ができますか？",
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "再生・細胞医療・遺伝子治療製造設備投資支援事業は全部でいくらの事業？",
    "BINDSとはどんな事業？",
    "What does AMED's CiCLE program fund?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<28} n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  p95={percentile(ms, 0.95):7.1f} ms  "
          f"max={max(ms):7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="requests of each kind (default 50)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = load_settings()
    index = open_index(settings)
    if len(index) == 0:
        print("index is empty: ingesting the knowledge base first …", file=sys.stderr)
        ingest(settings, index)
    kb = load_knowledge(settings.knowledge_dir)
    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        rig = make_rig(base=settings, fake=fake, tmp_path=Path(tmp), answerer=Answerer(index=index, k=8),
                       matcher=Matcher(kb=kb, index=index), catalog=SourceCatalog.from_kb(kb))
        try:
            rig.driver.command("help")  # warm up: first request authorizes (auth.test)
            rig.driver.command("ask ウォームアップ")
            fake.wait_for("chat.postMessage", timeout=120)
            rig.settle()

            help_acks = []
            for _ in range(args.n):
                reply = rig.driver.command("help")
                assert reply.status == 200, reply
                help_acks.append(reply.seconds)

            before = len(fake.calls_to("chat.postMessage"))
            ask_acks, sent_at = [], []
            for i in range(args.n):
                sent_at.append(time.monotonic())
                reply = rig.driver.command("ask " + QUESTIONS[i % len(QUESTIONS)])
                assert reply.status == 200, reply
                ask_acks.append(reply.seconds)
            posts = fake.wait_for("chat.postMessage", count=before + args.n, timeout=600)[before:]
            rig.settle()
            answered = sorted(p.at for p in posts)
            answer_latency = [done - sent for sent, done in zip(sent_at, answered, strict=True)]
        finally:
            rig.server.stop()
            rig.executor.shutdown(wait=True)
            fake.stop()

    print(f"slash-command acknowledgement over HTTP on 127.0.0.1 ({os.cpu_count()} CPUs), Slack allows 3000 ms:")
    report("ack: /kakehashi help", help_acks)
    report("ack: /kakehashi ask …", ask_acks)
    report("answer posted (queued)", answer_latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
