"""Hostile or careless files handed to `kakehashi kb add`: each is refused with the usual file:line error and
exit status 2, no traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.editor import Actor, KnowledgeEditor
from knowledge.errors import RecordError
from tests.conftest import kakehashi_env, make_small_knowledge_dir, run_kakehashi
from tests.kbfiles import program_yaml, tree_digest

STAFF = Actor(id="U0STAFF1", via="cli")
DEPTH = 5000  # far past Python's recursion limit as PyYAML composes nesting


@pytest.mark.parametrize(("name", "text", "line"), [
    ("deep.yaml", "id: x\nkind: program\nname_ja: " + "[" * DEPTH + "]" * DEPTH + "\n", 3),
    ("deep-list.yaml", program_yaml() + "---\n- id: y\n  kind: program\n  notes_ja: " + "{a: " * DEPTH + "\n",
     program_yaml().count("\n") + 4),
    ("deep.md", "---\nid: x\nkind: program\nstages:\n  - " + "[" * 1200 + "\n---\n本文\n", 5),
])
def test_deeply_nested_yaml_is_a_file_and_line_error_exit_2(tmp_path: Path, name: str, text: str,
                                                            line: int) -> None:
    knowledge = make_small_knowledge_dir(tmp_path / "knowledge")
    before = tree_digest(knowledge)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_kakehashi("kb", "add", str(path), env=kakehashi_env(
        KAKEHASHI_KNOWLEDGE_DIR=str(knowledge), KAKEHASHI_DATA_DIR=str(tmp_path / "data")), timeout=120)
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
