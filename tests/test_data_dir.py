"""A deployment's knowledge lives outside the installed code: seeded from the shipped knowledge on first use,
said once, and no command writes into the repo or the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bot
import core
import knowledge
import prompts
import retrieval
import retrieval.engine
from bot.cli import main
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.errors import KnowledgeError
from knowledge.loader import load_knowledge
from knowledge.seeding import seed_knowledge_dir
from retrieval.embeddings import Embedder
from tests.conftest import REPO_ROOT
from tests.kbfiles import NEW_ID, program_yaml

SEEDED = "seeded it from the shipped knowledge"


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root (hidden ones too) with its modification time and size. Python's
    own bytecode cache is left out: the interpreter writes it on import, and pip precompiles it."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size if p.is_file() else 0)
        for p in root.rglob("*")
        if "__pycache__" not in p.parts
    }


def _git_status() -> str | None:
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an installed package): the package snapshot still holds
    # The test tools' own caches may appear while other tests run; kakehashi writes none of them.
    tools = ("__pycache__", ".hypothesis/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/")
    return "\n".join(line for line in result.stdout.splitlines() if not any(tool in line for tool in tools))


@pytest.fixture
def fresh_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin_embedder: Embedder) -> Path:
    """An empty KAKEHASHI_DATA_DIR and no KAKEHASHI_KNOWLEDGE_DIR, as on a machine that just installed
    kakehashi. Where files go is under test, not ranking: the stand-in embedder indexes the seed in seconds."""
    data = tmp_path / "data"
    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(data))
    monkeypatch.setattr(retrieval.engine, "make_embedder", lambda settings: standin_embedder)
    return data


def test_kb_add_on_a_fresh_install_seeds_once_and_writes_nothing_into_the_code(
    fresh_install: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module first imported during the command would otherwise get its bytecode cached beside it, and a
    # new __pycache__ folder changes its package folder's time.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    packages = [Path(str(module.__file__)).resolve().parent for module in (knowledge, bot, retrieval, prompts, core)]
    assert SEED_KNOWLEDGE_DIR.is_relative_to(packages[0])
    packages_before, git_before = [_files(p) for p in packages], _git_status()
    record = tmp_path / "hoshizora.yaml"
    record.write_text(program_yaml(), encoding="utf-8")

    assert main(["kb", "add", str(record)]) == 0
    first = capsys.readouterr()
    folder = fresh_install / "knowledge"
    seed = load_knowledge(SEED_KNOWLEDGE_DIR)
    assert first.err.count(SEEDED) == 1
    assert (
        f"knowledge folder {folder} did not exist: {SEEDED} ({len(seed.records)} records, "
        f"{len(seed.documents)} documents)"
    ) in first.err
    assert "change 1: add program" in first.out
    assert (folder / "programs" / f"{NEW_ID}.yaml").is_file() and (folder / "history" / "000001.json").is_file()
    assert len(load_knowledge(folder).records) == len(seed.records) + 1

    assert main(["kb", "history"]) == 0
    second = capsys.readouterr()
    assert SEEDED not in second.err and "add program" in second.out
    assert not list(fresh_install.glob(".knowledge-seeding-*"))  # no copy left beside the folder

    assert [_files(p) for p in packages] == packages_before, "a command wrote into the installed packages"
    assert _git_status() == git_before, "a command wrote into the repository"


def test_an_empty_default_folder_is_seeded_and_says_so(fresh_install: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fresh_install / "knowledge").mkdir(parents=True)
    assert main(["kb", "list", "--kind", "document"]) == 0
    captured = capsys.readouterr()
    assert f"knowledge folder {fresh_install / 'knowledge'} was empty: {SEEDED}" in captured.err
    assert sum(line.startswith("document ") for line in captured.out.splitlines()) == 5


def test_a_set_knowledge_dir_is_used_as_it_is_and_never_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAKEHASHI_KNOWLEDGE_DIR", str(tmp_path / "typo"))
    assert main(["kb", "list"]) == 2
    err = capsys.readouterr().err
    assert f"KAKEHASHI_KNOWLEDGE_DIR={tmp_path / 'typo'}: no such folder" in err and SEEDED not in err
    assert not (tmp_path / "typo").exists() and not (tmp_path / "data" / "knowledge").exists()

    own = tmp_path / "own"
    shutil.copytree(SEED_KNOWLEDGE_DIR / "documents", own / "documents")
    monkeypatch.setenv("KAKEHASHI_KNOWLEDGE_DIR", str(own))
    assert main(["kb", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert (
        SEEDED not in captured.err and '"kind": "document"' in captured.out and '"kind": "program"' not in captured.out
    )
    assert not (own / "programs").exists()


def test_a_failed_or_killed_seeding_leaves_no_folder(tmp_path: Path) -> None:
    broken = tmp_path / "seed"
    shutil.copytree(SEED_KNOWLEDGE_DIR, broken)
    (broken / "documents" / "gone.txt").symlink_to(tmp_path / "nowhere")  # unreadable mid-copy
    folder = tmp_path / "data" / "knowledge"
    with pytest.raises(KnowledgeError, match="cannot seed the knowledge folder"):
        seed_knowledge_dir(folder, seed=broken)
    assert not folder.exists() and os.listdir(folder.parent) == []

    # What a process killed mid-copy leaves: a hidden copy beside the folder, removed once it is old.
    killed = folder.parent / ".knowledge-seeding-4242-deadbeef"
    shutil.copytree(SEED_KNOWLEDGE_DIR / "programs", killed / "programs")
    os.utime(killed, (0, 0))
    seeded = seed_knowledge_dir(folder)
    assert seeded is not None and seeded.documents == 5 and not seeded.was_empty
    assert sorted(p.name for p in folder.iterdir()) == ["cdmos", "documents", "programs", "vcs"]
    assert [p.name for p in folder.parent.iterdir()] == ["knowledge"]


def test_a_folder_seeded_meanwhile_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes starting at once: the second's copy is thrown away, the first's stays."""
    folder = tmp_path / "knowledge"
    real_rename = os.rename

    def other_process_first(src: str, dst: str) -> None:
        (Path(dst) / "programs").mkdir(parents=True)
        (Path(dst) / "programs" / "theirs.yaml").write_text("# theirs\n", encoding="utf-8")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", other_process_first)
    assert seed_knowledge_dir(folder) is None
    assert [p.name for p in folder.rglob("*.yaml")] == ["theirs.yaml"]
    assert [p.name for p in tmp_path.iterdir()] == ["knowledge"]
