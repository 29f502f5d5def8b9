"""The date a document states about itself (its cover: 「令和7年6月13日」, 「2025年6月」, 「R7.6.13」), found
in its opening text. Japanese era years are turned into Western years."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

# The first year of each era, so era year N is FIRST + N - 1 (元年 is year 1).
ERAS = {"令和": 2019, "平成": 1989, "R": 2019, "H": 1989}
OPENING_CHARS = 1500  # a cover or a first page; later dates are deadlines and history, not the document's date

_ERA = re.compile(r"(令和|平成)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?")
_WESTERN = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?")
_SHORT = re.compile(r"(?<![A-Za-z])([RH])\s*(\d{1,2})\s*\.\s*(\d{1,2})\s*\.\s*(\d{1,2})(?!\d)")
_ISO = re.compile(r"((?:19|20)\d{2})[-/](\d{1,2})[-/](\d{1,2})(?!\d)")


def _date(year: int, month: int, day: int | None) -> dt.date | None:
    try:
        return dt.date(year, month, day or 1)
    except ValueError:
        return None


def stated_date(text: str) -> dt.date | None:
    """The first date written in the document's opening text, or None when it states none."""
    opening = unicodedata.normalize("NFKC", text[:OPENING_CHARS])
    found: list[tuple[int, dt.date]] = []
    for match in _ERA.finditer(opening):
        year = ERAS[match.group(1)] + (1 if match.group(2) == "元" else int(match.group(2))) - 1
        day = int(match.group(4)) if match.group(4) else None
        if (date := _date(year, int(match.group(3)), day)) is not None:
            found.append((match.start(), date))
    for match in _WESTERN.finditer(opening):
        day = int(match.group(3)) if match.group(3) else None
        if (date := _date(int(match.group(1)), int(match.group(2)), day)) is not None:
            found.append((match.start(), date))
    for match in _SHORT.finditer(opening):
        year = ERAS[match.group(1)] + int(match.group(2)) - 1
        if (date := _date(year, int(match.group(3)), int(match.group(4)))) is not None:
            found.append((match.start(), date))
    for match in _ISO.finditer(opening):
        if (date := _date(int(match.group(1)), int(match.group(2)), int(match.group(3)))) is not None:
            found.append((match.start(), date))
    return min(found)[1] if found else None
