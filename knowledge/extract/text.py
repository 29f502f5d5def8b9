"""Markdown and plain text: decoded (UTF-8, UTF-16, or the Japanese legacy encodings), tidied, and for
Markdown, front matter read and headings put in blocks of their own."""

from __future__ import annotations

import codecs
import datetime as dt
import re
import unicodedata

from knowledge.extract.common import (
    MAGIC,
    DocumentKind,
    ExtractedDocument,
    clean_title,
    first_line_title,
    meaningful_chars,
    plausible_date,
    tidy,
)
from knowledge.extract.errors import DocumentReadError, too_many_chars
from knowledge.frontmatter import split_front_matter

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=|-)\1*[ \t]*$")


def read_plain(name: str, data: bytes, *, kind: DocumentKind, max_chars: int) -> ExtractedDocument:
    for magic, what in MAGIC:
        if data.startswith(magic):
            raise DocumentReadError(
                f"{name} is not a text file: it looks like {what}. Upload it under its real extension.",
                name=name,
                reason="corrupt",
            )
    decoded = _decode(name, data)
    if len(decoded) > max_chars:
        raise too_many_chars(name, max_chars)
    controls = sum(1 for ch in decoded if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    if controls > max(8, len(decoded) // 20):
        raise DocumentReadError(
            f"{name} does not look like text: {controls} of its {len(decoded)} characters are control "
            "characters (binary data). Upload the original document instead.",
            name=name,
            reason="encoding",
        )
    text = tidy(decoded)
    title: str | None = None
    date: dt.date | None = None
    if kind == "markdown":
        text, title, date = _front_matter(text)
        text = tidy(_separate_headings(text))
        title = clean_title(title, name) or _markdown_title(text)
    if not meaningful_chars(text):
        raise DocumentReadError(f"{name} has no text (only whitespace).", name=name, reason="no_text")
    return ExtractedDocument(
        text=text,
        title=title or first_line_title(text),
        date=date,
        kind=kind,
        pages=None,
    )


def _decode(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else the Japanese legacy encodings.

    cp932 and EUC-JP byte ranges overlap, so a file that decodes both ways is given to the reading with
    fewer half-width katakana and private-use characters: the signature of decoding it the wrong way.
    """
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    readings: list[tuple[int, int, str]] = []
    for order, encoding in enumerate(("cp932", "euc_jp")):
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        oddities = sum(1 for ch in decoded if "\uff61" <= ch <= "\uff9f" or "\ue000" <= ch <= "\uf8ff")
        readings.append((oddities, order, decoded))
    if readings:
        return min(readings)[2]
    raise DocumentReadError(
        f"{name} is not UTF-8, Shift_JIS (cp932) or EUC-JP text (byte {utf8_error.start} cannot be read). "
        "Save it as UTF-8 and upload it again.",
        name=name,
        reason="encoding",
    )


def _front_matter(text: str) -> tuple[str, str | None, dt.date | None]:
    """Strip a front-matter block and take its title and date; anything else in it stays unread."""
    front = split_front_matter(text, max_lines=60)
    if front is None or not front.is_metadata():
        return text, None, None
    values = front.fields()
    date = None
    try:
        if values.get("date"):
            date = plausible_date(dt.date.fromisoformat(values["date"][:10]))
    except ValueError:
        date = None
    return front.body, values.get("title") or None, date


def _separate_headings(text: str) -> str:
    """Put each heading in a block of its own, as the chunker reads a heading from a block's first line.

    Setext headings (a line underlined with === or ---) become `#`/`##` lines so that every heading looks
    the same downstream; the wording is untouched.
    """
    lines = text.split("\n")
    out: list[str] = []
    fenced = False
    index = 0
    while index < len(lines):
        line = lines[index]
        underline = lines[index + 1] if index + 1 < len(lines) else ""
        if _FENCE.match(line):
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(line)
        elif _HEADING.match(line):
            out.extend(["", line.strip(), ""])
        elif (
            line.strip()
            and not line.startswith((" " * 4, "\t", ">", "-", "*", "|"))
            and (not out or not out[-1].strip())
            and (match := _SETEXT.match(underline))
        ):
            out.extend(["", ("# " if match.group(1) == "=" else "## ") + line.strip(), ""])
            index += 1
        else:
            out.append(line)
        index += 1
    return "\n".join(out)


def _markdown_title(text: str) -> str | None:
    """The first of the highest-level headings (text has been through `_separate_headings`)."""
    headings: list[tuple[int, str]] = []
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            headings.append((len(match.group(1)), match.group(2).strip()))
    if not headings:
        return None
    top = min(level for level, _ in headings)
    return next(title for level, title in headings if level == top)[:200]
