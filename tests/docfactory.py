"""Builders of real upload files (PDF, .docx, hostile variants) for the extraction and knowledge-editor tests.

Every builder returns the bytes of a file made with the same libraries that produce such files in the
wild: reportlab (Japanese text in the built-in Heisei CID fonts, no font files needed), pypdf (encryption,
metadata), python-docx, msoffcrypto-tool (Word's own password encryption), Pillow and zipfile.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import zipfile

PAGE_BREAK = "\f"
"""Put this between paragraphs given to `japanese_pdf` to start a new page."""

_JP_SERIF = "HeiseiMin-W3"
_JP_SANS = "HeiseiKakuGo-W5"


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    registered = pdfmetrics.getRegisteredFontNames()
    for font in (_JP_SERIF, _JP_SANS):
        if font not in registered:
            pdfmetrics.registerFont(UnicodeCIDFont(font))


def japanese_pdf(
    paragraphs: list[str],
    title: str | None = None,
    *,
    heading: str | None = None,
    created: dt.datetime | None = None,
) -> bytes:
    """An A4 PDF whose paragraphs wrap like a real report's (CJK line breaking, justified).

    A "\\n" inside a paragraph is a line break without paragraph spacing (slide-style bullet lines).
    `title` goes into the /Title metadata (reportlab writes "untitled" when it is None, as many tools do);
    `heading` is drawn in a larger sans font above the paragraphs; `created` replaces /CreationDate.
    """
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    _register_fonts()
    body = ParagraphStyle("body", fontName=_JP_SERIF, fontSize=10.5, leading=17, wordWrap="CJK", alignment=TA_JUSTIFY)
    big = ParagraphStyle("heading", fontName=_JP_SANS, fontSize=16, leading=24, spaceAfter=8)
    story: list[object] = [Paragraph(heading, big)] if heading else []
    for paragraph in paragraphs:
        if paragraph == PAGE_BREAK:
            story.append(PageBreak())
        else:
            story.extend([Paragraph(_escape(paragraph).replace("\n", "<br/>"), body), Spacer(1, 8)])
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=title or "untitled", author="厚生労働省").build(story)
    data = out.getvalue()
    if created is not None:
        data = _with_metadata(data, {"/CreationDate": _pdf_date(created), "/ModDate": _pdf_date(created)})
    return data


def encrypted_pdf(
    paragraphs: list[str] | None = None,
    *,
    user_password: str = "secret",
    owner_password: str | None = "owner-secret",
    algorithm: str = "AES-256",
) -> bytes:
    """A Japanese PDF encrypted by pypdf. With `user_password=""` it opens without a password but carries
    an owner password (the common "protected against copying" PDF)."""
    from pypdf import PdfReader, PdfWriter

    source = japanese_pdf(
        paragraphs or ["この文書は暗号化されています。閲覧にはパスワードが必要です。"], title="暗号化された資料"
    )
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_only_pdf(pages: int = 2, *, page_numbers: bool = False) -> bytes:
    """A "scanned" PDF: each page is one raster image of a text-like page, with no text layer except,
    when `page_numbers`, a page number in the footer (as scanning software often stamps)."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    width, height = A4
    for number in range(1, pages + 1):
        image = Image.new("L", (620, 877), 255)
        draw = ImageDraw.Draw(image)
        draw.rectangle((60, 60, 400, 90), fill=40)  # a title bar
        for row in range(130, 800, 22):  # lines of "text"
            draw.rectangle((60, row, 560 - (row * 7) % 90, row + 9), fill=90)
        pdf.drawImage(ImageReader(image), 0, 0, width=width, height=height)
        if page_numbers:
            pdf.setFont("Helvetica", 9)
            pdf.drawCentredString(width / 2, 20, f"- {number} -")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def merge_pdfs(*pdfs: bytes) -> bytes:
    """One PDF with the pages of all the given ones, in order (e.g. text pages with a scanned page), and
    the first one's document info (title, dates)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    readers = [PdfReader(io.BytesIO(pdf)) for pdf in pdfs]
    for reader in readers:
        writer.append(reader)
    if readers and readers[0].metadata:
        writer.add_metadata({key: str(value) for key, value in readers[0].metadata.items()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def japanese_docx(
    *,
    heading: str,
    paragraphs: list[str],
    table: list[list[str]] | None = None,
    title: str | None = None,
    created: dt.datetime | None = None,
    subheading: str | None = None,
    bullets: list[str] | None = None,
) -> bytes:
    """A Word document: a Heading 1, paragraphs, optionally a Heading 2 with bullets, and a grid table
    whose first row is the header. `title`/`created` fill the core properties (File > Info)."""
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if subheading:
        document.add_heading(subheading, level=2)
    for bullet in bullets or []:
        document.add_paragraph(bullet, style="List Bullet")
    if table:
        grid = document.add_table(rows=len(table), cols=max(len(row) for row in table))
        grid.style = "Table Grid"
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    core = document.core_properties
    core.title = title or ""
    if created is not None:
        core.created = created
        core.modified = created
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


_BODY_NAMESPACES = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:v="urn:schemas-microsoft-com:vml"'
)


def docx_with_body(body_xml: str) -> bytes:
    """A Word document whose body is the given WordprocessingML (w: prefix; mc, wps, wp, a, v also
    declared), for constructs python-docx cannot author: revisions, furigana, text boxes, content controls."""
    import docx
    from lxml import etree

    document = docx.Document()
    body = document.element.body
    section = body.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}sectPr")
    for child in list(body):
        body.remove(child)
    fragment = etree.fromstring(f"<w:body {_BODY_NAMESPACES}>{body_xml}</w:body>")
    for child in list(fragment):
        body.append(child)
    if section is not None:
        body.append(section)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def password_protected_docx(password: str = "secret") -> bytes:
    """A .docx encrypted the way Word's "Encrypt with Password" does it (an OLE2 EncryptedPackage)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = japanese_docx(heading="社外秘", paragraphs=["パスワードで保護された文書です。"])
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt(password, out)
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def docx_zip_bomb(uncompressed_mb: int = 300) -> bytes:
    """A well-formed .docx whose word/document.xml inflates to `uncompressed_mb` MB of XML whitespace.

    Streamed into the zip a megabyte at a time, so building it never holds the inflated document; the
    result is about a thousandth of the inflated size (~300 KB for the default)."""
    template = japanese_docx(heading="見出し", paragraphs=["本文"])
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(template)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info.filename))
        with bomb.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
                b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            )
            chunk = b" " * (1024 * 1024)
            for _ in range(uncompressed_mb):
                member.write(chunk)
            member.write(b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def docx_many_members(count: int = 5000) -> bytes:
    """A real .docx padded with `count` tiny extra members (the many-entries flavour of a zip bomb)."""
    template = japanese_docx(heading="見出し", paragraphs=["本文"])
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(template)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as padded,
    ):
        for info in source.infolist():
            padded.writestr(info.filename, source.read(info.filename))
        for index in range(count):
            padded.writestr(f"word/padding/part{index}.xml", b"<a/>")
    return out.getvalue()


def _escape(text: str) -> str:
    """reportlab Paragraphs take a little markup; the callers give plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _pdf_date(moment: dt.datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        return moment.strftime("D:%Y%m%d%H%M%S")
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return moment.strftime("D:%Y%m%d%H%M%S") + f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"


def _with_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.add_metadata(metadata)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
