"""A running bot picks up staff changes without a restart, and never answers from a half-applied one."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from knowledge.journal import HEAD_FILE, HISTORY_DIR, Actor
from retrieval.answer import Answerer
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from retrieval.errors import RetrievalError
from retrieval.live import LiveKnowledge
from tests.kbfiles import NEW_ID, NEW_NAME, program_yaml

QUESTION = "ほしぞら創薬加速パートナーシップ事業の補助上限はいくら？"
PROFILE = "希少疾患の核酸医薬を開発する創業2年のスタートアップです。非臨床試験の資金を探しています。"
STAFF = Actor(id="U0STAFF1", via="slack")


@pytest.fixture
def live(small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder) -> LiveKnowledge:
    settings = Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "data")
    editor = KnowledgeEditor(root=small_knowledge_dir)
    index = open_index(settings, embedder=embedder)
    kb = editor.load()
    ingest(settings, index, kb=kb)
    return LiveKnowledge(
        settings=settings, editor=editor, index=index, answerer=Answerer(index=index, k=5), kb=kb, check_interval_s=0.0
    )


def test_a_change_is_answered_and_matched_without_a_restart(live: LiveKnowledge) -> None:
    assert all(c.title != NEW_NAME for c in live.ask(QUESTION).citations)
    before = {c.id for c in live.index.lexical.chunks()}
    live.editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)

    answer = live.ask(QUESTION)  # the next question notices the new generation
    assert answer.citations[0].title == NEW_NAME and "2億円" in answer.answer
    assert NEW_ID in [r.id for r in live.match(PROFILE).recommendations]
    # Only the new record was added to the index; nothing else was re-indexed.
    assert {c.id for c in live.index.lexical.chunks()} - before == {
        c.id for c in live.index.lexical.chunks() if c.origin == NEW_ID
    }

    live.editor.retire(NEW_ID, actor=STAFF)
    assert NEW_ID not in [r.id for r in live.match(PROFILE).recommendations]
    retired = live.ask(QUESTION)
    assert all(c.title != NEW_NAME for c in retired.citations)
    # Asked by name, the program is said to have ended rather than left to a weak-evidence answer.
    assert retired.answer.startswith(f"※「{NEW_NAME}」（事業）は、スタッフが終了・取り下げとして記録")
    assert "not recommend" not in retired.answer
    live.editor.restore(NEW_ID, actor=STAFF)
    assert "取り下げ" not in live.ask(QUESTION).answer


def test_questions_during_a_refresh_see_the_old_or_the_new_state_never_an_error(live: LiveKnowledge) -> None:
    failures: list[BaseException] = []
    titles: list[set[str]] = []
    stop = threading.Event()

    def ask_forever() -> None:
        while not stop.is_set():
            try:
                titles.append({c.title for c in live.ask(QUESTION).citations})
                live.match(PROFILE)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

    askers = [threading.Thread(target=ask_forever) for _ in range(3)]
    for thread in askers:
        thread.start()
    try:
        for round_number in range(3):
            summary = (
                f"第{round_number}版の説明。ほしぞら基金から非臨床試験費用を最大{round_number + 2}億円まで補助する。"
            )
            if round_number == 0:
                live.editor.add_records(program_yaml(summary=summary), name="new.yaml", actor=STAFF)
            else:
                data, base = live.editor.record_data(NEW_ID)
                live.editor.save_record({**data, "summary_ja": summary}, actor=STAFF, base=base)
            live.refresh()
    finally:
        stop.set()
        for thread in askers:
            thread.join(30)
    assert not failures, failures[:3]
    assert len(titles) > 3
    assert "最大4億円" in live.ask(QUESTION).answer  # the last version (round 2)


def test_a_broken_file_on_disk_keeps_the_last_good_knowledge_in_service(
    live: LiveKnowledge, caplog: pytest.LogCaptureFixture
) -> None:
    generation = live.generation
    # Someone edits a record by hand, outside the editor, and breaks it.
    broken = next((live.editor.root / "programs").glob("*.yaml"))
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    (live.editor.root / HISTORY_DIR).mkdir(exist_ok=True)
    (live.editor.root / HISTORY_DIR / HEAD_FILE).write_text("99 handedit\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="kakehashi.live"):
        answer = live.ask("MEDISOではどんな相談ができますか？")
    assert answer.citations
    assert live.generation == generation
    assert any("could not refresh" in r.getMessage() and broken.name in r.getMessage() for r in caplog.records)


def test_an_index_folder_removed_while_serving_is_rebuilt_and_changes_are_served_again(
    live: LiveKnowledge, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil
    import time

    shutil.rmtree(live.settings.storage.data_dir)  # a clean-up job, or a mistaken rm, under the running bot
    live.editor.add_records(program_yaml(), name="new.yaml", actor=STAFF)
    deadline = time.monotonic() + 60
    with caplog.at_level(logging.INFO, logger="kakehashi.live"):
        while True:
            try:
                answer = live.ask(QUESTION)
            except RetrievalError:  # the dense half is gone until the rebuild is done
                time.sleep(0.2)
                continue
            if answer.citations and answer.citations[0].title == NEW_NAME and "2億円" in answer.answer:
                break
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records][-5:]
            time.sleep(0.2)
    assert live.settings.storage.data_dir.is_dir() and any(live.settings.storage.data_dir.iterdir())
    assert any("index folder" in r.getMessage() and "rebuil" in r.getMessage() for r in caplog.records)
    assert NEW_ID in [r.id for r in live.match(PROFILE).recommendations]
