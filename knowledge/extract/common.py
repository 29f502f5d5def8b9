"""What every format's reader shares: the result, text tidying, titles and dates from metadata, and the
words used in messages about a file."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

DocumentKind = Literal["pdf", "docx", "markdown", "text"]
_MB = 1024 * 1024
# What a file really is, by its first bytes, for messages about a misnamed upload.
MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (an Office file such as .docx/.xlsx/.pptx, or a .zip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls/.ppt) or a password-protected Office file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"{\\rtf", "an RTF document"),
)


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of one uploaded document, with what could be learned about it."""

    text: str
    title: str | None
    date: dt.date | None
    kind: DocumentKind
    pages: int | None
    warnings: tuple[str, ...] = ()
    """Things staff should know but that did not stop extraction (e.g. an unreadable page was skipped)."""


# Control characters other than tab and newline, lone surrogates, BOMs and non-characters: never content,
# and some (surrogates) cannot even be written as UTF-8.
JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff\ud800-\udfff]")


def tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.replace("\f", "\n\n").replace("\v", "\n")
    text = JUNK.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def meaningful_chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace() and ch not in "#|-")


def first_line_title(text: str) -> str | None:
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line.startswith("|"):
            continue
        if meaningful_chars(line):
            return line[:120]
    return None


_PLACEHOLDER_TITLES = {
    "untitled",
    "無題",
    "no title",
    "title",
    "タイトル",
    "powerpoint プレゼンテーション",
    "powerpoint presentation",
    "スライド 1",
    "slide 1",
    "document",
    "文書",
}


def clean_title(raw: str | None, name: str) -> str | None:
    """A metadata title worth showing, or None for the placeholders tools leave behind."""
    if not raw:
        return None
    title = " ".join(JUNK.sub("", raw).split())
    title = re.sub(r"^Microsoft (Word|PowerPoint|Excel) - ", "", title)
    if not title or title.lower() in _PLACEHOLDER_TITLES:
        return None
    stem = PurePosixPath(name.replace("\\", "/")).name
    if title == stem or re.fullmatch(r".+\.(docx?|pptx?|xlsx?|pdf|txt|md|rtf|indd|ai)", title, re.IGNORECASE):
        return None
    # Mojibake: Shift_JIS bytes read as PDFDocEncoding come out as Latin-1 letters and symbols.
    latin = sum(1 for ch in title if "\u0080" <= ch <= "\u00ff")
    if "\ufffd" in title or latin > len(title) / 3:
        return None
    return title[:200]


def plausible_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        return None
    # Tools write 1601-01-01, 1970-01-01 or far-future dates when the clock or the field is unset.
    if value.year < 1980 or value > dt.date.today() + dt.timedelta(days=366):
        return None
    return value


def mb(size: int) -> str:
    value = size / _MB
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def preview(data: bytes) -> str:
    head = data[:16]
    text = head.decode("ascii", errors="replace")
    if all(ch.isprintable() for ch in text):
        return repr(text)
    return head.hex(" ")


def looks_like(data: bytes) -> str:
    for magic, what in MAGIC:
        if data.startswith(magic):
            return f"; it looks like {what}"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "; it is a web page, perhaps a login or error page saved instead of the document"
    return ""
