"""DeskStore on a real database: SQLite always, PostgreSQL when the suite has one (tests/db_fixtures.py)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import (
    ConsultationNotFound,
    DeskDatabaseUnavailableError,
    DeskStore,
    StoreError,
    new_answer_id,
    retried,
)
from tests.db_fixtures import database_url  # noqa: F401 - the fixture, by name


@pytest.fixture
def store(database_url: str) -> Iterator[DeskStore]:  # noqa: F811 - the imported fixture
    opened = DeskStore(url=database_url)
    yield opened
    opened.close()


def _answer(store: DeskStore, **changes: object) -> str:
    fields: dict[str, object] = {
        "surface": "mention",
        "question": "BINDSとは？",
        "answer": "生命科学・創薬研究支援基盤事業です [1]。",
        "language": "ja",
        "confident": True,
        "mode": "extractive",
        "citations": [{"n": 1, "id": "programs/amed-binds.yaml", "title": "BINDS 🧪"}],
        "user_id": "U1",
        "team_id": "T1",
        "channel_id": "C1",
        "thread_ts": "100.1",
    }
    fields.update(changes)
    return store.record_answer(**fields).id  # type: ignore[arg-type]


def test_answers_round_trip_with_japanese_text_and_citations(store: DeskStore) -> None:
    answer_id = _answer(store)
    row = store.get_answer(answer_id)
    assert row is not None
    assert (row.question, row.answer, row.language, row.confident) == (
        "BINDSとは？",
        "生命科学・創薬研究支援基盤事業です [1]。",
        "ja",
        True,
    )
    assert row.citations == [{"n": 1, "id": "programs/amed-binds.yaml", "title": "BINDS 🧪"}]
    assert row.created_at.tzinfo is None
    assert abs(row.created_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=1)
    assert store.get_answer("nope") is None


def test_an_answer_can_be_recorded_under_an_id_chosen_before_posting(store: DeskStore) -> None:
    chosen = new_answer_id()
    _answer(store, answer_id=chosen, channel_id="D9", message_ts="200.2", thread_ts="200.2")
    row = store.get_answer(chosen)
    assert row is not None and (row.channel_id, row.message_ts, row.thread_ts) == ("D9", "200.2", "200.2")
    with pytest.raises(StoreError):
        _answer(store, answer_id=chosen)  # ids are unique


def test_message_location_and_bot_threads(store: DeskStore) -> None:
    answer_id = _answer(store, thread_ts=None)
    assert not store.is_bot_thread("C1", "300.3")
    store.set_answer_message(answer_id, channel_id="C1", message_ts="300.4", thread_ts="300.3")
    assert store.is_bot_thread("C1", "300.3") and not store.is_bot_thread("C2", "300.3")
    assert store.get_answer(answer_id).message_ts == "300.4"  # type: ignore[union-attr]
    assert [a.id for a in store.answers()] == [answer_id]


def test_a_thread_is_the_bots_once_opened_before_any_answer_is_recorded(database_url: str) -> None:  # noqa: F811
    first, second = DeskStore(url=database_url), DeskStore(url=database_url)
    try:
        assert not second.is_bot_thread("C1", "400.1")
        first.open_thread("C1", "400.1")
        second.open_thread("C1", "400.1")  # again, from another process: no error, one row
        assert second.is_bot_thread("C1", "400.1") and not second.is_bot_thread("C1", "400.2")
        assert not second.is_bot_thread("C2", "400.1")
    finally:
        first.close()
        second.close()


def test_each_event_is_claimed_once_across_stores_sharing_the_database(database_url: str) -> None:  # noqa: F811
    first, second = DeskStore(url=database_url), DeskStore(url=database_url)
    try:
        assert first.claim_event("Ev1") is True
        assert second.claim_event("Ev1") is False  # another process sees the claim
        assert first.claim_event("Ev1") is False
        assert second.claim_event("Ev2") is True
    finally:
        first.close()
        second.close()


def test_concurrent_claims_of_one_event_have_one_winner(store: DeskStore) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        barrier.wait()
        results.append(store.claim_event("EvRACE"))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_feedback_keeps_the_rating_when_the_answer_is_unknown(store: DeskStore) -> None:
    answer_id = _answer(store)
    up = store.add_feedback(answer_id=answer_id, user_id="U2", rating="up")
    orphan = store.add_feedback(answer_id="deadbeef0000", user_id="U3", rating="down")
    store.explain_feedback(orphan.id, reasons=["outdated", "sources"], comment="令和8年度は？")
    with pytest.raises(ValueError, match="rating"):
        store.add_feedback(answer_id=answer_id, user_id="U2", rating="meh")
    rows = store.feedback()
    assert [(r.id, r.answer_id, r.rating) for r in rows] == [(up.id, answer_id, "up"), (orphan.id, None, "down")]
    assert (rows[1].reasons, rows[1].comment) == ("outdated,sources", "令和8年度は？")


def _consult(store: DeskStore, **changes: object) -> int:
    fields: dict[str, object] = {
        "asker_user_id": "U1",
        "topic": "治験の相談",
        "urgency": "high",
        "consent_to_share": True,
        "asker_channel_id": "C1",
        "asker_thread_ts": "100.1",
        "profile": {"stage": ["non_clinical"]},
    }
    fields.update(changes)
    return store.open_consultation(**fields).id  # type: ignore[arg-type]


def test_consultation_life_cycle_and_counts(store: DeskStore) -> None:
    answer_id = _answer(store)
    first = _consult(store, answer_id=answer_id)
    second = _consult(store, answer_id="unknown-id", asker_thread_ts="100.2")
    row = store.get_consultation(first)
    assert (row.status, row.answer_id, row.ref) == ("open", answer_id, f"K-{first:04d}")
    assert store.get_consultation(second).answer_id is None
    assert store.handed_off("C1", "100.1") and not store.handed_off("C1", "999.9")

    taken, changed = store.take(first, supporter="S1")
    assert changed and (taken.status, taken.assignee_user_id) == ("taken", "S1") and taken.taken_at
    again, changed = store.take(first, supporter="S2")
    assert not changed and again.assignee_user_id == "S1"  # the first supporter keeps it

    resolved, changed = store.resolve(second, supporter="S2")  # resolving an open one assigns it too
    assert changed and (resolved.status, resolved.assignee_user_id, resolved.resolved_by) == ("resolved", "S2", "S2")
    assert resolved.taken_at and resolved.resolved_at
    assert not store.resolve(second, supporter="S1")[1]
    assert not store.handed_off("C1", "100.2")  # resolved: the bot may answer in that thread again

    assert store.consultation_counts() == {"open": 0, "taken": 1, "resolved": 1, "total": 2}
    future = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
    assert store.consultation_counts(since=future)["total"] == 0
    assert [c.id for c in store.consultations(statuses=("open", "taken"))] == [first]
    store.set_card(first, channel_id="C0SUPPORT", ts="400.4")
    assert store.get_consultation(first).card_ts == "400.4"
    with pytest.raises(ConsultationNotFound):
        store.get_consultation(9999)
    with pytest.raises(ConsultationNotFound):
        store.resolve(9999, supporter="S1")


def test_two_supporters_taking_at_once_have_one_winner(store: DeskStore) -> None:
    consultation = _consult(store)
    outcomes: dict[str, bool] = {}
    barrier = threading.Barrier(4)

    def take(supporter: str) -> None:
        barrier.wait()
        outcomes[supporter] = store.take(consultation, supporter=supporter)[1]

    threads = [threading.Thread(target=take, args=(f"S{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [s for s, won in outcomes.items() if won]
    assert len(winners) == 1 and store.get_consultation(consultation).assignee_user_id == winners[0]


def _unreachable(database_url: str, tmp_path: Path) -> str:  # noqa: F811
    """A URL of the same kind whose database cannot be reached: a closed port, or a folder for a file."""
    if database_url.startswith("sqlite"):
        (tmp_path / "a-folder").mkdir()
        return f"sqlite:///{tmp_path / 'a-folder'}"
    import socket

    with socket.socket() as probe:  # a port nobody listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://kakehashi:s3cret-pw@127.0.0.1:{port}/kakehashi"


def test_an_unreachable_database_fails_to_open_with_the_password_hidden(
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = _unreachable(database_url, tmp_path)
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot open the desk database") as raised:
        DeskStore(url=url)
    assert time.monotonic() - started < 5
    assert "s3cret-pw" not in str(raised.value)


def test_an_outage_raises_store_unavailable_and_retries_are_bounded(
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = DeskStore(url=_unreachable(database_url, tmp_path), upgrade=False)
    calls = 0

    def read() -> object:
        nonlocal calls
        calls += 1
        return store.get_answer("x")

    started = time.monotonic()
    with pytest.raises(DeskDatabaseUnavailableError) as raised:
        retried(read, attempts=3, backoff_s=0.05)
    elapsed = time.monotonic() - started
    store.close()
    assert calls == 3 and 0.15 <= elapsed < 5
    assert "s3cret-pw" not in str(raised.value)
