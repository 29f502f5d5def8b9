"""The `kakehashi` command line. Objects are wired here and handed down."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from bot import cli_db, cli_eval, cli_kb, cli_match, cli_report, cli_serve
from bot.cli_common import (
    CliError,
    embedded_store_held,
    make_answerer,
    ready_index,
    stdin_lines,
)
from core.errors import KakehashiError
from core.settings import Settings, load_settings
from knowledge.loader import load_knowledge
from knowledge.seeding import prepare_knowledge_dir
from prompts.messages import t
from retrieval import retired
from retrieval.answer import Answer, make_chat_model
from retrieval.engine import ingest, open_index
from retrieval.index import KINDS, Filters
from retrieval.match import Matcher
from retrieval.store import ChromaStore


def _print_json(obj: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def format_answer(answer: Answer) -> str:
    """What a person reads: the answer, then only the sources it cites, by deck title and date."""
    lines = [answer.answer]
    cited = answer.cited_citations()
    if cited:
        lines += ["", t("cli_answer_sources", "ja" if answer.language == "ja" else "en")]
        lines += [f"  [{c.n}] {c.label or c.title}" for c in cited]
    return "\n".join(lines)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    with embedded_store_held(settings) as held:
        if not held:
            raise CliError(
                "a running bot serves from the embedded index and indexes knowledge changes itself; "
                "stop it first to rebuild"
            )
        index = open_index(settings, for_rebuild=args.rebuild)
        if isinstance(index.store, ChromaStore) and index.store.graph_outdated and not args.rebuild:
            started = time.perf_counter()
            moved = index.store.rebuild_graph()
            print(
                f"re-linked the vector index with the configured HNSW graph: {moved} passages, nothing embedded, "
                f"{time.perf_counter() - started:.1f}s"
            )
        report = ingest(settings, index, rebuild=args.rebuild, prune=True)
    print(f"added:   {len(report.added)} {' '.join(report.added[:20])}{' …' if len(report.added) > 20 else ''}")
    print(f"updated: {len(report.updated)} {' '.join(report.updated[:20])}")
    print(f"removed: {len(report.removed)} {' '.join(report.removed[:20])}")
    print(f"skipped: {report.skipped} unchanged passages")
    rate = f", {report.chunks_per_second:.1f} chunks/s" if report.embedded else ""
    print(
        f"embedded {report.embedded} passages and {report.sentences_embedded} new quote sentences in "
        f"{report.seconds:.2f}s{rate}; index holds {len(index)} passages"
    )
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    kb = load_knowledge(settings.storage.knowledge_dir)  # for retired-record notes, and to build an empty index
    index = ready_index(settings, kb=kb)
    chat_model = make_chat_model(settings)
    answerer = make_answerer(
        settings, index, chat_model, kb=kb, matcher=Matcher(kb=kb, index=index, chat_model=chat_model)
    )
    filters = Filters(kind=args.kind)
    questions: Sequence[str] | Iterator[str] = stdin_lines(sys.stdin) if args.question == "-" else [args.question]
    for question in questions:
        answer = retired.ask(answerer, question, kb=kb, filters=filters)
        if args.json:
            _print_json(answer.to_json(), sys.stdout)
        else:
            print(format_answer(answer))
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    index = ready_index(settings)
    hits = index.search(
        args.query,
        k=args.k,
        filters=Filters(kind=args.kind, ministry=args.ministry, stage=args.stage, modality=args.modality),
    )
    if args.json:
        _print_json(
            {
                "query": args.query,
                "hits": [
                    {
                        "rank": i,
                        "id": h.chunk.id,
                        "kind": h.chunk.kind,
                        "title": h.chunk.title,
                        "source": h.chunk.source,
                        "score": h.score,
                        "dense": h.dense,
                        "lexical": h.lexical,
                        "text": h.chunk.text,
                    }
                    for i, h in enumerate(hits, 1)
                ],
            },
            sys.stdout,
        )
        return 0
    if not hits:
        print("no passages found")
    for i, hit in enumerate(hits, 1):
        dense = f"{hit.dense:.3f}" if hit.dense is not None else "-"
        lexical = f"{hit.lexical:.2f}" if hit.lexical is not None else "-"
        print(f"[{i}] {hit.score:.4f} (dense {dense}, bm25 {lexical}) {hit.chunk.kind} {hit.chunk.title}")
        print(f"    {hit.chunk.source}")
        snippet = hit.chunk.text.replace("\n", " ")
        print(f"    {snippet[:200]}{'…' if len(snippet) > 200 else ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kakehashi",
        description="Kakehashi: support desk and matchmaking for Japanese healthcare and drug-discovery startups.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="build or update the index from the knowledge files")
    p.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question with cited sources")
    p.add_argument("question", help="the question, or - to read one per line from stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per question")
    p.add_argument("--kind", choices=KINDS, help="only passages of this kind")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("search", help="show ranked passages")
    p.add_argument("query")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--ministry", help="e.g. MHLW, MEXT, METI, CAO, AMED")
    p.add_argument("--stage", help="e.g. basic, applied, non_clinical, phase1, phase2, manufacturing")
    p.add_argument("--modality", help="e.g. cell_therapy, gene_therapy, antibody, small_molecule")
    p.add_argument("-k", type=int, default=8, help="how many passages")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    cli_eval.register(sub)
    cli_match.register(sub)
    cli_report.register(sub)
    cli_kb.register(sub)
    cli_serve.register(sub)
    cli_db.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        settings = load_settings()
        if (seeded := prepare_knowledge_dir(settings)) is not None:
            print(seeded.message(), file=sys.stderr)
        return args.func(args, settings)
    except KakehashiError as exc:  # we refused, and the message says why (settings, knowledge, index, usage)
        print(f"kakehashi: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `kakehashi kb diff 12 | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
