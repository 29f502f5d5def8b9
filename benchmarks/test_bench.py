"""`make bench`: every benchmark, as pytest items marked `benchmark` (never collected by `make test`,
whose testpaths are tests/ and which deselects the marker). Figures are printed (run with -s); an item
fails only when a benchmark finds something broken (e.g. a Slack answer lost or posted twice)."""

from __future__ import annotations

import pytest

from benchmarks import bench_ingest, bench_query, bench_slack_ack, match_bench
from benchmarks.corpora import SIZES, build, corpus_dir

pytestmark = pytest.mark.benchmark


def test_ingest_throughput_against_the_flop_estimate() -> None:
    assert bench_ingest.main([]) == 0


@pytest.mark.parametrize("size", list(SIZES))
def test_query_latency_and_memory(size: str) -> None:
    [result] = bench_query.run([size])
    assert result["ask"]["n"] > 0 and result["match"]["n"] > 0


def test_match_quality_and_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    build("seed")
    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(corpus_dir("seed")))
    assert match_bench.main(["--rounds", "3"]) == 0


def test_slack_acknowledgements_and_concurrency() -> None:
    assert bench_slack_ack.main(["-n", "50"]) == 0
