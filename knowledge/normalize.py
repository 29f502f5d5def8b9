"""How text is compared: the one place that says what "the same words" means.

User text and stored text meet only through these functions. What a founder is shown is always the
source wording; these forms are for matching.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s・･\-‐–—_/／()（）「」『』【】\[\]〈〉<>“”\"'’.,、。:：;&＆]+")
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})


def nfkc(text: str) -> str:
    """NFKC: full-width Latin and digits become half-width, half-width katakana full-width."""
    return unicodedata.normalize("NFKC", text)


def squash(text: str) -> str:
    """NFKC without any whitespace: slide text breaks lines and spaces arbitrarily."""
    return "".join(nfkc(text).split())


def fold(text: str) -> str:
    """NFKC and lower case: how a question's words are compared with stored words."""
    return nfkc(text).lower()


def fold_dashes(text: str) -> str:
    """NFKC with one kind of hyphen (slides mix six)."""
    return nfkc(text).translate(_DASHES)


def fold_name(text: str) -> str:
    """NFKC, lower case, no spaces or separators: how names are compared (「AMED-CiCLE」 = "amed cicle")."""
    return _SEPARATORS.sub("", fold(text))
