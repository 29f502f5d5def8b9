"""The knowledge editor on real files: validation before writing, history, revert, conflicts, crashes,
concurrent processes, export and import."""

from __future__ import annotations

import datetime as dt
import io
import json
import multiprocessing
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.dates import stated_date
from knowledge.editor import KnowledgeEditor
from knowledge.errors import ConflictError, KnowledgeError, NothingToChangeError, RecordError
from knowledge.freshness import fiscal_year, stale_records
from knowledge.journal import Actor
from knowledge.loader import load_knowledge
from knowledge.normalize import squash
from knowledge.recordfiles import patch_record
from knowledge.schema import Program
from tests.kbfiles import NEW_ID, NEW_NAME, QUOTE, program_yaml, tree_digest

STAFF = Actor(id="U0STAFF1", name="Sato", via="slack")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def editor(small_knowledge_dir: Path) -> KnowledgeEditor:
    return KnowledgeEditor(root=small_knowledge_dir)


def _program(root: Path, record_id: str) -> Program:
    record = load_knowledge(root).get(record_id)
    assert isinstance(record, Program), record
    return record


def test_a_new_record_is_written_recorded_and_loadable(editor: KnowledgeEditor) -> None:
    change = editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    assert (change.id, change.action, change.records) == (1, "add", (NEW_ID,))
    assert change.files[0].before is None and NEW_NAME in (change.files[0].after or "")
    kb = load_knowledge(editor.root)
    assert kb.get(NEW_ID).title == NEW_NAME
    assert editor.history(NEW_ID)[0].actor == STAFF
    # The file is the one staff wrote, comments and layout kept, for review in git.
    assert (editor.root / "programs" / f"{NEW_ID}.yaml").read_text(encoding="utf-8") == program_yaml()


def test_invalid_files_are_refused_with_file_line_and_field_and_nothing_changes(editor: KnowledgeEditor) -> None:
    before = tree_digest(editor.root)
    with pytest.raises(RecordError) as broken:
        editor.add_records("id: x\nkind: program\nname_ja: [unclosed\n", name="broken.yaml", actor=STAFF)
    assert "broken.yaml" in str(broken.value) and broken.value.line == 4
    with pytest.raises(RecordError) as missing:
        editor.add_records(program_yaml().replace("ministry: MHLW", "ministry: NOPE"), name="m.yaml", actor=STAFF)
    assert missing.value.field == "ministry" and missing.value.line == 6
    with pytest.raises(RecordError) as unsourced:
        editor.add_records(program_yaml(quote="この文はどの資料にも書かれていない。"), name="q.yaml", actor=STAFF)
    assert unsourced.value.field == "sources[0].quote"
    with pytest.raises(RecordError):
        editor.add_records("- just\n- a list\n", name="list.yaml", actor=STAFF)
    assert tree_digest(editor.root) == before
    assert editor.history() == []


def test_an_update_from_a_stale_copy_is_refused_and_names_the_later_change(editor: KnowledgeEditor) -> None:
    editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    _, base = editor.record_text(NEW_ID)
    data, _ = editor.record_data(NEW_ID)
    first = editor.save_record({**data, "summary_ja": "一人目の編集。"}, actor=STAFF, base=base)
    other = Actor(id="U0STAFF2", via="slack")
    with pytest.raises(ConflictError) as conflict:
        editor.save_record({**data, "summary_ja": "二人目の編集。"}, actor=other, base=base)
    assert conflict.value.change is not None and conflict.value.change.id == first.id
    assert "U0STAFF1" in str(conflict.value)
    assert _program(editor.root, NEW_ID).summary_ja == "一人目の編集。"
    with pytest.raises(ConflictError):
        editor.save_record(data, actor=other)  # no base: a new record, but the id is taken


def test_retire_restore_and_revert(editor: KnowledgeEditor) -> None:
    editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    retired = editor.retire(NEW_ID, actor=STAFF)
    assert load_knowledge(editor.root).get(NEW_ID).status == "retired"
    with pytest.raises(NothingToChangeError):
        editor.retire(NEW_ID, actor=STAFF)
    editor.restore(NEW_ID, actor=STAFF)
    assert load_knowledge(editor.root).get(NEW_ID).status == "active"
    # Reverting the retirement while the restore stands would silently undo the restore: refused.
    with pytest.raises(ConflictError, match="revert that change first"):
        editor.revert(retired.id, actor=STAFF)
    data, base = editor.record_data(NEW_ID)
    update = editor.save_record({**data, "summary_ja": "改訂後の説明。"}, actor=STAFF, base=base)
    reverted = editor.revert(update.id, actor=STAFF)
    assert reverted.reverts == update.id
    assert _program(editor.root, NEW_ID).summary_ja.startswith("希少疾患の核酸医薬")
    assert [c.action for c in editor.history(NEW_ID)] == ["revert", "update", "restore", "retire", "add"]


def test_a_markdown_record_file_uses_its_body_as_the_summary(editor: KnowledgeEditor) -> None:
    front = program_yaml().split("\n", 1)[1].replace("summary_ja: ", "# summary in the body\nx_unused: ")
    front = "\n".join(line for line in front.splitlines() if not line.startswith(("x_unused", "# summary")))
    change = editor.add_records(f"---\n{front}\n---\nマークダウン本文の説明。\n", name="new.md", actor=STAFF)
    assert change.records == (NEW_ID,)
    assert _program(editor.root, NEW_ID).summary_ja == "マークダウン本文の説明。"


def _crash_script(root: Path) -> str:
    return f"""
import os, sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from knowledge import files as module  # every knowledge write is its write_atomic
from knowledge.editor import KnowledgeEditor
from knowledge.journal import Actor
from tests.kbfiles import program_yaml
real_replace = os.replace
calls = []
def dying_replace(src, dst):
    real_replace(src, dst)
    calls.append(dst)
    if len(calls) == 2:  # the journal, then the first record file: the second record is never written
        os._exit(9)
module.os.replace = dying_replace
text = program_yaml() + "---\\n" + program_yaml(record_id="mhlw-second-one", name="二つ目の事業")
KnowledgeEditor(root=Path({str(root)!r})).add_records(text, name="two.yaml", actor=Actor(id="crash"))
"""


def test_a_crash_in_the_middle_of_a_change_leaves_the_old_state(editor: KnowledgeEditor) -> None:
    before = tree_digest(editor.root)
    result = subprocess.run(
        [sys.executable, "-c", _crash_script(editor.root)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 9, result.stderr
    assert (editor.root / "programs" / f"{NEW_ID}.yaml").exists()  # half of the change reached the disk
    kb = editor.load()  # the next reader rolls the half-change back before reading
    assert NEW_ID not in {r.id for r in kb.records}
    assert tree_digest(editor.root) == before
    assert editor.head() == 0


def _add_concurrently(root: str, record_id: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    KnowledgeEditor(root=Path(root)).add_records(
        program_yaml(record_id=record_id, name=f"{record_id} 事業"), name=f"{record_id}.yaml", actor=Actor(id=record_id)
    )


def test_two_processes_changing_at_once_both_land(editor: KnowledgeEditor) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    ids = ["mhlw-concurrent-a", "mhlw-concurrent-b"]
    workers = [context.Process(target=_add_concurrently, args=(str(editor.root), i, barrier)) for i in ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    kb = load_knowledge(editor.root)
    assert set(ids) <= {r.id for r in kb.records}
    assert sorted(c.id for c in editor.history()) == [1, 2]


def test_export_and_import_move_records_documents_and_history(
    editor: KnowledgeEditor, tmp_path: Path, small_knowledge_dir: Path
) -> None:
    editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    editor.retire(NEW_ID, actor=STAFF)
    archive = tmp_path / "kb.tar.gz"
    count = editor.export(archive)
    assert count >= 4
    target_root = tmp_path / "other" / "knowledge"
    target_root.mkdir(parents=True)
    (target_root / "documents").mkdir()
    (target_root / "documents" / "documents.yaml").write_text("[]\n", encoding="utf-8")
    target = KnowledgeEditor(root=target_root)
    generation = target.generation()
    kb = target.import_archive(archive)
    assert kb.get(NEW_ID).status == "retired"
    assert [c.action for c in target.history()] == ["retire", "add"]
    assert target.generation() != generation
    assert any(p.name.startswith(".replaced-") for p in target_root.iterdir())  # the old tree is kept


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_hostile_or_invalid_archive_changes_nothing(editor: KnowledgeEditor, tmp_path: Path) -> None:
    before = tree_digest(editor.root)
    evil = _tar(tmp_path / "evil.tar.gz", {"kakehashi-export.json": b"{}", "../outside.txt": b"x"})
    with pytest.raises(KnowledgeError, match="unexpected entries"):
        editor.import_archive(evil)
    broken = _tar(
        tmp_path / "broken.tar.gz",
        {
            "kakehashi-export.json": json.dumps({"format": 1}).encode(),
            "programs/bad.yaml": b"id: bad\nkind: program\n",
            "documents/documents.yaml": b"[]\n",
        },
    )
    with pytest.raises(RecordError, match=r"bad\.yaml"):
        editor.import_archive(broken)
    not_tar = tmp_path / "not.tar.gz"
    not_tar.write_bytes(b"plain text")
    with pytest.raises(KnowledgeError, match="cannot read the archive"):
        editor.import_archive(not_tar)
    assert tree_digest(editor.root) == before
    assert not (tmp_path / "outside.txt").exists()


def test_stale_records_by_age_rounds_and_budget_year(editor: KnowledgeEditor) -> None:
    editor.add_records(program_yaml(as_of="2026-04-01"), name="new.yaml", actor=STAFF)
    kb = load_knowledge(editor.root)
    assert fiscal_year(dt.date(2026, 3, 31)) == 2025 and fiscal_year(dt.date(2026, 4, 1)) == 2026
    fresh = {s.record.id for s in stale_records(kb, today=dt.date(2026, 5, 1), max_age_days=365)}
    assert NEW_ID not in fresh
    later = {s.record.id: s for s in stale_records(kb, today=dt.date(2027, 6, 1), max_age_days=365)}
    assert NEW_ID in later and "426" in later[NEW_ID].reasons[0]
    with_round = program_yaml().replace(
        "as_of:", "rounds:\n  - name: 第1回\n    closes: 2026-06-30\n    text: 第1回 締切 令和8年6月30日\nas_of:"
    )
    _, base = editor.record_text(NEW_ID)
    editor.add_records(with_round.replace("# ", f"# kakehashi-base: {base}\n# ", 1), name="r.yaml", actor=STAFF)
    kb = load_knowledge(editor.root)
    reasons = {s.record.id: s.reasons for s in stale_records(kb, today=dt.date(2026, 7, 15), max_age_days=365)}
    assert any("第1回" in r for r in reasons[NEW_ID])


def test_quote_constant_is_in_the_deck(small_knowledge_dir: Path) -> None:
    deck = load_knowledge(small_knowledge_dir).documents[0].text
    assert squash(QUOTE) in squash(deck)


def test_document_details_change_without_touching_its_text(editor: KnowledgeEditor) -> None:
    document = load_knowledge(editor.root).documents[0]
    change = editor.update_document_details(document.meta.id, actor=STAFF, title="新しい題名", description_ja="")
    assert [f.path for f in change.files] == ["documents/documents.yaml"]
    updated = load_knowledge(editor.root).document(document.meta.file)
    assert updated.meta.title == "新しい題名" and updated.meta.description_ja is None
    assert updated.text == document.text and updated.meta.date == document.meta.date
    with pytest.raises(NothingToChangeError):
        editor.update_document_details(document.meta.id, actor=STAFF, title="新しい題名")
    with pytest.raises(KnowledgeError, match="no document"):
        editor.update_document_details("no-such-doc", actor=STAFF, title="x")


def test_every_seed_record_file_round_trips_byte_for_byte_and_an_edit_touches_only_its_field() -> None:
    kb = load_knowledge(SEED_KNOWLEDGE_DIR)
    files = {p.stem: p for d in ("programs", "vcs", "cdmos") for p in (SEED_KNOWLEDGE_DIR / d).glob("*.yaml")}
    assert len(files) > 50
    for record in kb.records:
        text = files[record.id].read_text(encoding="utf-8")
        assert patch_record(text, record) == (text, []), record.id  # nothing changed: nothing rewritten
    record = kb.get("amed-aimgain")
    text = files["amed-aimgain"].read_text(encoding="utf-8")
    edited, changed = patch_record(text, record.model_copy(update={"aliases": ["AIMGAIN", "産学官共同型"]}))
    assert changed == ["aliases"]
    assert edited.replace("aliases: [AIMGAIN, 産学官共同型]\n", "aliases: [AIMGAIN]\n") == text  # flow list kept


def test_a_documents_date_is_the_one_it_states_on_its_cover(editor: KnowledgeEditor) -> None:
    cover = "創薬ベンチャー支援の取組\n令和７年６月１３日\n内閣府 健康・医療戦略推進事務局\n\n締切は令和7年9月30日。\n"
    change = editor.add_document(name="cover.txt", data=cover.encode(), actor=STAFF)
    [document] = [d for d in load_knowledge(editor.root).documents if d.meta.id == change.records[0]]
    assert document.meta.date == dt.date(2025, 6, 13)  # the cover's date, not the deadline, not today
    assert stated_date("2024年3月 経済産業省") == dt.date(2024, 3, 1)
    assert stated_date("R6.12.16 公表") == dt.date(2024, 12, 16)
    assert stated_date("日付のない資料") is None
    assert stated_date("みなと医療機器海外展開支援の申請締切は2026年7月31日です。") is None  # a deadline, not its date
