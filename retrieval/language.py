"""Which language a user wrote in: we answer in the same one."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["ja", "en"]

_JAPANESE = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> Language:
    """Japanese as soon as kana or kanji make up a fair share of the letters.

    English questions often carry one Japanese program name, so a few kanji do
    not make a question Japanese; a Japanese question with an acronym stays Japanese.
    """
    japanese = len(_JAPANESE.findall(text))
    latin_words = len(re.findall(r"[A-Za-z]{2,}", text))
    if japanese == 0:
        return "en"
    if latin_words >= 4 and japanese < 2 * latin_words:
        return "en"
    return "ja"
