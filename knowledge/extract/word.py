"""Word (.docx): the body in reading order, walked in its XML, after the zip is checked for bombs."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import docx
from docx.document import Document as DocxDocument
from lxml.etree import _Element as XmlElement

from knowledge.extract.common import (
    ExtractedDocument,
    clean_title,
    first_line_title,
    looks_like,
    mb,
    meaningful_chars,
    plausible_date,
    preview,
    tidy,
)
from knowledge.extract.errors import DocumentReadError, too_many_chars

# A .docx is a zip: these bound what python-docx may inflate. Real Word files are a few dozen members whose
# XML compresses 5-20:1; a bomb is one member inflating thousands of times, or thousands of members.
DOCX_MAX_UNCOMPRESSED = 100 * 1024 * 1024
DOCX_MAX_MEMBERS = 2000
DOCX_MAX_RATIO = 200
DOCX_RATIO_MIN_SIZE = 10 * 1024 * 1024
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# Text that a reader does not see as part of the paragraph: furigana, deleted/moved-away revisions, the
# old-format copy of a drawing, and text boxes (emitted as their own paragraphs).
_HIDDEN_ANCESTORS = frozenset({_W + "rt", _W + "del", _W + "moveFrom", _MC_FALLBACK, _W + "txbxContent"})
_MAX_NESTING = 8


def read_docx(name: str, data: bytes, *, max_chars: int) -> ExtractedDocument:
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
            f"{name} is not a Word .docx file (it starts with {preview(data)}{looks_like(data)}).",
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

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _DocxBlocks(document, max_chars=max_chars, name=name)
        blocks.walk(document.element.body, depth=0)
    except DocumentReadError:
        raise
    except Exception as exc:
        raise _corrupt_docx(name, f"{type(exc).__name__}: {str(exc)[:120]}") from exc

    text = tidy("\n\n".join(blocks.out))
    if not meaningful_chars(text):
        has_images = any(True for _ in document.element.body.iter(_W + "drawing", _W + "pict"))
        hint = " It contains only images: run OCR on them and upload the text." if has_images else ""
        raise DocumentReadError(f"{name} has no text.{hint}", name=name, reason="no_text")

    title: str | None = None
    date: dt.date | None = None
    try:
        core = document.core_properties
        title = clean_title(core.title, name)
        date = plausible_date(core.created) or plausible_date(core.modified)
    except Exception:  # noqa: BLE001 - malformed docProps/core.xml costs the metadata, not the document
        pass
    return ExtractedDocument(
        text=text,
        title=title or blocks.first_title or blocks.first_heading or first_line_title(text),
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
        raise bomb(f"it unpacks to {mb(total)} MB (limit {mb(DOCX_MAX_UNCOMPRESSED)} MB)")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > DOCX_RATIO_MIN_SIZE and ratio > DOCX_MAX_RATIO:
            raise bomb(f"{info.filename} unpacks {ratio:.0f} times larger ({mb(info.file_size)} MB)")


class _DocxBlocks:
    """Walks a Word body in reading order, turning paragraphs, tables, content controls and text boxes
    into markdown-ish blocks."""

    def __init__(self, document: DocxDocument, *, max_chars: int, name: str, flat: bool = False) -> None:
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
            raise too_many_chars(self.name, self.max_chars)
        if list_item and self._in_list:
            self.out[-1] += "\n" + block  # a list is one block, as in markdown
        else:
            self.out.append(block)
        self._in_list = list_item

    def walk(self, container: XmlElement, *, depth: int) -> None:
        if depth > _MAX_NESTING:
            return
        for child in container.iterchildren():
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

    def paragraph(self, p: XmlElement, *, depth: int) -> None:
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
        for box in p.iter(_W + "txbxContent"):
            if not _has_ancestor(box, p, frozenset({_MC_FALLBACK, _W + "txbxContent"})):
                self.walk(box, depth=depth + 1)

    def table(self, tbl: XmlElement, *, depth: int) -> None:
        rows: list[list[str]] = []
        for tr in tbl.iterchildren(_W + "tr"):
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
            for tr in tbl.iterchildren(_W + "tr"):
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

    def _cell_text(self, tc: XmlElement, *, depth: int) -> str:
        inner = _DocxBlocks(self.document, max_chars=self.max_chars, name=self.name, flat=True)
        inner.walk(tc, depth=depth + 1)
        return " ".join(" ".join(inner.out).split()).replace("|", "\\|")

    def _heading_level(self, p: XmlElement) -> tuple[int | None, bool]:
        ppr = p.find(_W + "pPr")
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
        styles = self.document.styles.element
        seen: set[str] = set()
        current: str | None = style_id
        while current and current not in seen and len(seen) < 10:
            seen.add(current)
            element = next((s for s in styles.iterchildren(_W + "style") if s.get(_W + "styleId") == current), None)
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

    def _is_list_item(self, p: XmlElement) -> bool:
        ppr = p.find(_W + "pPr")
        if ppr is None:
            return False
        if ppr.find(_W + "numPr") is not None:
            return True
        style = ppr.find(_W + "pStyle")
        return bool(style is not None and (style.get(_W + "val") or "").lower().startswith("list"))


def _paragraph_text(p: XmlElement) -> str:
    """The visible text of a paragraph, including hyperlinks, fields' results and inserted revisions.

    python-docx's Paragraph.text skips runs inside w:ins and content controls; walking the XML does not.
    """
    parts: list[str] = []
    for element in p.iter(_W + "t", _W + "tab", _W + "br", _W + "cr", _W + "noBreakHyphen"):
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


def _has_ancestor(element: XmlElement, stop: XmlElement, tags: frozenset[str]) -> bool:
    node = element.getparent()
    while node is not None and node is not stop:
        if node.tag in tags:
            return True
        node = node.getparent()
    return False


def _int_attr(element: XmlElement) -> int | None:
    try:
        return int(element.get(_W + "val"))
    except (TypeError, ValueError):
        return None
