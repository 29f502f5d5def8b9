"""PDF: the text layer, page by page, shaped into paragraphs and headings; scans and broken fonts refused."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import re
import unicodedata
from dataclasses import dataclass

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError
from pypdf.generic import DictionaryObject

from knowledge.extract.common import (
    JUNK,
    ExtractedDocument,
    clean_title,
    first_line_title,
    looks_like,
    meaningful_chars,
    plausible_date,
    preview,
    tidy,
)
from knowledge.extract.errors import DocumentReadError, too_many_chars


def read_pdf(name: str, data: bytes, *, max_pages: int, max_chars: int) -> ExtractedDocument:
    # The spec lets a header sit anywhere in the first 1024 bytes; readers accept that, so do we.
    if b"%PDF-" not in data[:1024]:
        raise DocumentReadError(
            f"{name} is not a PDF file (it starts with {preview(data)}{looks_like(data)}).",
            name=name,
            reason="corrupt",
        )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:  # pypdf raises many kinds on broken files; all mean the same to staff
        raise _corrupt_pdf(name, exc) from exc
    if encrypted:
        # "Protected" PDFs often have only an owner password (printing/copying restrictions): the empty
        # user password opens them, and reading their text is what any viewer does.
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except DependencyError as exc:
            raise DocumentReadError(
                f"{name} is encrypted with AES, and reading it needs the 'cryptography' package, "
                "which is not installed here.",
                name=name,
                reason="encrypted",
            ) from exc
        except Exception as exc:
            raise _corrupt_pdf(name, exc) from exc
        if not opened:
            raise _encrypted_pdf(name)
    try:
        page_count = len(reader.pages)
    except FileNotDecryptedError as exc:
        raise _encrypted_pdf(name) from exc
    except Exception as exc:
        raise _corrupt_pdf(name, exc) from exc
    if page_count == 0:
        raise DocumentReadError(f"{name} has no pages.", name=name, reason="no_text")
    if page_count > max_pages:
        raise DocumentReadError(
            f"{name} has {page_count} pages; the limit is {max_pages}. Split it and upload the parts.",
            name=name,
            reason="too_large",
        )

    page_texts: list[str] = []
    failed: list[int] = []
    blank: list[int] = []
    total = 0
    for number in range(1, page_count + 1):
        try:
            text = _pdf_page_text(reader.pages[number - 1])
        except FileNotDecryptedError as exc:
            raise _encrypted_pdf(name) from exc
        except Exception:  # noqa: BLE001 - one unreadable page is reported, not fatal
            failed.append(number)
            continue
        total += len(text)
        if total > max_chars:
            raise too_many_chars(name, max_chars)
        if not meaningful_chars(text):
            blank.append(number)
        page_texts.append(text)
    if len(failed) == page_count:
        raise DocumentReadError(
            f"{name} looks damaged: none of its {page_count} pages could be read. "
            "Open it in a PDF viewer and save or print it as a new PDF.",
            name=name,
            reason="corrupt",
        )

    text = "\n\n".join(t for t in page_texts if t)
    meaningful = meaningful_chars(text)
    unreadable = sum(1 for ch in text if ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff")
    if meaningful and unreadable > meaningful / 2:
        raise DocumentReadError(
            f"{name}: its fonts carry no Unicode mapping, so its text comes out as unreadable symbols. "
            "Print it to a new PDF, or run OCR on it, and upload the result.",
            name=name,
            reason="no_text",
        )
    # A scan usually has no text layer at all, or only page numbers and a stamp; a real page has dozens of
    # characters even on a title slide.
    if meaningful < max(10, 8 * page_count):
        raise DocumentReadError(
            f"{name} has almost no extractable text ({meaningful} characters on {page_count} "
            f"page{'s' if page_count != 1 else ''}): it looks like a scanned image. Run OCR on it first "
            "(e.g. Acrobat's Recognize Text or ocrmypdf) and upload the result.",
            name=name,
            reason="no_text",
        )
    warnings: list[str] = []
    if failed:
        warnings.append(f"{len(failed)} of {page_count} pages could not be read and were skipped: {_numbers(failed)}")
    if blank:
        warnings.append(
            f"{len(blank)} of {page_count} pages have no text (images only, or unreadable): {_numbers(blank)}"
        )

    title, date = _pdf_metadata(reader, name)
    return ExtractedDocument(
        text=text,
        title=title or first_line_title(text),
        date=date,
        kind="pdf",
        pages=page_count,
        warnings=tuple(warnings),
    )


def _numbers(pages: list[int]) -> str:
    return ", ".join(str(n) for n in pages[:10]) + (" ..." if len(pages) > 10 else "")


def _pdf_metadata(reader: PdfReader, name: str) -> tuple[str | None, dt.date | None]:
    try:
        meta = reader.metadata
    except Exception:  # noqa: BLE001 - a broken /Info dictionary costs the metadata, not the document
        return None, None
    if meta is None:
        return None, None
    title: str | None = None
    try:
        title = clean_title(str(meta.title) if meta.title is not None else None, name)
    except Exception:  # noqa: BLE001 - an undecodable title is no title
        title = None
    date: dt.date | None = None
    for attribute in ("creation_date", "modification_date"):
        try:
            value = getattr(meta, attribute)
        except Exception:  # noqa: BLE001 - malformed "D:..." dates raise in pypdf; try the next one
            continue
        date = plausible_date(value)
        if date:
            break
    return title, date


def _encrypted_pdf(name: str) -> DocumentReadError:
    return DocumentReadError(
        f"{name} is password-protected. Open it with the password, save or print it as a PDF without "
        "a password, and upload that.",
        name=name,
        reason="encrypted",
    )


def _corrupt_pdf(name: str, exc: Exception) -> DocumentReadError:
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return DocumentReadError(
        f"{name} is a damaged or unreadable PDF ({detail}). Open it in a PDF viewer and save or print it "
        "as a new PDF, then upload that.",
        name=name,
        reason="corrupt",
    )


@dataclass
class _Line:
    """One rendered line of a page, put together from the visitor's pieces."""

    text: str = ""
    y: float | None = None  # of its first visible piece
    size: float = 0.0  # of its longest visible piece
    visible: int = 0  # characters of that piece


def _pdf_page_text(page: PageObject) -> str:
    """One page as blocks: paragraphs split where the line spacing opens up, big short lines as headings.

    pypdf's plain text has a line per rendered line and nothing else; its visitor reports where each piece
    was drawn and how large, which is enough to find paragraph gaps and headings. When the visitor's pieces
    do not add up to the plain text (unusual content streams), the plain lines are used as they are.
    """
    pieces: list[tuple[str, float, float]] = []

    def visit(
        text: str, cm: list[float], tm: list[float], font_dict: DictionaryObject | None, font_size: float
    ) -> None:
        if text:
            _, _, c, d, _, y = _multiply(tm, cm)
            pieces.append((text, y, abs(font_size) * math.hypot(c, d)))

    raw = page.extract_text(visitor_text=visit) or ""
    if "".join(text for text, _, _ in pieces) != raw:
        return _join_wrapped_lines(tidy(raw))

    lines = [_Line()]
    for text, y, size in pieces:
        for index, part in enumerate(text.split("\n")):
            if index:
                lines.append(_Line())
            line = lines[-1]
            line.text += part
            visible = len(part.strip())
            if visible and line.y is None:
                line.y = y
            if visible > line.visible:
                line.size, line.visible = size, visible
    lines = [line for line in lines if JUNK.sub("", line.text).strip()]
    if not lines:
        return ""
    weights: dict[float, int] = {}
    for line in lines:
        weights[round(line.size, 1)] = weights.get(round(line.size, 1), 0) + line.visible
    body_size = max(weights, key=weights.__getitem__)
    # Line spacing inside a paragraph is the most common step down the page (the smaller one on a tie).
    steps: dict[float, int] = {}
    for previous, line in itertools.pairwise(lines):
        if previous.y is not None and line.y is not None and 0 < previous.y - line.y < 3 * max(body_size, 1):
            key = round((previous.y - line.y) * 2) / 2
            steps[key] = steps.get(key, 0) + 1
    step = min(steps, key=lambda key: (-steps[key], key)) if steps else None

    blocks: list[list[str]] = []
    previous_y: float | None = None
    for line in lines:
        text = tidy(line.text)
        heading = body_size > 0 and line.size >= 1.3 * body_size and len(text.strip()) <= 40 and "。" not in text
        gap = previous_y - line.y if previous_y is not None and line.y is not None else None
        opens = gap is not None and step is not None and (gap > 1.3 * step or gap < -0.5 * step)
        if heading:
            blocks.append(["# " + " ".join(text.split())])
            blocks.append([])
        elif not blocks or opens:
            blocks.append([text])
        else:
            blocks[-1].append(text)
        if line.y is not None:
            previous_y = line.y
    return "\n\n".join(_join_wrapped_lines("\n".join(block)) for block in blocks if block)


def _multiply(m: list[float], n: list[float]) -> tuple[float, float, float, float, float, float]:
    """m × n for PDF's [a b c d e f] affine matrices (row vectors)."""
    return (
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    )


_BULLET_START = re.compile(r"[・●○■□◆◇▶►▸➢➤※★☆◎•\-–—*＊\u2460-\u2473\u2776-\u277f]|[（(]?[0-9０-９]{1,3}[)）.．]")
_SENTENCE_END = "。．！？!?：:"


def _join_wrapped_lines(page: str) -> str:
    """Glue back Japanese sentences that the PDF's layout wrapped onto the next line.

    pypdf emits one line per rendered line, so a wrapped paragraph arrives cut mid-word ("非臨床\\n試験").
    A line is taken as wrapped when it is about as wide as the widest line on the page, ends mid-sentence
    in Japanese, and the next line starts with Japanese that is not a bullet. Short lines (titles, slide
    bullets) never qualify, so slide decks keep their lines.
    """
    lines = page.split("\n")
    widths = [_display_width(line) for line in lines]
    full = max(widths)
    if len(lines) < 2 or full < 30:
        return page
    out = [lines[0]]
    for index in range(1, len(lines)):
        if out[-1] and _was_wrapped(lines[index - 1], lines[index], width=widths[index - 1], full=full):
            out[-1] += lines[index].lstrip()
        else:
            out.append(lines[index])
    return "\n".join(out)


def _was_wrapped(previous: str, line: str, *, width: int, full: int) -> bool:
    if not previous or not line.strip() or line[0].isspace():
        return False  # an indented line (often "　") starts a Japanese paragraph
    end, start = previous[-1], line.lstrip()[0]
    return (
        width >= 0.85 * full
        and _is_japanese(end)
        and end not in _SENTENCE_END
        and start.isalnum()
        and not _BULLET_START.match(line.lstrip())
    )


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_japanese(ch: str) -> bool:
    return (
        "\u3000" <= ch <= "\u30ff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\u4e00" <= ch <= "\u9fff"
        or "\uf900" <= ch <= "\ufaff"
        or "\uff01" <= ch <= "\uff9f"
    )
