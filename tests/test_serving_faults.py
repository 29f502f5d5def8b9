"""Files removed from under a running bot: the desk database's SQLite file deleted while serving."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.store import DeskStore


def _answer(store: DeskStore, question: str) -> None:
    store.record_answer(
        surface="dm",
        question=question,
        answer="回答",
        language="ja",
        confident=True,
        mode="extractive",
        citations=[],
        user_id="U0ASKER",
        channel_id="D0ASKER",
    )


def test_a_desk_database_file_deleted_while_serving_is_made_again_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "desk.sqlite3"
    store = DeskStore(url=f"sqlite:///{path}")
    try:
        _answer(store, "最初の質問")
        assert store.claim_event("Ev1")
        path.unlink()  # the pool still holds connections to the unlinked file
        with caplog.at_level(logging.ERROR, logger="kakehashi.store"):
            _answer(store, "削除後の質問")
            assert store.claim_event("Ev2")
            store.open_consultation(asker_user_id="U0ASKER", topic="相談", urgency="normal", consent_to_share=False)
        assert path.exists()
        assert [a.question for a in store.answers()] == ["削除後の質問"]
        assert [r.getMessage() for r in caplog.records if "was deleted while in use" in r.getMessage()]
    finally:
        store.close()
    # A fresh process sees the same new file.
    again = DeskStore(url=f"sqlite:///{path}")
    try:
        assert [a.question for a in again.answers()] == ["削除後の質問"]
    finally:
        again.close()


def test_a_second_process_reconnects_to_the_file_another_made_again(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    first, second = DeskStore(url=f"sqlite:///{path}"), DeskStore(url=f"sqlite:///{path}")
    try:
        _answer(first, "最初の質問")
        assert len(second.answers()) == 1  # its pool now holds a connection to the file
        path.unlink()
        _answer(first, "削除後の質問")  # the first makes the file again
        _answer(second, "二つ目のプロセスから")  # the second must write to the new file, not the unlinked one
        assert sorted(a.question for a in first.answers()) == ["二つ目のプロセスから", "削除後の質問"]
    finally:
        first.close()
        second.close()
