"""The date a document states about itself (its cover: 「令和7年6月13日」, 「2025年6月」, 「R7.6.13」), found
in its opening text. Japanese era years are turned into Western years."""

from __future__ import annotations

import datetime as dt
import re

from knowledge.normalize import nfkc

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


# A date is the document's own when it stands alone on its line (a cover) or is said to be when it was made;
# 「申請締切は2026年7月31日」 is a deadline, not the document's date.
_OWN_DATE_WORDS = re.compile(r"作成|発行|公表|現在|時点|版|改訂|更新|as of|updated|published", re.IGNORECASE)
_EVENT_WORDS = re.compile(r"締切|〆切|まで|開始|期間|予定|応募|公募|申請|開催|受付|期限|deadline|until", re.IGNORECASE)
_DECORATION = re.compile(r"[\s()（）［］\[\]「」『』:：.,、。]")


def _documents_own(opening: str, start: int, end: int) -> bool:
    line_start = opening.rfind("\n", 0, start) + 1
    line_end = opening.find("\n", end)
    line = opening[line_start : line_end if line_end >= 0 else len(opening)]
    rest = _DECORATION.sub("", line.replace(opening[start:end], "", 1))
    if _OWN_DATE_WORDS.search(line):
        return True
    # a cover line: the date with little else (「2024年3月 経済産業省」), nothing that makes it an event's date
    return len(rest) <= 24 and not _EVENT_WORDS.search(line)


def stated_date(text: str) -> dt.date | None:
    """The first date the document's opening text gives as its own (alone on its line, or marked 作成, 公表,
    現在…), or None when it states none."""
    opening = nfkc(text[:OPENING_CHARS])
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
    own = [(start, date) for start, date in found if _documents_own(opening, start, start + _span(opening, start))]
    return min(own)[1] if own else None


def _span(opening: str, start: int) -> int:
    """The length of the date written at `start` (whichever pattern matched there)."""
    for pattern in (_ERA, _WESTERN, _SHORT, _ISO):
        match = pattern.match(opening, start)
        if match:
            return match.end() - start
    return 0
