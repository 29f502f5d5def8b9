"""Precision and recall of a yes/no decision against a labelled set: how the calibration scripts
(curated_calibrate.py, floor_calibrate.py) judge the thresholds they choose."""

from __future__ import annotations

from collections.abc import Sequence


def precision_recall(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, float]:
    """precision, recall, F1 and F0.5 (precision weighted double) of `predicted` against `truth`, with the
    counts. An empty side scores 1.0: no false positives when nothing was predicted."""
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    f05 = 1.25 * precision * recall / (0.25 * precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "f05": f05, "tp": tp, "fp": fp, "fn": fn}
