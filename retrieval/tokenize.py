"""Japanese-aware lexical tokens for BM25.

Japanese has no spaces, so the default splits runs of Japanese characters into
overlapping character bigrams; Latin words and figures stay whole, because names
(BINDS, CiCLE), amounts (9.2億円) and dates (2025-2029) decide many questions.
"""

from __future__ import annotations

import re
from typing import Protocol

from knowledge.normalize import fold

_TOKEN = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*)"
    r"|(?P<latin>[a-z][a-z0-9\-]*)"
    r"|(?P<cjk>[\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヶー]+)"
)

# Particles and copulas carry no topic; dropping the single-character ones keeps
# unigram fallbacks from matching everything.
_JA_STOP_UNIGRAMS = frozenset("のはがをにでともへやかなだ")
EN_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "what",
        "which",
        "who",
        "how",
        "does",
        "do",
        "did",
        "that",
        "this",
        "with",
        "by",
        "from",
        "it",
        "its",
        "as",
        "at",
        "can",
        "about",
        "me",
        "my",
        "i",
        "you",
        "your",
        "we",
        "our",
        "they",
        "their",
        "there",
        "any",
    ]
)


class Tokenizer(Protocol):
    name: str

    def tokenize(self, text: str) -> list[str]: ...


class BigramTokenizer:
    """Character bigrams for Japanese runs; whole words for Latin text and numbers."""

    name = "bigram"

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        normalized = fold(text).replace(",", "")
        for match in _TOKEN.finditer(normalized):
            if match.lastgroup == "cjk":
                run = match.group()
                if len(run) == 1:
                    if run not in _JA_STOP_UNIGRAMS:
                        tokens.append(run)
                    continue
                tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
            elif match.lastgroup == "latin":
                word = match.group()
                if word not in EN_STOP_WORDS:
                    tokens.append(word)
            else:
                tokens.append(match.group())
        return tokens


class SudachiTokenizer:
    """SudachiPy morphemes (normalized form), for deployments that want word-level matching."""

    name = "sudachi"

    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        self._tokenizer = Dictionary().create()
        self._mode = SplitMode.C

    def tokenize(self, text: str) -> list[str]:
        normalized = fold(text)
        tokens = []
        # Sudachi rejects inputs over ~49KB; long texts are split on line breaks first.
        for piece in _pieces(normalized, 4000):
            for morpheme in self._tokenizer.tokenize(piece, self._mode):
                if morpheme.part_of_speech()[0] in ("助詞", "助動詞", "補助記号", "空白"):
                    continue
                surface = morpheme.normalized_form()
                if surface.strip() and surface not in EN_STOP_WORDS:
                    tokens.append(surface)
        return tokens


def char_bigrams(text: str) -> set[str]:
    """Overlapping pairs of characters, whitespace removed: how near-identical texts are compared
    (slides repeated with small edits, a quote against a summary)."""
    joined = "".join(text.split())
    return {joined[i : i + 2] for i in range(len(joined) - 1)}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def make_tokenizer(name: str) -> Tokenizer:
    if name == "sudachi":
        return SudachiTokenizer()
    return BigramTokenizer()
