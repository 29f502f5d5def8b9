"""Plain text out of the files staff upload as new source documents: PDF, Word (.docx), Markdown, text.

One module per format (pdf, word, text), chosen by the file's extension; what they share is in common,
the one error in errors. Pure: bytes in, `ExtractedDocument` out, nothing written and nothing fetched. Every
failure is a `DocumentReadError` whose message names the file and says what to do about it, with a machine-readable `reason`. Uploads are untrusted, so size, page, character and zip limits are checked before the parsing
libraries get to spend memory or time on them, and whatever those libraries raise becomes "corrupt".

The text keeps the source's wording (no NFKC: quotes are checked against it later) and is shaped for the
document chunker: `# heading` lines, blocks separated by blank lines, PDF pages separated by a blank line.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from knowledge.extract.common import DocumentKind, ExtractedDocument, mb
from knowledge.extract.errors import DocumentReadError, too_many_chars

__all__ = ["SUPPORTED_EXTENSIONS", "DocumentReadError", "ExtractedDocument", "extract_document"]

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
            f"{name} is {mb(len(data))} MB; the limit is {mb(max_bytes)} MB. "
            "Split it, or compress its images, and upload it again.",
            name=name,
            reason="too_large",
        )
    if not data.strip():
        what = "is empty" if not data else "contains only whitespace"
        raise DocumentReadError(f"{name} {what}.", name=name, reason="no_text")
    # The format's module is imported only when a file of its kind arrives: pypdf and python-docx cost
    # every other command their start-up time.
    if kind == "pdf":
        from knowledge.extract.pdf import read_pdf

        document = read_pdf(name, data, max_pages=max_pages, max_chars=max_chars)
    elif kind == "docx":
        from knowledge.extract.word import read_docx

        document = read_docx(name, data, max_chars=max_chars)
    else:
        from knowledge.extract.text import read_plain

        document = read_plain(name, data, kind=kind, max_chars=max_chars)
    if len(document.text) > max_chars:
        raise too_many_chars(name, max_chars)
    return document
