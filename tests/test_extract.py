"""Extraction of staff uploads (knowledge/extract/) from real files built by tests/docfactory.py."""

from __future__ import annotations

import datetime as dt
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.errors import KnowledgeError
from knowledge.extract import DocumentReadError, ExtractedDocument, extract_document
from knowledge.frontmatter import split_front_matter
from tests import docfactory

JST = dt.timezone(dt.timedelta(hours=9))
SENTENCE_1 = (
    "創薬ベンチャーエコシステム強化事業は、認定VCが出資するスタートアップに対し、"
    "非臨床試験から第2相臨床試験までの実用化開発を支援します。"
)
SENTENCE_2 = "補助率は最大で3分の2です。"
SENTENCE_3 = "MEDISOは医療系ベンチャーの相談窓口であり、薬事、保険償還、知的財産、海外展開などの相談に無料で応じます。"
PAGE_2 = "第2ページには、令和8年度概算要求の概要を記載しています。"


def refused(name: str, data: bytes, **limits: int) -> DocumentReadError:
    with pytest.raises(DocumentReadError) as caught:
        extract_document(name, data, **limits)
    error = caught.value
    assert error.name == name
    assert name in str(error), "the message must name the file"
    assert "Traceback" not in str(error)
    return error


@pytest.fixture(scope="module")
def report_pdf() -> bytes:
    return docfactory.japanese_pdf(
        [SENTENCE_1 + SENTENCE_2, SENTENCE_3, docfactory.PAGE_BREAK, PAGE_2],
        "医療系ベンチャー支援の概要",
        heading="第1章 事業の概要",
        created=dt.datetime(2025, 6, 13, 9, 30, tzinfo=JST),
    )


# --- PDF ---------------------------------------------------------------------------------------------------


def test_japanese_pdf_gives_its_sentences_whole_with_title_date_and_pages(report_pdf: bytes) -> None:
    document = extract_document("report.pdf", report_pdf)

    assert document.kind == "pdf"
    assert document.pages == 2
    assert document.title == "医療系ベンチャー支援の概要"
    assert document.date == dt.date(2025, 6, 13)
    # reportlab wrapped the first paragraph over three lines; the sentences come back unbroken.
    for sentence in (SENTENCE_1, SENTENCE_2, SENTENCE_3, PAGE_2):
        assert sentence in document.text
    blocks = document.text.split("\n\n")
    assert blocks[0] == "# 第1章 事業の概要"  # drawn larger than the body text
    assert blocks[1] == SENTENCE_1 + SENTENCE_2  # paragraphs are blocks of their own
    assert blocks[2] == SENTENCE_3
    assert blocks[-1] == PAGE_2  # the second page starts a new block
    assert document.warnings == ()
    document.text.encode("utf-8")


def test_pdf_title_falls_back_to_the_first_line_when_metadata_is_a_placeholder() -> None:
    # reportlab, like many tools, writes /Title "untitled" when nobody sets one.
    data = docfactory.japanese_pdf([SENTENCE_3], None, heading="海外展開支援のご案内")
    assert b"untitled" in data

    document = extract_document("guide.pdf", data)

    assert document.title == "海外展開支援のご案内"


def test_pdf_bullets_and_short_lines_are_not_glued_to_the_next_line() -> None:
    lines = [
        "支援の対象",
        "・創薬ベンチャーエコシステム強化事業の公募は年2回",
        "・医療系ベンチャー・トータルサポート事業",
        "大学発ベンチャーと認定VCの出資先企業",
    ]
    document = extract_document("slides.pdf", docfactory.japanese_pdf(["\n".join(lines)], "s"))

    assert document.text == "\n".join(lines)


def test_pdf_with_some_image_only_pages_warns_which_ones(report_pdf: bytes) -> None:
    data = docfactory.merge_pdfs(docfactory.image_only_pdf(pages=1), report_pdf, docfactory.image_only_pdf(pages=1))

    document = extract_document("mixed.pdf", data)

    assert document.pages == 4
    assert SENTENCE_3 in document.text and PAGE_2 in document.text
    assert document.warnings == ("2 of 4 pages have no text (images only, or unreadable): 1, 4",)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_pdf_with_a_user_password_is_refused_as_encrypted(algorithm: str) -> None:
    error = refused("secret.pdf", docfactory.encrypted_pdf(algorithm=algorithm))

    assert error.reason == "encrypted"
    assert "password" in str(error)


def test_pdf_protected_only_by_an_owner_password_opens_with_the_empty_password() -> None:
    data = docfactory.encrypted_pdf([SENTENCE_3], user_password="", owner_password="no-copying")

    document = extract_document("protected.pdf", data)

    assert SENTENCE_3 in document.text
    assert document.title == "暗号化された資料"


@pytest.mark.parametrize("page_numbers", [False, True])
def test_scanned_pdf_is_refused_with_an_ocr_hint(page_numbers: bool) -> None:
    error = refused("scan.pdf", docfactory.image_only_pdf(pages=3, page_numbers=page_numbers))

    assert error.reason == "no_text"
    assert "scan" in str(error) and "OCR" in str(error)
    assert "3 pages" in str(error)


def test_text_file_named_pdf_is_refused_saying_what_it_starts_with() -> None:
    error = refused("report.pdf", "これはPDFではありません。".encode() + b" plain text")

    assert error.reason == "corrupt"
    assert str(error).startswith("report.pdf is not a PDF file (it starts with ")


def test_login_page_saved_as_pdf_is_recognised() -> None:
    error = refused("download.pdf", b"<!DOCTYPE html>\n<html><head><title>Login</title></head></html>")

    assert error.reason == "corrupt"
    assert "web page" in str(error)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + bytes(range(256)) * 8,
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF",
        b"%PDF-",
    ],
    ids=["garbage-after-header", "dangling-page-tree", "header-only"],
)
def test_broken_pdf_is_corrupt_not_a_crash(data: bytes) -> None:
    assert refused("broken.pdf", data).reason == "corrupt"


def test_truncated_pdf_is_corrupt(report_pdf: bytes) -> None:
    assert refused("cut.pdf", report_pdf[: len(report_pdf) // 2]).reason == "corrupt"


def test_pdf_page_and_character_limits(report_pdf: bytes) -> None:
    pages = refused("report.pdf", report_pdf, max_pages=1)
    assert pages.reason == "too_large" and "2 pages" in str(pages)

    chars = refused("report.pdf", report_pdf, max_chars=50)
    assert chars.reason == "too_large" and "50 characters" in str(chars)


# --- Word --------------------------------------------------------------------------------------------------

TABLE = [
    ["事業名", "所管", "補助率"],
    ["創薬ベンチャーエコシステム強化事業", "経済産業省", "3分の2以内"],
    ["医療系ベンチャー・トータルサポート事業", "厚生労働省", "（相談無料）"],
]


def test_japanese_docx_keeps_headings_paragraphs_lists_and_tables() -> None:
    data = docfactory.japanese_docx(
        heading="医療系ベンチャー振興の取組",
        paragraphs=[SENTENCE_1 + SENTENCE_2, SENTENCE_3],
        subheading="支援の対象",
        bullets=["シード期のスタートアップ", "認定VCの出資を受けた企業"],
        table=TABLE,
        title="医療系ベンチャー振興のための取組（令和7年度）",
        created=dt.datetime(2025, 4, 1, 10, 0),
    )

    document = extract_document("取組.docx", data)

    assert document.kind == "docx"
    assert document.pages is None
    assert document.title == "医療系ベンチャー振興のための取組（令和7年度）"
    assert document.date == dt.date(2025, 4, 1)
    blocks = document.text.split("\n\n")
    assert blocks[:4] == [
        "# 医療系ベンチャー振興の取組",
        SENTENCE_1 + SENTENCE_2,
        SENTENCE_3,
        "## 支援の対象",
    ]
    assert blocks[4] == "- シード期のスタートアップ\n- 認定VCの出資を受けた企業"
    assert blocks[5].split("\n") == [
        "| 事業名 | 所管 | 補助率 |",
        "| --- | --- | --- |",
        "| 創薬ベンチャーエコシステム強化事業 | 経済産業省 | 3分の2以内 |",
        "| 医療系ベンチャー・トータルサポート事業 | 厚生労働省 | （相談無料） |",
    ]


def test_docx_title_falls_back_to_the_first_heading() -> None:
    document = extract_document("a.docx", docfactory.japanese_docx(heading="公募要領", paragraphs=[SENTENCE_2]))

    assert document.title == "公募要領"


def _p(text: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{props}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def test_docx_reads_what_word_shows_and_skips_what_it_hides() -> None:
    text_box = (
        '<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><a:graphic>'
        "<a:graphicData><wps:wsp><wps:txbx><w:txbxContent>"
        + _p("テキストボックスの注記です。")
        + "</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing>"
        "</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>"
        + _p("テキストボックスの注記です。")
        + "</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"
    )
    body = (
        # A tracked insertion is shown; a tracked deletion is not.
        '<w:p><w:r><w:t>申請期限は</w:t></w:r><w:ins w:id="1" w:author="a"><w:r><w:t>6月30日</w:t></w:r></w:ins>'
        '<w:del w:id="2" w:author="a"><w:r><w:delText>5月31日</w:delText></w:r></w:del>'
        "<w:r><w:t>です。</w:t></w:r></w:p>"
        # Furigana: the base text counts, the reading above it does not.
        "<w:p><w:r><w:ruby><w:rubyPr/><w:rt><w:r><w:t>やっきほう</w:t></w:r></w:rt>"
        "<w:rubyBase><w:r><w:t>薬機法</w:t></w:r></w:rubyBase></w:ruby></w:r><w:r><w:t>の相談</w:t></w:r></w:p>"
        # A content control (e.g. a cover page block).
        "<w:sdt><w:sdtPr/><w:sdtContent>"
        + _p("表紙の文書名")
        + "</w:sdtContent></w:sdt>"
        + text_box
        +
        # A one-column table is a frame around text; merged and nested cells in a real table.
        "<w:tbl><w:tr><w:tc>"
        + _p("枠内の重要なお知らせ")
        + "</w:tc></w:tr></w:tbl>"
        '<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr>' + _p("結合された見出しセル") + "</w:tc></w:tr>"
        "<w:tr><w:tc>"
        + _p("左")
        + "</w:tc><w:tc><w:tbl><w:tr><w:tc>"
        + _p("入れ子A")
        + "</w:tc><w:tc>"
        + _p("入れ子B")
        + "</w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>"
    )

    text = extract_document("rich.docx", docfactory.docx_with_body(body)).text

    assert "申請期限は6月30日です。" in text
    assert "5月31日" not in text
    assert "薬機法の相談" in text and "やっきほう" not in text
    assert "表紙の文書名" in text
    assert text.count("テキストボックスの注記です。") == 1
    assert "\n\n枠内の重要なお知らせ\n\n" in text
    assert "| 結合された見出しセル |  |" in text
    assert "| 左 | 入れ子A 入れ子B |" in text


def test_docx_heading_styles_follow_based_on_chains() -> None:
    # Japanese Word saves "見出し 1" with the built-in name "heading 1"; a custom style based on it is a heading.
    import io

    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    custom = document.styles.add_style("章見出し", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = document.styles["Heading 2"]
    document.add_paragraph("第2章 支援メニュー", style="章見出し")
    document.add_paragraph("本文です。" * 3)
    out = io.BytesIO()
    document.save(out)

    assert extract_document("c.docx", out.getvalue()).text.startswith("## 第2章 支援メニュー\n\n本文です。")


def test_docx_zip_bomb_is_refused_before_anything_is_inflated() -> None:
    bomb = docfactory.docx_zip_bomb()  # 300 MB of XML in about 300 KB
    assert len(bomb) < 2 * 1024 * 1024

    tracemalloc.start()
    try:
        error = refused("bomb.docx", bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.reason == "zip_bomb"
    assert "MB" in str(error)
    assert peak < 20 * 1024 * 1024


def test_docx_with_one_absurdly_compressed_part_is_refused_even_under_the_total_limit() -> None:
    error = refused("ratio.docx", docfactory.docx_zip_bomb(uncompressed_mb=40))

    assert error.reason == "zip_bomb"
    assert "word/document.xml" in str(error) and "times larger" in str(error)


def test_docx_with_thousands_of_parts_is_refused() -> None:
    error = refused("many.docx", docfactory.docx_many_members(5000))

    assert error.reason == "zip_bomb" and "parts" in str(error)


def test_password_protected_docx_is_refused_as_encrypted() -> None:
    error = refused("社外秘.docx", docfactory.password_protected_docx())

    assert error.reason == "encrypted"
    assert "password" in str(error)


def test_files_that_are_not_word_documents_are_corrupt(report_pdf: bytes) -> None:
    import io
    import zipfile

    assert "not a Word .docx file" in str(refused("x.docx", report_pdf))
    assert refused("x.docx", report_pdf).reason == "corrupt"

    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    error = refused("book.docx", workbook.getvalue())
    assert error.reason == "corrupt" and "Excel workbook" in str(error)

    assert refused("cut.docx", b"PK\x03\x04" + b"\x00" * 200).reason == "corrupt"


def test_docx_with_only_an_image_has_no_text() -> None:
    import io

    import docx
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(picture, format="PNG")
    document = docx.Document()
    document.add_picture(io.BytesIO(picture.getvalue()))
    out = io.BytesIO()
    document.save(out)

    error = refused("scan.docx", out.getvalue())
    assert error.reason == "no_text" and "images" in str(error)


# --- text and Markdown -------------------------------------------------------------------------------------

MEMO = f"相談窓口のご案内\r\n\r\n{SENTENCE_3}\r\n{SENTENCE_2}\r\n"


@pytest.mark.parametrize("encoding", ["cp932", "euc_jp", "utf-8", "utf-8-sig", "utf-16"])
def test_japanese_text_files_decode_in_every_common_encoding(encoding: str) -> None:
    document = extract_document("memo.txt", MEMO.encode(encoding))

    assert document.kind == "text"
    assert document.text == f"相談窓口のご案内\n\n{SENTENCE_3}\n{SENTENCE_2}"
    assert document.title == "相談窓口のご案内"
    assert document.pages is None and document.date is None


def test_short_euc_jp_text_that_also_decodes_as_cp932_is_read_as_euc_jp() -> None:
    # These bytes are valid cp932 too, where they read as half-width katakana soup.
    data = "経済産業省 予算概要".encode("euc_jp")
    assert data.decode("cp932") == "ｷﾐｺﾑｻｺｶﾈｾﾊ ﾍｽｻｻｳｵﾍﾗ"

    assert extract_document("short.txt", data).text == "経済産業省 予算概要"


def test_text_keeps_wording_and_tabs_but_drops_control_characters() -> None:
    raw = "全角ＡＭＥＤと半角ｶﾀｶﾅ\t①\x00\x07そのまま\rＮＦＫＣしない\x0b終わり\ufeff"

    text = extract_document("raw.txt", raw.encode()).text

    assert text == "全角ＡＭＥＤと半角ｶﾀｶﾅ\t①そのまま\nＮＦＫＣしない\n終わり"


def test_undecodable_text_is_an_encoding_error() -> None:
    error = refused("latin.txt", "Café, résumé, naïve — déjà vu.".encode("cp1252"))

    assert error.reason == "encoding"
    assert "UTF-8" in str(error)


def test_binary_junk_named_txt_is_refused() -> None:
    assert refused("blob.txt", bytes(range(32)) * 40).reason == "encoding"
    png = refused("picture.txt", b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert png.reason == "corrupt" and "PNG image" in str(png)


def test_markdown_keeps_headings_as_blocks_and_reads_front_matter() -> None:
    markdown = (
        "---\ntitle: 支援施策まとめ\ndate: 2025-09-22\n---\n"
        "前書きです。\n# 概要\n本文の一行目。\n\n## 詳細 ##\n```sh\n# コメントは見出しではない\n```\n"
    )

    document = extract_document("notes.md", markdown.encode())

    assert document.kind == "markdown"
    assert document.title == "支援施策まとめ"
    assert document.date == dt.date(2025, 9, 22)
    assert document.text.split("\n\n") == [
        "前書きです。",
        "# 概要",
        "本文の一行目。",
        "## 詳細 ##",
        "```sh\n# コメントは見出しではない\n```",
    ]


def test_one_front_matter_reader_serves_records_and_documents() -> None:
    record = split_front_matter("---\nid: x-program\nkind: program\nsources:\n  - document: a.txt\n---\n本文\n")
    assert record is not None and record.fields()["kind"] == "program" and record.body == "本文\n"
    assert record.block.splitlines()[0] == "id: x-program" and record.first_line == 2
    # A document's block is metadata only if every line reads as such; else `---` was a horizontal rule.
    rule = split_front_matter("---\n段落です。\n---\n")
    assert rule is not None and not rule.is_metadata()
    assert split_front_matter("---\ntitle: 題\n...\n本文").is_metadata()  # type: ignore[union-attr]
    assert split_front_matter("本文\n---\ntitle: x\n---\n") is None
    assert split_front_matter("---\n" + "a: b\n" * 80 + "---\n", max_lines=60) is None
    assert extract_document("rule.md", "---\n段落です。\n---\n後。\n".encode()).text.startswith("---")


def test_markdown_title_is_the_top_heading_without_front_matter() -> None:
    document = extract_document("n.markdown", "前文\n\n## 小見出し\n\n# 大見出し\n".encode())

    assert document.title == "大見出し"


def test_markdown_setext_headings_become_hash_headings() -> None:
    markdown = "支援制度の一覧\n==========\n\n概要です。\n\n対象\n----\n本文です。\n\n---\n\n区切りの後。\n"

    document = extract_document("s.md", markdown.encode())

    assert document.title == "支援制度の一覧"
    assert document.text.split("\n\n") == [
        "# 支援制度の一覧",
        "概要です。",
        "## 対象",
        "本文です。",
        "---",
        "区切りの後。",
    ]


@pytest.mark.parametrize("name", ["blank.txt", "blank.md", "blank.pdf", "blank.docx"])
def test_empty_and_whitespace_only_uploads_have_no_text(name: str) -> None:
    assert refused(name, b"").reason == "no_text"
    assert refused(name, b" \r\n\t ").reason == "no_text"
    if name.endswith((".txt", ".md")):
        assert refused(name, "\u3000\n\u3000".encode()).reason == "no_text"


# --- everything ------------------------------------------------------------------------------------------


def test_oversized_upload_is_refused_before_parsing() -> None:
    # Garbage that would be "corrupt" if anything looked at it.
    error = refused("huge.pdf", b"x" * (21 * 1024 * 1024))

    assert error.reason == "too_large"
    assert "21 MB" in str(error) and "20 MB" in str(error)
    assert refused("small-limit.txt", b"a" * 2048, max_bytes=1024).reason == "too_large"
    assert refused("huge.xlsx", b"x" * (21 * 1024 * 1024)).reason == "unsupported_type"  # the more useful news


@pytest.mark.parametrize("name", ["old.doc", "sheet.xlsx", "slide.pptx", "photo.png", "bundle.zip", "README"])
def test_unsupported_types_list_the_supported_ones(name: str) -> None:
    error = refused(name, b"anything")

    assert error.reason == "unsupported_type"
    for extension in (".pdf", ".docx", ".md", ".txt"):
        assert extension in str(error)


def test_extension_case_and_folders_do_not_matter(report_pdf: bytes) -> None:
    assert extract_document("資料/REPORT.PDF", report_pdf).kind == "pdf"
    assert extract_document("C:\\Users\\staff\\memo.TXT", "メモ".encode()).text == "メモ"


def test_document_read_error_is_a_knowledge_error_with_a_known_reason() -> None:
    assert issubclass(DocumentReadError, KnowledgeError)
    with pytest.raises(ValueError):
        DocumentReadError("x", name="x", reason="oops")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_docx() -> bytes:
    return docfactory.japanese_docx(heading="見出し", paragraphs=[SENTENCE_2], table=TABLE[:2])


def _mangle(data: st.DataObject, original: bytes) -> bytes:
    mangled = bytearray(original)
    for _ in range(data.draw(st.integers(1, 12))):
        mangled[data.draw(st.integers(0, len(mangled) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del mangled[data.draw(st.integers(len(mangled) // 2, len(mangled))) :]
    return bytes(mangled)


def _rezip(docx: bytes, member: str, mangle: object) -> bytes:
    """The same .docx with one part replaced by `mangle(part)`, so the XML parsers see the damage
    (byte flips in the zip itself only ever reach the CRC check)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info.filename, mangle(content) if info.filename == member else content)  # type: ignore[operator]
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mangled_files_never_raise_anything_but_document_read_error(
    data: st.DataObject, report_pdf: bytes, small_docx: bytes
) -> None:
    target = data.draw(st.sampled_from(["pdf", "docx-zip", "docx-body", "docx-styles", "docx-core"]))
    if target == "pdf":
        name, mangled = "f.pdf", _mangle(data, report_pdf)
    elif target == "docx-zip":
        name, mangled = "f.docx", _mangle(data, small_docx)
    else:
        member = {"docx-body": "word/document.xml", "docx-styles": "word/styles.xml", "docx-core": "docProps/core.xml"}[
            target
        ]
        name, mangled = "f.docx", _rezip(small_docx, member, lambda part: _mangle(data, part))

    try:
        document = extract_document(name, mangled)
    except DocumentReadError as error:
        assert error.reason in {"corrupt", "no_text", "encrypted"}
    else:
        assert isinstance(document, ExtractedDocument)
        document.text.encode("utf-8")
