"""Decide the matcher's relevance floor from a labelled set, and print how well it separates.

    KAKEHASHI_DATA_DIR=... python -m benchmarks.floor_calibrate [--write] [--check PATH.jsonl]

benchmarks/floor_profiles.jsonl holds descriptions labelled `fits` (something in the sources should be
recommended) or not (outside health care / life science, or nothing in the sources serves it), in Japanese
and English. For each description this reads two things the matcher uses: whether it is about health care
or life science (the vocabulary's `life_science` words, or a modality or disease), and the cosine similarity
of its embedding to the closest program. The similarity floor is the threshold, among the midpoints between
observed values, that maximises F1 for "nothing fits" with the word tests applied first, among thresholds
that turn away no labelled fitting description (precision 1.0); ties go to the lowest threshold. --write stores it in
retrieval/match_floor.yaml; --check reports precision/recall of the stored floor on another labelled file
(e.g. the dev profiles, whose `nothing_fits` is the label), without calibrating on it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path
from typing import Any

import yaml

from benchmarks.labelled import precision_recall
from bot.cli_match import make_matcher
from core.settings import load_settings
from knowledge.seeding import prepare_knowledge_dir
from retrieval.relevance import FLOOR_PATH, RelevanceFloor, asks_only_non_rd

HERE = Path(__file__).resolve().parent
LABELLED = HERE / "floor_profiles.jsonl"


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        if "fits" not in row:
            row["fits"] = not row.get("nothing_fits", False)
    return rows


def features(matcher: Any, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bool, bool, float]]:
    """Per row: the life-science test (in scope unless the text also says what else it is about), the
    non-R&D-use test, and the similarity to the closest program."""
    out = []
    for row in rows:
        profile = matcher.vocabulary.extract(row["profile"])
        non_rd = asks_only_non_rd(
            non_rd_terms=matcher.vocabulary.non_rd_use_terms(row["profile"]),
            modalities=[str(m) for m in profile.modalities],
            disease_areas=[str(d) for d in profile.disease_areas],
            stages=[str(s) for s in profile.stages],
            needs=[str(n) for n in profile.needs],
        )
        query = matcher.index.embedder.embed_query(row["profile"])
        best = max(matcher._similarities("program", query).values())
        in_scope = profile.life_science or not matcher.vocabulary.other_content_words(row["profile"])
        out.append((row, in_scope, non_rd, best))
    return out


def scores(predicted_nothing: list[bool], truly_nothing: list[bool]) -> dict[str, float]:
    return precision_recall(predicted_nothing, truly_nothing)


def judge(
    floor: RelevanceFloor, feats: list[tuple[dict[str, Any], bool, bool, float]], model: str | None
) -> list[bool]:
    return [
        floor.verdict(life_science=ls, best_similarity=sim, embedding_model=model, non_rd_only=non_rd) is not None
        for _, ls, non_rd, sim in feats
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the floor in retrieval/match_floor.yaml")
    parser.add_argument("--check", type=Path, help="report the stored floor on another labelled file")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = load_settings()
    prepare_knowledge_dir(settings)  # as the command line does: the default folder is seeded on first use
    matcher = make_matcher(settings)
    model = getattr(matcher.index.embedder, "model", None)
    if args.check:
        feats = features(matcher, _rows(args.check))
        floor = RelevanceFloor.load()
        result = scores(judge(floor, feats, model), [not r["fits"] for r, _, _, _ in feats])
        print(
            f"{args.check.name}: nothing-fits precision {result['precision']:.3f}, recall {result['recall']:.3f} "
            f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']}, n {len(feats)})"
        )
        return
    feats = features(matcher, _rows(LABELLED))
    truth = [not r["fits"] for r, _, _, _ in feats]
    for row, ls, non_rd, sim in sorted(feats, key=lambda f: f[3]):
        print(
            f"  {row['id']:4} fits={int(row['fits'])} life_science={int(ls)} non_rd_only={int(non_rd)} "
            f"best_similarity={sim:.4f}"
        )
    words_only = RelevanceFloor(requires_life_science=True, min_similarity=None)
    base = scores(judge(words_only, feats, model), truth)
    print(
        f"word tests only (life science, non-R&D uses): precision {base['precision']:.3f}, "
        f"recall {base['recall']:.3f}, f1 {base['f1']:.3f}"
    )
    values = sorted({sim for _, _, _, sim in feats})
    candidates = [None] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best: tuple[float, float | None, dict[str, float]] | None = None
    for threshold in candidates:
        floor = RelevanceFloor(requires_life_science=True, min_similarity=threshold, embedding_model=model)
        result = scores(judge(floor, feats, model), truth)
        if result["fp"]:
            continue  # turning away an asker something fits costs more than showing a weak list
        if best is None or result["f1"] > best[0] + 1e-12:
            best = (result["f1"], threshold, result)
    assert best is not None
    _, threshold, result = best
    print(
        f"chosen similarity floor: {threshold if threshold is None else round(threshold, 4)} "
        f"-> nothing-fits precision {result['precision']:.3f}, recall {result['recall']:.3f}, f1 {result['f1']:.3f} "
        f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']}, n {len(feats)})"
    )
    if args.write:
        data = {
            "requires_life_science": True,
            "min_similarity": None if threshold is None else round(threshold, 4),
            "embedding_model": model,
            "calibrated_on": f"benchmarks/{LABELLED.name}",
            "labelled": len(feats),
            "nothing_fits_precision": round(result["precision"], 3),
            "nothing_fits_recall": round(result["recall"], 3),
        }
        header = (
            "# Written by benchmarks/floor_calibrate.py --write from a labelled set; do not edit by hand.\n"
            "# The similarity floor applies only with the embedding model it was measured for.\n"
        )
        FLOOR_PATH.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        print(f"wrote {FLOOR_PATH}")


if __name__ == "__main__":
    main()
