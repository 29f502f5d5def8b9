"""`kakehashi eval`: retrieval, answers and matching measured on a folder of development sets."""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.cli_common import percentile, read_jsonl
from knowledge.loader import KnowledgeBase
from knowledge.normalize import squash
from retrieval.answer import Answer, Answerer
from retrieval.leaks import leaks

_JAPANESE = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")
_QUOTED = re.compile(r"「[^」]*」|『[^』]*』|（[^）]*）|\([^)]*[\u3041-\u30ff\u4e00-\u9fff][^)]*\)")


def in_english(text: str) -> bool:
    """An English answer's own words are English: Japanese may stand only in quotes, names in brackets,
    and quoted evidence lines."""
    own = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))
    own = _QUOTED.sub("", own)
    letters = re.findall(r"[A-Za-z]|[\u3041-\u30ff\u4e00-\u9fff]", own)
    return bool(letters) and sum(bool(_JAPANESE.match(ch)) for ch in letters) / len(letters) < 0.15


def has_all(text: str, groups: Sequence[Sequence[str]]) -> bool:
    body = squash(text)
    return all(any(squash(alt) in body for alt in group) for group in groups)


def declined(answer: Answer) -> bool:
    return not answer.confident or answer.intent == "clarify"


def run_answer_eval(answerer: Answerer, rows: list[dict[str, Any]], kb: KnowledgeBase,
                    *, out: Any = sys.stdout) -> dict[str, Any]:
    """dev_answers.jsonl: facts present (fact/fit/comparison), declines and clarifications right, English
    answered in English, and no staff material in any answer."""
    record_ids = [r.id for r in kb.records]
    by_type: dict[tuple[str, str], list[bool]] = defaultdict(list)
    english: list[bool] = []
    leaked: list[str] = []
    latencies: list[float] = []
    for row in rows:
        started = time.perf_counter()
        answer = answerer.ask(row["q"], kb=kb)
        latencies.append((time.perf_counter() - started) * 1000)
        kind, language = row.get("type", "fact"), row.get("lang", answer.language)
        if kind in ("decline", "clarify"):
            ok = declined(answer)
        else:
            ok = answer.confident and has_all(answer.answer, row.get("all_of_any", []))
        by_type[(kind, language)].append(ok)
        if language == "en":
            english.append(in_english(answer.answer))
        found = leaks(answer.answer, record_ids)
        if found:
            leaked.append(f"{row['id']}: {', '.join(found[:3])}")
        if not ok:
            print(f"  miss {row['id']} ({kind}, {language}): {answer.answer[:90]!r}", file=sys.stderr)
    answerable = [ok for (kind, _), oks in by_type.items() if kind not in ("decline", "clarify") for ok in oks]
    refusals = [ok for (kind, _), oks in by_type.items() if kind in ("decline", "clarify") for ok in oks]
    for (kind, language), oks in sorted(by_type.items()):
        print(f"answers {kind:<10} {language}: {sum(oks)}/{len(oks)} right", file=out)
    print(f"answers: facts in the answer (fact/fit/comparison): {sum(answerable)}/{len(answerable)}"
          f" = {sum(answerable) / max(1, len(answerable)):.3f}", file=out)
    print(f"answers: declines and clarifications right: {sum(refusals)}/{len(refusals)}", file=out)
    print(f"answers: English questions answered in English: {sum(english)}/{len(english)}", file=out)
    print(f"answers: with curator material or file names: {len(leaked)}", file=out)
    for line in leaked:
        print(f"  leak {line}", file=out)
    print(f"answers: latency p50 {statistics.median(latencies) if latencies else 0:.1f} ms, "
          f"p95 {percentile(latencies, 0.95):.1f} ms", file=out)
    return {"facts": sum(answerable) / max(1, len(answerable)), "refusals_right": sum(refusals),
            "refusals": len(refusals), "english": sum(english), "english_total": len(english), "leaks": len(leaked)}


def answer_set(eval_dir: Path) -> list[dict[str, Any]]:
    path = eval_dir / "dev_answers.jsonl"
    return read_jsonl(path, required=("q", "type")) if path.exists() else []
