"""`kakehashi eval [FOLDER]`: retrieval, answers and matching measured on a folder of development sets.

The project keeps its own copy of the development sets in `evals/dev/` (the default folder); hidden sets
of the same kinds live elsewhere and are named on the command line.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot import cli_match
from bot.cli_common import CliError, make_answerer, percentile, read_jsonl, ready_index
from core.settings import Settings
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.normalize import squash
from retrieval.answer import Answer, Answerer, make_chat_model
from retrieval.leaks import leaks
from retrieval.match import Matcher

# The project's copy of the development sets, beside the code in a checkout.
DEFAULT_EVAL_DIR = Path(__file__).resolve().parents[1] / "evals" / "dev"
QUESTIONS_FILE = "dev_questions.jsonl"
ANSWERS_FILE = "dev_answers.jsonl"

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


def run_answer_eval(
    answerer: Answerer, rows: list[dict[str, Any]], kb: KnowledgeBase, *, out: Any = sys.stdout
) -> dict[str, Any]:
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
    print(
        f"answers: facts in the answer (fact/fit/comparison): {sum(answerable)}/{len(answerable)}"
        f" = {sum(answerable) / max(1, len(answerable)):.3f}",
        file=out,
    )
    print(f"answers: declines and clarifications right: {sum(refusals)}/{len(refusals)}", file=out)
    print(f"answers: English questions answered in English: {sum(english)}/{len(english)}", file=out)
    print(f"answers: with curator material or file names: {len(leaked)}", file=out)
    for line in leaked:
        print(f"  leak {line}", file=out)
    print(
        f"answers: latency p50 {statistics.median(latencies) if latencies else 0:.1f} ms, "
        f"p95 {percentile(latencies, 0.95):.1f} ms",
        file=out,
    )
    return {
        "facts": sum(answerable) / max(1, len(answerable)),
        "refusals_right": sum(refusals),
        "refusals": len(refusals),
        "english": sum(english),
        "english_total": len(english),
        "leaks": len(leaked),
    }


def answer_set(eval_dir: Path) -> list[dict[str, Any]]:
    path = eval_dir / ANSWERS_FILE
    return read_jsonl(path, required=("q", "type")) if path.exists() else []


def run_question_eval(answerer: Answerer, rows: list[dict[str, Any]]) -> dict[str, float]:
    recall1 = recall5 = rr = fact = 0.0
    latencies = []
    answerer.ask("ウォームアップ")  # load caches so latency measures the warm path
    for row in rows:
        started = time.perf_counter()
        answer = answerer.ask(row["q"])
        latencies.append((time.perf_counter() - started) * 1000)
        wanted = [squash(a) for a in row["any"]]
        rank = next((c.n for c in answer.citations if any(w in squash(c.text) for w in wanted)), None)
        has_fact = any(w in squash(answer.answer) for w in wanted)
        recall1 += rank == 1
        recall5 += rank is not None and rank <= 5
        rr += 1 / rank if rank else 0
        fact += has_fact
        if rank is None or rank > 5 or not has_fact:
            print(f"  miss {row['id']}: rank={rank} answer={answer.answer[:80]!r}", file=sys.stderr)
    n = len(rows) or 1
    return {
        "questions": len(rows),
        "recall@1": recall1 / n,
        "recall@5": recall5 / n,
        "mrr": rr / n,
        "answer_has_fact": fact / n,
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p95_ms": percentile(latencies, 0.95),
    }


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / QUESTIONS_FILE).is_file():
        raise CliError(
            f"{eval_dir}: no {QUESTIONS_FILE} here; name a folder of development sets "
            f"(kakehashi eval FOLDER; the project's copy is {DEFAULT_EVAL_DIR})"
        )
    kb = load_knowledge(settings.storage.knowledge_dir)
    index = ready_index(settings, kb=kb)
    chat_model = make_chat_model(settings)
    answerer = make_answerer(
        settings, index, chat_model, kb=kb, matcher=Matcher(kb=kb, index=index, chat_model=chat_model)
    )
    questions = read_jsonl(eval_dir / QUESTIONS_FILE, required=("q", "any"))
    result = run_question_eval(answerer, questions)
    print(f"questions: {result['questions']}")
    print(f"Recall@1: {result['recall@1']:.3f}")
    print(f"Recall@5: {result['recall@5']:.3f}")
    print(f"MRR: {result['mrr']:.3f}")
    print(f"answer contains fact: {result['answer_has_fact']:.3f}")
    print(f"warm latency p50: {result['p50_ms']:.1f} ms, p95: {result['p95_ms']:.1f} ms")
    answers = answer_set(eval_dir)
    if answers:
        run_answer_eval(answerer, answers, kb)
    cli_match.eval_match(settings=settings, eval_dir=eval_dir, index=index, kb=kb)
    return 0


def register(subparsers: Any) -> None:
    """Add `eval` to the `kakehashi` subcommands (the object `add_subparsers()` returned)."""
    p = subparsers.add_parser("eval", help="measure retrieval, answers and matching on a folder of development sets")
    p.add_argument(
        "eval_dir",
        metavar="FOLDER",
        nargs="?",
        default=str(DEFAULT_EVAL_DIR),
        help="folder with dev_questions.jsonl, dev_answers.jsonl, dev_match.jsonl and dev_profiles.jsonl "
        "(default: the project's copy, evals/dev)",
    )
    p.set_defaults(func=cmd_eval)
