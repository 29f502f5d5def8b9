"""Display labels of the schema's closed vocabularies, in Japanese and English (data in labels.yaml).

One vocabulary for every surface: answers, matching reasons, Slack forms and cards.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from knowledge.errors import KnowledgeError

LabelLanguage = Literal["ja", "en"]
LABELS_FILE = Path(__file__).with_name("labels.yaml")
FIELDS = ("ministry", "applicant", "stage", "modality", "disease_area", "support", "destination", "record_kind")


class LabelsError(KnowledgeError):
    """labels.yaml is missing a field or language, or is not valid YAML."""


@cache
def _labels() -> dict[str, dict[str, dict[str, str]]]:
    try:
        data = yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabelsError(f"{LABELS_FILE}: cannot read the labels: {exc}") from exc
    for name in FIELDS:
        values = data.get(name) if isinstance(data, dict) else None
        if not isinstance(values, dict):
            raise LabelsError(f"{LABELS_FILE}: field {name!r} is missing")
        for value, both in values.items():
            # A stray key is how an unquoted comma in a flow mapping ("en: Health, Labour") shows up.
            if not isinstance(both, dict) or set(both) != {"ja", "en"} or not all(both.values()):
                raise LabelsError(f"{LABELS_FILE}: {name}.{value} needs exactly 'ja' and 'en' (quote text with commas)")
    return data


def label(field: str, value: str, language: LabelLanguage = "ja") -> str:
    """The display name of one schema value; an unknown value is shown as it is."""
    return _labels()[field].get(str(value), {}).get(language, str(value))


def labels(field: str, language: LabelLanguage = "ja") -> dict[str, str]:
    """Every value of a field with its display name, in the schema's order of labels.yaml."""
    return {value: both[language] for value, both in _labels()[field].items()}
