"""Staff keep the knowledge current from the command line, end to end: the real `kakehashi` program on a
copy of the knowledge files, with the real embedder, index and answerer after each change. The commands run
in this process (tests/clirun.py); one runs as a real `kakehashi` process, the kb group's smoke test."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from retrieval.embeddings import Embedder
from tests.clirun import CliResult, real_model, run_main
from tests.conftest import kakehashi_env, make_small_knowledge_dir, run_kakehashi
from tests.docfactory import (
    docx_zip_bomb,
    encrypted_pdf,
    image_only_pdf,
    japanese_docx,
    japanese_pdf,
    merge_pdfs,
)
from tests.kbfiles import NEW_ID, NEW_NAME, program_yaml, tree_digest

QUESTION = "ほしぞら創薬加速パートナーシップ事業の補助上限はいくら？"
PROFILE = "希少疾患の核酸医薬を開発する創業2年のスタートアップです。非臨床試験の資金を探しています。"

pytestmark = pytest.mark.slow


class Kakehashi:
    def __init__(self, knowledge: Path, data: Path, embedder: Embedder) -> None:
        self.knowledge = knowledge
        self.settings = {
            "KAKEHASHI_KNOWLEDGE_DIR": str(knowledge),
            "KAKEHASHI_DATA_DIR": str(data),
            "KAKEHASHI_KB_MAX_UPLOAD_MB": "2",
        }
        self.embedder = embedder

    def __call__(self, *args: str, ok: bool = True, process: bool = False) -> CliResult:
        """`kakehashi ARGS`, in this process unless `process`."""
        if process:
            done = run_kakehashi(*args, env=kakehashi_env(**self.settings), timeout=600)
            result = CliResult(returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)
        else:
            result = run_main(*args, env=self.settings, embedder=real_model(self.embedder))
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def ask(self, question: str) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self("ask", "--json", question).stdout)
        return answer

    def match_ids(self, profile: str) -> list[str]:
        return [r["id"] for r in json.loads(self("match", "--json", profile).stdout)["recommendations"]]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Kakehashi:
    root = tmp_path_factory.mktemp("kb-cli")
    kakehashi = Kakehashi(make_small_knowledge_dir(root / "knowledge"), root / "data", embedder)
    kakehashi("ingest")
    return kakehashi


def test_add_answer_match_retire_update_revert(cli: Kakehashi, tmp_path: Path) -> None:
    record = tmp_path / "hoshizora.yaml"
    record.write_text(program_yaml(), encoding="utf-8")
    added = cli("kb", "add", str(record))
    assert "change 1: add program" in added.stdout and "embedded 1 passages" in added.stdout

    answer = cli.ask(QUESTION)
    assert answer["citations"][0]["title"] == NEW_NAME
    assert "2億円" in answer["answer"]
    assert NEW_ID in cli.match_ids(PROFILE)

    assert "change 2: retire" in cli("kb", "retire", NEW_ID).stdout
    assert NEW_ID not in cli.match_ids(PROFILE)
    retired = cli.ask(QUESTION)
    assert all(c["title"] != NEW_NAME for c in retired["citations"])
    assert f"「{NEW_NAME}」（事業）は、スタッフが終了・取り下げとして記録" in retired["answer"]
    assert "[retired]" in cli("kb", "list", "--kind", "program").stdout
    cli("kb", "restore", NEW_ID)

    shown = cli("kb", "show", NEW_ID).stdout
    assert shown.startswith("# kakehashi-base: ")
    record.write_text(shown.replace("最大2億円", "最大5億円"), encoding="utf-8")
    update = cli("kb", "add", str(record))
    assert "change 4: update program" in update.stdout and "summary_ja" in update.stdout
    assert "5億円" in cli.ask(QUESTION)["answer"]

    # The same printed copy again: the record changed since, so the second save is refused, naming the change.
    stale = cli("kb", "add", str(record), ok=False)
    assert stale.returncode == 2 and "change 4" in stale.stderr

    cli("kb", "revert", "4")
    after_revert = cli.ask(QUESTION)["answer"]
    assert "2億円" in after_revert and "5億円" not in after_revert
    history = cli("kb", "history", NEW_ID).stdout.splitlines()
    assert [line.split()[5] for line in history] == ["revert", "update", "restore", "retire", "add"]
    diff = cli("kb", "diff", "4").stdout
    assert (
        "-summary_ja: 希少疾患の核酸医薬に取り組む創業3年以内のスタートアップに、ほしぞら基金から非臨床試験費用を最大2億円"
        in diff
    )


def test_documents_from_pdf_and_docx_are_answerable(cli: Kakehashi, tmp_path: Path) -> None:
    pdf = tmp_path / "きらめき再生医療支援.pdf"
    text_page = japanese_pdf(
        [
            "きらめき再生医療支援プログラムは、iPS細胞由来製品の治験製造を行うベンチャーに、"
            "GMP製造施設の利用料の3分の2を助成する。申請締切は令和9年1月15日。"
        ],
        title="きらめき再生医療支援プログラム 公募要領",
    )
    pdf.write_bytes(merge_pdfs(text_page, image_only_pdf(pages=1)))  # and a scanned page
    added = cli("kb", "add", str(pdf), "--ministry", "MHLW", "--id", "kirameki-saisei")
    assert "add-document kirameki-saisei" in added.stdout
    warning = "warning: 1 of 2 pages have no text (images only, or unreadable): 2"
    assert warning in added.stdout and warning in cli("kb", "history", "kirameki-saisei").stdout
    answer = cli.ask("きらめき再生医療支援プログラムの申請締切はいつ？")
    assert "令和9年1月15日" in answer["answer"]
    assert "きらめき再生医療支援プログラム 公募要領" in cli("kb", "list", "--kind", "document").stdout

    docx = tmp_path / "sakura.docx"
    docx.write_bytes(
        japanese_docx(
            heading="さくら医療機器実証事業",
            paragraphs=[
                "さくら医療機器実証事業では、医療機器スタートアップが病院で行う実証研究の費用を一件あたり三千万円まで支援する。"
            ],
            table=[["区分", "上限"], ["実証研究", "三千万円"]],
        )
    )
    cli("kb", "add", str(docx))
    assert "三千万円" in cli.ask("さくら医療機器実証事業は一件いくらまで支援しますか")["answer"]


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("broken.yaml", lambda: b"id: x\nkind: program\nname_ja: [unclosed\n", "broken.yaml:4"),
        ("fake.pdf", lambda: "これはPDFではありません".encode(), "not a PDF"),
        ("locked.pdf", lambda: encrypted_pdf(), "password"),
        ("scan.pdf", lambda: image_only_pdf(), "OCR"),
        ("bomb.docx", lambda: docx_zip_bomb(), "bomb"),
        ("huge.txt", lambda: "あ".encode() * (3 * 1024 * 1024 // 3 + 10), "MB"),
        ("sheet.xlsx", lambda: b"PK\x03\x04", "PDF"),
    ],
)
def test_invalid_and_hostile_files_are_refused_with_nothing_changed(
    cli: Kakehashi, tmp_path: Path, name: str, make: object, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make())  # type: ignore[operator]
    before = tree_digest(cli.knowledge)
    result = cli("kb", "add", str(path), ok=False)
    assert result.returncode == 2
    assert expected.lower() in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(cli.knowledge) == before


def test_stale_and_usage_errors(cli: Kakehashi) -> None:
    stale = cli("kb", "stale", "--days", "30", "--json", process=True).stdout.splitlines()  # a real process
    assert stale and all(json.loads(line)["reasons"] for line in stale)
    unknown = cli("kb", "retire", "no-such-record", ok=False)
    assert unknown.returncode == 2 and "no-such-record" in unknown.stderr
    missing = cli("kb", "revert", "999", ok=False)
    assert missing.returncode == 2 and "no change 999" in missing.stderr


def test_a_curated_answer_added_with_kb_add_answers_paraphrases_until_retired(cli: Kakehashi, tmp_path: Path) -> None:
    from tests.kbfiles import ANSWER_ID, ANSWER_TEXT_EN, ANSWER_TEXT_JA, answer_yaml

    path = tmp_path / "mediso-free.yaml"
    path.write_text(answer_yaml(as_of=dt.date.today().isoformat()), encoding="utf-8")
    assert f"add answer {ANSWER_ID}" in cli("kb", "add", str(path)).stdout
    assert ANSWER_ID in cli("kb", "list", "--kind", "answer").stdout

    ja = cli.ask("MEDISOに相談するのにお金は必要？")
    assert ja["intent"] == "curated" and ja["confident"] and ja["answer"].startswith(ANSWER_TEXT_JA)
    assert "佐藤 花子さん" in ja["answer"] and ja["cited"]
    en = cli.ask("Does it cost anything to consult MEDISO?")
    assert en["intent"] == "curated" and en["answer"].startswith(ANSWER_TEXT_EN)
    unrelated = cli.ask("MEDISOの所在地はどこですか？")
    assert unrelated["intent"] != "curated" and ANSWER_TEXT_JA not in unrelated["answer"]

    cli("kb", "retire", ANSWER_ID)
    assert cli.ask("MEDISOに相談するのにお金は必要？")["intent"] != "curated"
    assert "[retired]" in cli("kb", "list", "--kind", "answer").stdout
    shown = cli("kb", "show", ANSWER_ID).stdout
    assert shown.startswith("# kakehashi-base: ") and "status: retired" in shown
    history = cli("kb", "history", ANSWER_ID).stdout.splitlines()
    assert [line.split()[5] for line in history] == ["retire", "add"]

    # One that shows a seed file name, or was checked long ago, is saved but never given: staff are told.
    leaking = tmp_path / "leaking.yaml"
    leaking.write_text(
        answer_yaml(
            answer_id="mediso-leak", as_of="2020-01-01", answer_ja="無料です（001_e20f596e76c29b16.txt による）。"
        ),
        encoding="utf-8",
    )
    warned = cli("kb", "add", str(leaking)).stdout
    assert "mediso-leak will not be given: it shows what founders must not see (001_e20f596e76c29b16.txt)" in warned
    assert "as_of 2020-01-01 is over 365 days ago" in warned
    assert cli.ask("MEDISOに相談するのにお金は必要？")["intent"] != "curated"
