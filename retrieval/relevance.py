"""The relevance floor: when a description is too far from everything the sources cover to recommend anything.

Two tests, both measured on a labelled set (benchmarks/floor_profiles.jsonl, fits / does not fit, Japanese
and English) by benchmarks/floor_calibrate.py, which writes the figures to match_floor.yaml beside this
module: the description must be about health care or life science (the vocabulary's `life_science` words,
or a modality or disease it names; a description that says nothing else about itself is taken as in
scope), it must not ask only for uses the sources do not serve (the
vocabulary's `non_rd_uses`, with no modality, disease, stage or R&D need), and its embedding must come within `min_similarity` (cosine) of at
least one program. The similarity test only applies with the embedding model it was measured for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from retrieval.errors import VocabularyError

FLOOR_PATH = Path(__file__).resolve().parent / "match_floor.yaml"
Verdict = Literal["not_life_science", "not_rd", "too_far"]


@dataclass(frozen=True)
class RelevanceFloor:
    requires_life_science: bool = True
    min_similarity: float | None = None
    embedding_model: str | None = None

    @classmethod
    def load(cls, path: Path = FLOOR_PATH) -> RelevanceFloor:
        if not path.exists():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise VocabularyError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise VocabularyError(f"{path}: the relevance floor must be a mapping")
        similarity = data.get("min_similarity")
        if similarity is not None and not isinstance(similarity, int | float):
            raise VocabularyError(f"{path}: min_similarity must be a number, got {similarity!r}")
        return cls(
            requires_life_science=bool(data.get("requires_life_science", True)),
            min_similarity=float(similarity) if similarity is not None else None,
            embedding_model=data.get("embedding_model"),
        )

    def verdict(
        self,
        *,
        life_science: bool,
        best_similarity: float,
        embedding_model: str | None,
        non_rd_only: bool = False,
        other_content: bool = True,
    ) -> Verdict | None:
        """Why nothing should be recommended, or None when the description is within reach of the sources.

        `other_content`: the text says what else it is about (a word neither the vocabulary nor its generic
        words know); without it, a description with no life-science word ("a startup wanting overseas help")
        is taken as asked here, of a health-care desk. `non_rd_only`: the text asks for help with something
        the sources do not serve (a shop, vehicles, advertising) and names nothing they do serve."""
        if self.requires_life_science and not life_science and other_content:
            return "not_life_science"
        if non_rd_only:
            return "not_rd"
        if (
            self.min_similarity is not None
            and embedding_model == self.embedding_model
            and best_similarity < self.min_similarity
        ):
            return "too_far"
        return None


# Needs that only research, development, trials or manufacturing have; any of them keeps a description in reach.
R_AND_D_NEEDS = frozenset({"regulatory", "clinical_trials", "manufacturing", "research_infrastructure", "ip_strategy"})


def asks_only_non_rd(
    *, non_rd_terms: list[str], modalities: list[str], disease_areas: list[str], stages: list[str], needs: list[str]
) -> bool:
    """True when the text names a use the sources do not serve and nothing they do."""
    return bool(non_rd_terms) and not (modalities or disease_areas or stages or set(needs) & R_AND_D_NEEDS)
