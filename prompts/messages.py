"""What Kakehashi says to people, in Japanese and English: one catalog for every layer.

The texts are data, in YAML files beside this module (`messages/*.yaml`, one file per area of the
product, one key space across them). Each entry has `en` and, where we have it, `ja`; both take the
same `{placeholders}`. A duplicate key, a missing `en` or placeholders that differ between the two
languages stop loading with the file and key named.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

import yaml

from core.errors import KakehashiError

CATALOG_DIR = Path(__file__).resolve().parent / "messages"
LANGUAGES = ("ja", "en")


class CatalogError(KakehashiError):
    """A message file is malformed; the message names the file and the key."""


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Catalog:
    """Messages by key and language."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self._texts = {key: dict(by_language) for key, by_language in texts.items()}

    @classmethod
    def load(cls, folder: Path = CATALOG_DIR) -> Catalog:
        texts: dict[str, dict[str, str]] = {}
        origin: dict[str, Path] = {}
        for path in sorted(folder.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise CatalogError(f"{path}: expected a mapping of message keys")
            for key, entry in data.items():
                if key in origin:
                    raise CatalogError(f"{path}: message {key!r} is already defined in {origin[key].name}")
                if not isinstance(entry, dict) or not isinstance(entry.get("en"), str):
                    raise CatalogError(f"{path}: message {key!r}: needs an 'en' text (and 'ja' where we have it)")
                unknown = set(entry) - set(LANGUAGES)
                if unknown:
                    raise CatalogError(f"{path}: message {key!r}: unknown language {sorted(unknown)[0]!r}")
                if "ja" in entry and _placeholders(entry["ja"]) != _placeholders(entry["en"]):
                    raise CatalogError(f"{path}: message {key!r}: ja and en take different placeholders")
                texts[key], origin[key] = entry, path
        return cls(texts)

    def __contains__(self, key: object) -> bool:
        return key in self._texts

    def text(self, key: str, language: str, **values: object) -> str:
        """The message `key` in `language` (English where it has no Japanese), with `values` filled in."""
        try:
            by_language = self._texts[key]
        except KeyError:
            raise CatalogError(f"no message {key!r} in {CATALOG_DIR}") from None
        text = by_language.get(language) or by_language["en"]
        return text.format(**values) if values else text


MESSAGES = Catalog.load()


def t(key: str, language: str, **values: object) -> str:
    """The message `key` from the one catalog (see Catalog.text)."""
    return MESSAGES.text(key, language, **values)
