"""A knowledge change survives a kill at any write: a real `kakehashi kb …` process is SIGKILLed just
before and just after each file replace or removal it makes in the knowledge folder (tests/killpoint.py),
for add, retire, restore, revert and document add. After the next editor has taken the lock, the change
is either whole and in the history (HEAD names it, `kb diff` shows it, it can be reverted) or absent
(every file as before, no history entry, its number free for the next change), and no temporary file is
left behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from knowledge.editor import KnowledgeEditor
from knowledge.journal import HEAD_FILE, HISTORY_DIR, JOURNAL_FILE, LOCK_FILE, Actor
from tests.conftest import REPO_ROOT, kakehashi_env, make_small_knowledge_dir
from tests.kbfiles import NEW_ID, program_yaml

STAFF = Actor(id="U0STAFF1", via="cli")
DOCUMENT_TEXT = "ほしぞら創薬加速パートナーシップ事業の公募要領（抜粋）\n補助上限は2億円。\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    action: str
    prepare: Callable[[KnowledgeEditor, Path], None]
    args: Callable[[Path], list[str]]


def _nothing(editor: KnowledgeEditor, inputs: Path) -> None:
    pass


def _added(editor: KnowledgeEditor, inputs: Path) -> None:
    editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)


def _retired(editor: KnowledgeEditor, inputs: Path) -> None:
    _added(editor, inputs)
    editor.retire(NEW_ID, actor=STAFF)


SCENARIOS = [
    Scenario("add", "add", _nothing, lambda inputs: ["kb", "add", str(inputs / "new.yaml")]),
    Scenario("retire", "retire", _added, lambda inputs: ["kb", "retire", NEW_ID]),
    Scenario("restore", "restore", _retired, lambda inputs: ["kb", "restore", NEW_ID]),
    Scenario("revert", "revert", _added, lambda inputs: ["kb", "revert", "1"]),
    Scenario(
        "document-add", "add-document", _nothing, lambda inputs: ["kb", "add", str(inputs / "hoshizora-koubo.txt")]
    ),
]


def _files(root: Path) -> dict[str, str]:
    """Records, documents and manifest (not the history, whose entries carry times)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and HISTORY_DIR not in p.relative_to(root).parts
        and p.name != LOCK_FILE
        and not p.name.endswith(".tmp")
    }


def _history_ids(root: Path) -> list[int]:
    return sorted(int(p.stem) for p in (root / HISTORY_DIR).glob("[0-9]*.json"))


def _temporaries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


class Killpoint:
    """`python -m tests.killpoint --serve`: each run a real `kakehashi kb …` process, forked from one that
    has imported the program once (a fresh interpreter for each of the ~50 runs cost ~35 s)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()
        self._runs = 0
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.killpoint", "--serve"],
            cwd=REPO_ROOT,
            env=kakehashi_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, args: list[str], *, env: dict[str, str], target: int, when: str, log: Path
    ) -> subprocess.CompletedProcess[str]:
        with self._lock:
            self._runs += 1
            out, err = self._folder / f"{self._runs}.out", self._folder / f"{self._runs}.err"
            job = {
                "target": target,
                "when": when,
                "log": str(log),
                "args": args,
                "env": env,
                "stdout": str(out),
                "stderr": str(err),
            }
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps(job) + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        assert answer, "the killpoint server died"
        return subprocess.CompletedProcess(
            args, json.loads(answer)["returncode"], out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")
        )

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


@pytest.fixture(scope="module")
def killpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Killpoint]:
    server = Killpoint(tmp_path_factory.mktemp("killpoint-output"))
    yield server
    server.close()


def _run(
    killpoint: Killpoint, root: Path, inputs: Path, args: list[str], *, target: int, when: str, log: Path, data: Path
) -> subprocess.CompletedProcess[str]:
    env = kakehashi_env(KAKEHASHI_KNOWLEDGE_DIR=str(root), KAKEHASHI_DATA_DIR=str(data))
    return killpoint.run(args, env=env, target=target, when=when, log=log)


def _check(
    scenario: Scenario, root: Path, before: dict[str, str], after: dict[str, str], start: int, where: str
) -> str:
    """Recover (the next editor to take the lock does), then: whole or absent. Returns which."""
    editor = KnowledgeEditor(root=root)
    editor.load()
    assert not (root / HISTORY_DIR / JOURNAL_FILE).exists(), where
    files, ids, head = _files(root), _history_ids(root), editor.head()
    if files == before:
        assert (ids, head) == (list(range(1, start + 1)), start), f"{where}: absent, yet history {ids} HEAD {head}"
        assert _temporaries(root) == [], f"{where}: temporary files left"
        return "absent"
    assert files == after, f"{where}: the files are neither the old nor the new state"
    assert (ids, head) == (list(range(1, start + 2)), start + 1), f"{where}: whole, yet history {ids} HEAD {head}"
    change = editor.get_change(start + 1)
    assert change.action == scenario.action, where
    for item in change.files:
        on_disk = (root / item.path).read_text(encoding="utf-8") if (root / item.path).is_file() else None
        assert on_disk == item.after, f"{where}: history entry {change.id} does not match {item.path}"
    assert _temporaries(root) == [], f"{where}: temporary files left"
    # Whole means undoable: the revert puts back exactly the state before the crashed change.
    editor.revert(change.id, actor=STAFF)
    assert _files(root) == before, where
    assert editor.head() == start + 2 and _history_ids(root) == list(range(1, start + 3)), where
    return "whole"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_kill_at_any_write_leaves_the_change_whole_or_absent(
    scenario: Scenario, tmp_path: Path, killpoint: Killpoint
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "new.yaml").write_text(program_yaml(), encoding="utf-8")
    (inputs / "hoshizora-koubo.txt").write_text(DOCUMENT_TEXT, encoding="utf-8")
    template = make_small_knowledge_dir(tmp_path / "template")
    scenario.prepare(KnowledgeEditor(root=template), inputs)
    start = KnowledgeEditor(root=template).head()
    before = _files(template)

    # The change run to its end: the writes it makes, and the state it leaves.
    full = tmp_path / "full"
    shutil.copytree(template, full)
    log = tmp_path / "full.log"
    finished = _run(
        killpoint, full, inputs, scenario.args(inputs), target=0, when="never", log=log, data=tmp_path / "data"
    )
    assert finished.returncode == 0, finished.stderr
    writes = log.read_text(encoding="utf-8").splitlines()
    after = _files(full)
    assert after != before and len(writes) >= 4, writes

    def killed_at(point: tuple[int, str]) -> tuple[str, str]:
        number, when = point
        root = tmp_path / f"kill-{number}-{when}"
        shutil.copytree(template, root)
        result = _run(
            killpoint,
            root,
            inputs,
            scenario.args(inputs),
            target=number,
            when=when,
            log=tmp_path / f"kill-{number}-{when}.log",
            data=tmp_path / f"data-{number}-{when}",
        )
        where = f"killed {when} write {writes[number - 1]}"
        if result.returncode != -9:
            return where, f"FAILED: not killed ({result.returncode}): {result.stderr[-2000:]}"
        try:
            return where, _check(scenario, root, before, after, start, where)
        except Exception as exc:  # noqa: BLE001 - every kill point is reported, not only the first that fails
            return where, f"FAILED: {type(exc).__name__}: {exc}"

    points = [(n, when) for n in range(1, len(writes) + 1) for when in ("before", "after")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(killed_at, points))
    report = "\n".join(f"  {where} -> {outcome}" for where, outcome in outcomes)
    print(f"{scenario.name}: {len(points)} kill points\n{report}")
    failed = [outcome for _, outcome in outcomes if outcome.startswith("FAILED")]
    assert not failed, f"{scenario.name}: {len(failed)} of {len(points)} kill points failed:\n{report}"
    # Killed before the journal is in place, nothing happened; killed after the journal is gone, it all did.
    assert outcomes[0][1] == "absent" and outcomes[-1][1] == "whole"


def test_a_history_entry_past_head_left_by_the_old_protocol_is_kept_not_overwritten(tmp_path: Path) -> None:
    """The old recovery dropped the journal of a change killed between its entry and HEAD: the entry and
    its files stayed, HEAD did not move, and the next change took the same number and overwrote it."""
    root = make_small_knowledge_dir(tmp_path / "knowledge")
    editor = KnowledgeEditor(root=root)
    first = editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    (root / HISTORY_DIR / HEAD_FILE).write_text("0 old\n", encoding="utf-8")
    retired = editor.retire(NEW_ID, actor=STAFF)
    assert retired.id == first.id + 1 and editor.head() == retired.id
    assert editor.get_change(first.id).action == "add"
