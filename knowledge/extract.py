"""Plain text out of the files staff upload as new source documents: PDF, Word (.docx), Markdown, text.

Pure: bytes in, `ExtractedDocument` out, nothing written and nothing fetched. Every failure is a
`DocumentReadError` whose message names the file and says what to do about it, with a machine-readable
`reason`. Uploads are untrusted, so size, page, character and zip limits are checked before the parsing
libraries get to spend memory or time on them, and whatever those libraries raise becomes "corrupt".

The text keeps the source's wording (no NFKC: quotes are checked against it later) and is shaped for the
document chunker: `# heading` lines, blocks separated by blank lines, PDF pages separated by a blank line.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import itertools
import math
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal, get_args

from knowledge.errors import KnowledgeError

ReadFailure = Literal["too_large", "unsupported_type", "encrypted", "no_text", "corrupt", "zip_bomb", "encoding"]
DocumentKind = Literal["pdf", "docx", "markdown", "text"]

SUPPORTED_EXTENSIONS: dict[str, DocumentKind] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 2000
MAX_CHARS = 5_000_000
# A .docx is a zip: these bound what python-docx may inflate. Real Word files are a few dozen members whose
# XML compresses 5-20:1; a bomb is one member inflating thousands of times, or thousands of members.
DOCX_MAX_UNCOMPRESSED = 100 * 1024 * 1024
DOCX_MAX_MEMBERS = 2000
DOCX_MAX_RATIO = 200
DOCX_RATIO_MIN_SIZE = 10 * 1024 * 1024

_MB = 1024 * 1024
_HINTS_BY_EXTENSION = {
    ".doc": "save it in Word as .docx (File > Save As > Word Document) and upload that",
    ".rtf": "save it in Word as .docx and upload that",
    ".pptx": "export it as PDF (File > Export > PDF) and upload that",
    ".ppt": "export it as PDF and upload that",
    ".xlsx": "export the sheets as PDF, or copy the text into a .txt or .md file",
    ".xls": "export the sheets as PDF, or copy the text into a .txt or .md file",
    ".png": "it is an image; run OCR on it and upload the text, or upload the original document",
    ".jpg": "it is an image; run OCR on it and upload the text, or upload the original document",
    ".jpeg": "it is an image; run OCR on it and upload the text, or upload the original document",
    ".zip": "unzip it and upload the documents one by one",
    ".html": "save the page as PDF, or copy its text into a .txt or .md file",
    ".htm": "save the page as PDF, or copy its text into a .txt or .md file",
}
# What a file really is, by its first bytes, for messages about a misnamed upload.
_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (an Office file such as .docx/.xlsx/.pptx, or a .zip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls/.ppt) or a password-protected Office file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"{\\rtf", "an RTF document"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


class DocumentReadError(KnowledgeError):
    """An uploaded file cannot become a source document; the message names the file and what to do."""

    def __init__(self, message: str, *, name: str, reason: ReadFailure) -> None:
        if reason not in get_args(ReadFailure):
            raise ValueError(f"unknown DocumentReadError reason {reason!r}")
        self.name = name
        self.reason: ReadFailure = reason
        super().__init__(message)


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


def extract_document(
    name: str,
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pages: int = MAX_PDF_PAGES,
    max_chars: int = MAX_CHARS,
) -> ExtractedDocument:
    """Text, title and date of the uploaded file `name` (used for its extension and in messages).

    Raises DocumentReadError with reason too_large, unsupported_type, encrypted, no_text, corrupt, zip_bomb
    or encoding; nothing else escapes for any input bytes.
    """
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    kind = SUPPORTED_EXTENSIONS.get(extension)
    if kind is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        what = f"{extension} files are" if extension else "files without an extension are"
        hint = _HINTS_BY_EXTENSION.get(extension)
        raise DocumentReadError(
            f"{name}: {what} not supported; upload one of {supported}" + (f" ({hint})." if hint else "."),
            name=name,
            reason="unsupported_type",
        )
    # Checked before any parser sees the bytes.
    if len(data) > max_bytes:
        raise DocumentReadError(
            f"{name} is {_mb(len(data))} MB; the limit is {_mb(max_bytes)} MB. "
            "Split it, or compress its images, and upload it again.",
            name=name,
            reason="too_large",
        )
    if not data.strip():
        what = "is empty" if not data else "contains only whitespace"
        raise DocumentReadError(f"{name} {what}.", name=name, reason="no_text")
    if kind == "pdf":
        document = _read_pdf(name, data, max_pages=max_pages, max_chars=max_chars)
    elif kind == "docx":
        document = _read_docx(name, data, max_chars=max_chars)
    else:
        document = _read_plain(name, data, kind=kind, max_chars=max_chars)
    if len(document.text) > max_chars:
        raise _too_many_chars(name, max_chars)
    return document


# --- PDF ---------------------------------------------------------------------------------------------------


def _read_pdf(name: str, data: bytes, *, max_pages: int, max_chars: int) -> ExtractedDocument:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    # The spec lets a header sit anywhere in the first 1024 bytes; readers accept that, so do we.
    if b"%PDF-" not in data[:1024]:
        raise DocumentReadError(
            f"{name} is not a PDF file (it starts with {_preview(data)}{_looks_like(data)}).",
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
            raise _too_many_chars(name, max_chars)
        if not _meaningful_chars(text):
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
    meaningful = _meaningful_chars(text)
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
        title=title or _first_line_title(text),
        date=date,
        kind="pdf",
        pages=page_count,
        warnings=tuple(warnings),
    )


def _numbers(pages: list[int]) -> str:
    return ", ".join(str(n) for n in pages[:10]) + (" ..." if len(pages) > 10 else "")


def _pdf_metadata(reader: object, name: str) -> tuple[str | None, dt.date | None]:
    try:
        meta = reader.metadata  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a broken /Info dictionary costs the metadata, not the document
        return None, None
    if meta is None:
        return None, None
    title: str | None = None
    try:
        title = _clean_title(str(meta.title) if meta.title is not None else None, name)
    except Exception:  # noqa: BLE001 - an undecodable title is no title
        title = None
    date: dt.date | None = None
    for attribute in ("creation_date", "modification_date"):
        try:
            value = getattr(meta, attribute)
        except Exception:  # noqa: BLE001, S112 - malformed "D:..." dates raise in pypdf; try the next one
            continue
        date = _plausible_date(value)
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


def _pdf_page_text(page: object) -> str:
    """One page as blocks: paragraphs split where the line spacing opens up, big short lines as headings.

    pypdf's plain text has a line per rendered line and nothing else; its visitor reports where each piece
    was drawn and how large, which is enough to find paragraph gaps and headings. When the visitor's pieces
    do not add up to the plain text (unusual content streams), the plain lines are used as they are.
    """
    pieces: list[tuple[str, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], font_dict: object, font_size: float) -> None:
        if text:
            _, _, c, d, _, y = _multiply(tm, cm)
            pieces.append((text, y, abs(font_size) * math.hypot(c, d)))

    raw = page.extract_text(visitor_text=visit) or ""  # type: ignore[attr-defined]
    if "".join(text for text, _, _ in pieces) != raw:
        return _join_wrapped_lines(_tidy(raw))

    lines: list[list] = [["", None, 0.0, 0]]  # text, y of its first visible piece, size, visible chars
    for text, y, size in pieces:
        for index, part in enumerate(text.split("\n")):
            if index:
                lines.append(["", None, 0.0, 0])
            line = lines[-1]
            line[0] += part
            visible = len(part.strip())
            if visible and line[1] is None:
                line[1] = y
            if visible > line[3]:
                line[2], line[3] = size, visible
    lines = [line for line in lines if _JUNK.sub("", line[0]).strip()]
    if not lines:
        return ""
    weights: dict[float, int] = {}
    for _, _, size, visible in lines:
        weights[round(size, 1)] = weights.get(round(size, 1), 0) + visible
    body_size = max(weights, key=weights.__getitem__)
    # Line spacing inside a paragraph is the most common step down the page (the smaller one on a tie).
    steps: dict[float, int] = {}
    for previous, line in itertools.pairwise(lines):
        if previous[1] is not None and line[1] is not None and 0 < previous[1] - line[1] < 3 * max(body_size, 1):
            key = round((previous[1] - line[1]) * 2) / 2
            steps[key] = steps.get(key, 0) + 1
    step = min(steps, key=lambda key: (-steps[key], key)) if steps else None

    blocks: list[list[str]] = []
    previous_y: float | None = None
    for text, y, size, _ in lines:
        text = _tidy(text)
        heading = body_size > 0 and size >= 1.3 * body_size and len(text.strip()) <= 40 and "。" not in text
        gap = previous_y - y if previous_y is not None and y is not None else None
        opens = gap is not None and step is not None and (gap > 1.3 * step or gap < -0.5 * step)
        if heading:
            blocks.append(["# " + " ".join(text.split())])
            blocks.append([])
        elif not blocks or opens:
            blocks.append([text])
        else:
            blocks[-1].append(text)
        if y is not None:
            previous_y = y
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


# --- Word (.docx) ------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# Text that a reader does not see as part of the paragraph: furigana, deleted/moved-away revisions, the
# old-format copy of a drawing, and text boxes (emitted as their own paragraphs).
_HIDDEN_ANCESTORS = frozenset({_W + "rt", _W + "del", _W + "moveFrom", _MC_FALLBACK, _W + "txbxContent"})
_MAX_NESTING = 8


def _read_docx(name: str, data: bytes, *, max_chars: int) -> ExtractedDocument:
    if data.startswith(_OLE2):
        if _ENCRYPTED_PACKAGE in data:
            raise DocumentReadError(
                f"{name} is password-protected. Open it in Word, remove the password (File > Info > "
                "Protect Document > Encrypt with Password, clear it), save, and upload it again.",
                name=name,
                reason="encrypted",
            )
        raise DocumentReadError(
            f"{name} is an old Word 97-2003 (.doc) file renamed to .docx. Open it in Word and save it as "
            ".docx (Word Document), then upload that.",
            name=name,
            reason="corrupt",
        )
    if not data.startswith(b"PK"):
        raise DocumentReadError(
            f"{name} is not a Word .docx file (it starts with {_preview(data)}{_looks_like(data)}).",
            name=name,
            reason="corrupt",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except Exception as exc:
        raise _corrupt_docx(name, f"its zip structure cannot be read: {exc}") from exc
    _check_zip(name, infos)
    members = {info.filename for info in infos}
    if "word/document.xml" not in members:
        if "xl/workbook.xml" in members:
            what = "an Excel workbook renamed to .docx; export it as PDF and upload that"
        elif "ppt/presentation.xml" in members:
            what = "a PowerPoint presentation renamed to .docx; export it as PDF and upload that"
        else:
            what = "a zip archive without word/document.xml"
        raise DocumentReadError(
            f"{name} is not a Word document: it is {what}.",
            name=name,
            reason="corrupt",
        )

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _DocxBlocks(document, max_chars=max_chars, name=name)
        blocks.walk(document.element.body, depth=0)
    except DocumentReadError:
        raise
    except Exception as exc:
        raise _corrupt_docx(name, f"{type(exc).__name__}: {str(exc)[:120]}") from exc

    text = _tidy("\n\n".join(blocks.out))
    if not _meaningful_chars(text):
        has_images = any(True for _ in document.element.body.iter(_W + "drawing", _W + "pict"))
        hint = " It contains only images: run OCR on them and upload the text." if has_images else ""
        raise DocumentReadError(f"{name} has no text.{hint}", name=name, reason="no_text")

    title: str | None = None
    date: dt.date | None = None
    try:
        core = document.core_properties
        title = _clean_title(core.title, name)
        date = _plausible_date(core.created) or _plausible_date(core.modified)
    except Exception:  # noqa: BLE001, S110 - malformed docProps/core.xml costs the metadata, not the document
        pass
    return ExtractedDocument(
        text=text,
        title=title or blocks.first_title or blocks.first_heading or _first_line_title(text),
        date=date,
        kind="docx",
        pages=None,
    )


def _corrupt_docx(name: str, detail: str) -> DocumentReadError:
    return DocumentReadError(
        f"{name} is a damaged .docx file ({detail}). Open it in Word, save it again, and upload that.",
        name=name,
        reason="corrupt",
    )


def _check_zip(name: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse zip bombs by the central directory, before anything is inflated.

    CPython's zipfile stops inflating a member at the size the central directory declares, so these
    declared sizes bound what python-docx can allocate even when the local headers lie.
    """

    def bomb(detail: str) -> DocumentReadError:
        return DocumentReadError(
            f"{name} was refused as a possible zip bomb: {detail}. A real Word document is far smaller "
            "when unpacked; if this one is genuine, save it again in Word (or as PDF) and upload that.",
            name=name,
            reason="zip_bomb",
        )

    if len(infos) > DOCX_MAX_MEMBERS:
        raise bomb(f"it has {len(infos)} parts (limit {DOCX_MAX_MEMBERS})")
    total = sum(info.file_size for info in infos)
    if total > DOCX_MAX_UNCOMPRESSED:
        raise bomb(f"it unpacks to {_mb(total)} MB (limit {_mb(DOCX_MAX_UNCOMPRESSED)} MB)")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > DOCX_RATIO_MIN_SIZE and ratio > DOCX_MAX_RATIO:
            raise bomb(f"{info.filename} unpacks {ratio:.0f} times larger ({_mb(info.file_size)} MB)")


class _DocxBlocks:
    """Walks a Word body in reading order, turning paragraphs, tables, content controls and text boxes
    into markdown-ish blocks."""

    def __init__(self, document: object, *, max_chars: int, name: str, flat: bool = False) -> None:
        self.document = document
        self.flat = flat  # inside a table cell: plain text only, no markdown
        self.max_chars = max_chars
        self.name = name
        self.out: list[str] = []
        self.total = 0
        self.first_title: str | None = None
        self.first_heading: str | None = None
        self._style_levels: dict[str, int | None] = {}
        self._in_list = False

    def emit(self, block: str, *, list_item: bool = False) -> None:
        block = block.strip("\n")
        if not block.strip():
            return
        self.total += len(block) + 2
        if self.total > self.max_chars:
            raise _too_many_chars(self.name, self.max_chars)
        if list_item and self._in_list:
            self.out[-1] += "\n" + block  # a list is one block, as in markdown
        else:
            self.out.append(block)
        self._in_list = list_item

    def walk(self, container: object, *, depth: int) -> None:
        if depth > _MAX_NESTING:
            return
        for child in container.iterchildren():  # type: ignore[attr-defined]
            tag = child.tag
            if tag == _W + "p":
                self.paragraph(child, depth=depth)
            elif tag == _W + "tbl":
                self.table(child, depth=depth)
            elif tag == _W + "sdt":
                content = child.find(_W + "sdtContent")
                if content is not None:
                    self.walk(content, depth=depth + 1)
            elif tag in (_W + "customXml", _W + "ins", _W + "moveTo", _W + "smartTag"):
                self.walk(child, depth=depth + 1)

    def paragraph(self, p: object, *, depth: int) -> None:
        text = _paragraph_text(p).strip()
        if text and self.flat:
            self.emit(text)
        elif text:
            # Only here: inside table cells (flat) headings are plain text, and each cell has a fresh style cache.
            level, is_title = self._heading_level(p)
            if level:
                self.emit("#" * min(level, 6) + " " + " ".join(text.split()))
                if is_title and self.first_title is None:
                    self.first_title = text
                if self.first_heading is None:
                    self.first_heading = text
            elif self._is_list_item(p):
                self.emit("- " + text, list_item=True)
            else:
                self.emit(text)
        for box in p.iter(_W + "txbxContent"):  # type: ignore[attr-defined]
            if not _has_ancestor(box, p, frozenset({_MC_FALLBACK, _W + "txbxContent"})):
                self.walk(box, depth=depth + 1)

    def table(self, tbl: object, *, depth: int) -> None:
        rows: list[list[str]] = []
        for tr in tbl.iterchildren(_W + "tr"):  # type: ignore[attr-defined]
            cells = []
            for tc in tr.iterchildren(_W + "tc"):
                cells.append(self._cell_text(tc, depth=depth))
            rows.append(cells)
        rows = [row for row in rows if any(cell for cell in row)]
        if not rows:
            return
        if self.flat:
            self.emit(" ".join(cell for row in rows for cell in row if cell))
            return
        width = max(len(row) for row in rows)
        if width == 1:
            # A one-column table is a frame drawn around ordinary text (notes, boxed summaries).
            for tr in tbl.iterchildren(_W + "tr"):  # type: ignore[attr-defined]
                for tc in tr.iterchildren(_W + "tc"):
                    self.walk(tc, depth=depth + 1)
            return
        lines = []
        for index, row in enumerate(rows):
            padded = row + [""] * (width - len(row))
            lines.append("| " + " | ".join(padded) + " |")
            if index == 0:
                lines.append("|" + " --- |" * width)
        self.emit("\n".join(lines))

    def _cell_text(self, tc: object, *, depth: int) -> str:
        inner = _DocxBlocks(self.document, max_chars=self.max_chars, name=self.name, flat=True)
        inner.walk(tc, depth=depth + 1)
        return " ".join(" ".join(inner.out).split()).replace("|", "\\|")

    def _heading_level(self, p: object) -> tuple[int | None, bool]:
        ppr = p.find(_W + "pPr")  # type: ignore[attr-defined]
        if ppr is not None:
            outline = ppr.find(_W + "outlineLvl")
            if outline is not None:
                level = _int_attr(outline)
                if level is not None and level < 9:
                    return level + 1, False
            style = ppr.find(_W + "pStyle")
            style_id = style.get(_W + "val") if style is not None else None
        else:
            style_id = None
        if not style_id:
            return None, False
        if style_id not in self._style_levels:
            self._style_levels[style_id] = self._style_level(style_id)
        level = self._style_levels[style_id]
        if level is None:
            return None, False
        return abs(level), level < 0

    def _style_level(self, style_id: str) -> int | None:
        """Heading level of a paragraph style (negative for the Title style), following `basedOn`."""
        styles = self.document.styles.element  # type: ignore[attr-defined]
        seen: set[str] = set()
        current: str | None = style_id
        while current and current not in seen and len(seen) < 10:
            seen.add(current)
            element = next(
                (s for s in styles.iterchildren(_W + "style") if s.get(_W + "styleId") == current), None
            )
            if element is None:
                return None
            name_el = element.find(_W + "name")
            style_name = (name_el.get(_W + "val") or "").strip().lower() if name_el is not None else ""
            if style_name == "title":
                return -1
            match = re.fullmatch(r"heading\s*([1-9])", style_name)
            if match:
                return int(match.group(1))
            ppr = element.find(_W + "pPr")
            outline = ppr.find(_W + "outlineLvl") if ppr is not None else None
            if outline is not None:
                level = _int_attr(outline)
                if level is not None and level < 9:
                    return level + 1
            based = element.find(_W + "basedOn")
            current = based.get(_W + "val") if based is not None else None
        return None

    def _is_list_item(self, p: object) -> bool:
        ppr = p.find(_W + "pPr")  # type: ignore[attr-defined]
        if ppr is None:
            return False
        if ppr.find(_W + "numPr") is not None:
            return True
        style = ppr.find(_W + "pStyle")
        return bool(style is not None and (style.get(_W + "val") or "").lower().startswith("list"))


def _paragraph_text(p: object) -> str:
    """The visible text of a paragraph, including hyperlinks, fields' results and inserted revisions.

    python-docx's Paragraph.text skips runs inside w:ins and content controls; walking the XML does not.
    """
    parts: list[str] = []
    for element in p.iter(_W + "t", _W + "tab", _W + "br", _W + "cr", _W + "noBreakHyphen"):  # type: ignore[attr-defined]
        if _has_ancestor(element, p, _HIDDEN_ANCESTORS):
            continue
        tag = element.tag
        if tag == _W + "t":
            parts.append(element.text or "")
        elif tag == _W + "tab":
            # w:tab inside w:tabs (pPr) is a tab stop definition, not a character.
            if element.getparent().tag != _W + "tabs":
                parts.append("\t")
        elif tag == _W + "noBreakHyphen":
            parts.append("-")
        else:
            parts.append("\n")
    return "".join(parts)


def _has_ancestor(element: object, stop: object, tags: frozenset[str]) -> bool:
    node = element.getparent()  # type: ignore[attr-defined]
    while node is not None and node is not stop:
        if node.tag in tags:
            return True
        node = node.getparent()
    return False


def _int_attr(element: object) -> int | None:
    try:
        return int(element.get(_W + "val"))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None


# --- Markdown and plain text -------------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=|-)\1*[ \t]*$")
_FRONT_MATTER_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")


def _read_plain(name: str, data: bytes, *, kind: DocumentKind, max_chars: int) -> ExtractedDocument:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DocumentReadError(
                f"{name} is not a text file: it looks like {what}. Upload it under its real extension.",
                name=name,
                reason="corrupt",
            )
    decoded = _decode(name, data)
    if len(decoded) > max_chars:
        raise _too_many_chars(name, max_chars)
    controls = sum(1 for ch in decoded if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    if controls > max(8, len(decoded) // 20):
        raise DocumentReadError(
            f"{name} does not look like text: {controls} of its {len(decoded)} characters are control "
            "characters (binary data). Upload the original document instead.",
            name=name,
            reason="encoding",
        )
    text = _tidy(decoded)
    title: str | None = None
    date: dt.date | None = None
    if kind == "markdown":
        text, title, date = _front_matter(text)
        text = _tidy(_separate_headings(text))
        title = _clean_title(title, name) or _markdown_title(text)
    if not _meaningful_chars(text):
        raise DocumentReadError(f"{name} has no text (only whitespace).", name=name, reason="no_text")
    return ExtractedDocument(
        text=text,
        title=title or _first_line_title(text),
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
    """Strip a YAML front-matter block and take its title and date; anything else stays as text."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return text, None, None
    try:
        end = next(i for i in range(1, min(len(lines), 60)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        return text, None, None
    body = lines[1:end]
    # Only a block that is all `key: value` lines is metadata; otherwise `---` was a horizontal rule.
    if not body or not all(_FRONT_MATTER_KEY.match(line) or line.startswith((" ", "-")) or not line.strip()
                           for line in body):
        return text, None, None
    values = {}
    for line in body:
        match = _FRONT_MATTER_KEY.match(line)
        if match:
            values[match.group(1).lower()] = match.group(2).strip().strip("'\"")
    date = None
    try:
        if values.get("date"):
            date = _plausible_date(dt.date.fromisoformat(values["date"][:10]))
    except ValueError:
        date = None
    return "\n".join(lines[end + 1 :]), values.get("title") or None, date


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


# --- shared ------------------------------------------------------------------------------------------------

# Control characters other than tab and newline, lone surrogates, BOMs and non-characters: never content,
# and some (surrogates) cannot even be written as UTF-8.
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff\ud800-\udfff]")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.replace("\f", "\n\n").replace("\v", "\n")
    text = _JUNK.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def _meaningful_chars(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace() and ch not in "#|-")


def _first_line_title(text: str) -> str | None:
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line.startswith("|"):
            continue
        if _meaningful_chars(line):
            return line[:120]
    return None


_PLACEHOLDER_TITLES = {
    "untitled", "無題", "no title", "title", "タイトル", "powerpoint プレゼンテーション", "powerpoint presentation",
    "スライド 1", "slide 1", "document", "文書",
}


def _clean_title(raw: str | None, name: str) -> str | None:
    """A metadata title worth showing, or None for the placeholders tools leave behind."""
    if not raw:
        return None
    title = " ".join(_JUNK.sub("", raw).split())
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


def _plausible_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        return None
    # Tools write 1601-01-01, 1970-01-01 or far-future dates when the clock or the field is unset.
    if value.year < 1980 or value > dt.date.today() + dt.timedelta(days=366):
        return None
    return value


def _too_many_chars(name: str, max_chars: int) -> DocumentReadError:
    return DocumentReadError(
        f"{name} has more than {max_chars:,} characters of text; split it and upload the parts.",
        name=name,
        reason="too_large",
    )


def _mb(size: int) -> str:
    value = size / _MB
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _preview(data: bytes) -> str:
    head = data[:16]
    text = head.decode("ascii", errors="replace")
    if all(ch.isprintable() for ch in text):
        return repr(text)
    return head.hex(" ")


def _looks_like(data: bytes) -> str:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return f"; it looks like {what}"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "; it is a web page, perhaps a login or error page saved instead of the document"
    return ""
