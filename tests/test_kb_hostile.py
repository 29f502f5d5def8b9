"""Hostile or careless files handed to `kakehashi kb add`: each is refused with a clear error (file and line
where there is one) and exit status 2, no traceback, and nothing written; an upload never replaces a
document unasked, and the same text again changes nothing. The command runs in this process
(tests/clirun.py) with the stand-in embedder: nothing here is indexed."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.editor import KnowledgeEditor
from knowledge.errors import NothingToChangeError, RecordError, ReplaceNotConfirmedError
from knowledge.journal import Actor
from retrieval.embeddings import Embedder
from tests.clirun import run_main
from tests.conftest import make_small_knowledge_dir
from tests.kbfiles import program_yaml, tree_digest

STAFF = Actor(id="U0STAFF1", via="cli")
DEPTH = 5000  # far past Python's recursion limit as PyYAML composes nesting


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("deep.yaml", "id: x\nkind: program\nname_ja: " + "[" * DEPTH + "]" * DEPTH + "\n", 3),
        (
            "deep-list.yaml",
            program_yaml() + "---\n- id: y\n  kind: program\n  notes_ja: " + "{a: " * DEPTH + "\n",
            program_yaml().count("\n") + 4,
        ),
        ("deep.md", "---\nid: x\nkind: program\nstages:\n  - " + "[" * 1200 + "\n---\n本文\n", 5),
    ],
)
def test_deeply_nested_yaml_is_a_file_and_line_error_exit_2(
    tmp_path: Path, name: str, text: str, line: int, standin_embedder: Embedder
) -> None:
    knowledge = make_small_knowledge_dir(tmp_path / "knowledge")
    before = tree_digest(knowledge)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_main(
        "kb",
        "add",
        str(path),
        env={"KAKEHASHI_KNOWLEDGE_DIR": str(knowledge), "KAKEHASHI_DATA_DIR": str(tmp_path / "data")},
        embedder=lambda settings: standin_embedder,
    )
    assert result.returncode == 2, result.stderr[-1500:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert f"{path}:{line}: invalid YAML: lists or mappings nested more than" in result.stderr, result.stderr
    assert tree_digest(knowledge) == before


def test_a_deeply_nested_manifest_names_the_manifest(tmp_path: Path) -> None:
    knowledge = make_small_knowledge_dir(tmp_path / "knowledge")
    manifest = knowledge / "documents" / "documents.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "- " + "[" * DEPTH + "\n", encoding="utf-8")
    with pytest.raises(RecordError) as refused:
        KnowledgeEditor(root=knowledge).load()
    assert refused.value.path == manifest and refused.value.line and "nested more than" in str(refused.value)


KOUBO = "ほしぞら創薬加速パートナーシップ事業の公募要領（抜粋）\n補助上限は2億円。\n"


def test_an_upload_named_like_an_uncited_document_is_not_replaced_without_confirmation(
    tmp_path: Path, standin_embedder: Embedder
) -> None:
    knowledge = make_small_knowledge_dir(tmp_path / "knowledge")
    editor = KnowledgeEditor(root=knowledge)
    added = editor.add_document(name="hoshizora-koubo.txt", data=KOUBO.encode(), actor=STAFF)
    before = tree_digest(knowledge)
    other = "まったく別の資料。みなと医療機器海外展開支援の申請締切は2026年7月31日。\n"
    with pytest.raises(ReplaceNotConfirmedError) as asked:
        editor.add_document(name="Hoshizora Koubo.md", data=other.encode(), actor=STAFF)
    assert asked.value.doc_id == "hoshizora-koubo" and "--id hoshizora-koubo" in str(asked.value)
    assert tree_digest(knowledge) == before
    # From the command line, the same: exit 2, the way to confirm named, nothing written.
    upload = tmp_path / "hoshizora-koubo.txt"
    upload.write_text(other, encoding="utf-8")
    env = {"KAKEHASHI_KNOWLEDGE_DIR": str(knowledge), "KAKEHASHI_DATA_DIR": str(tmp_path / "data")}
    refused = run_main("kb", "add", str(upload), env=env, embedder=lambda settings: standin_embedder)
    assert refused.returncode == 2 and "--id hoshizora-koubo" in refused.stderr, refused.stderr
    assert tree_digest(knowledge) == before
    # Naming the id is the confirmation.
    replaced = editor.add_document(
        name="hoshizora-koubo.txt", data=other.encode(), actor=STAFF, doc_id="hoshizora-koubo"
    )
    assert (replaced.action, replaced.id) == ("update-document", added.id + 1)


def test_a_reupload_of_identical_text_changes_nothing(tmp_path: Path) -> None:
    knowledge = make_small_knowledge_dir(tmp_path / "knowledge")
    editor = KnowledgeEditor(root=knowledge)
    editor.add_document(name="hoshizora-koubo.txt", data=KOUBO.encode(), actor=STAFF)
    before = tree_digest(knowledge)
    # Another staff member uploads the same file, and the same text under another name.
    with pytest.raises(NothingToChangeError) as same:
        editor.add_document(name="hoshizora-koubo.txt", data=KOUBO.encode(), actor=Actor(id="U0STAFF2"))
    assert "hoshizora-koubo" in str(same.value)
    with pytest.raises(NothingToChangeError):
        editor.add_document(name="koubo-copy.txt", data=KOUBO.encode(), actor=STAFF)
    assert tree_digest(knowledge) == before and editor.head() == 1
