"""The help desk's records: every answer given, feedback on it, and consultations handed to people.

One SQLAlchemy schema: an SQLite file by default, any SQLAlchemy URL in production (PostgreSQL
through psycopg 3: `postgresql+psycopg://`). The schema is versioned with Alembic (bot/migrations);
opening the store upgrades it. Each method is one short transaction and returns detached rows, so
callers on any thread can read them freely. A database that cannot be reached raises
DeskDatabaseUnavailableError, which callers may retry (`retried`). Consultations count as MEDISO reports
them: opened, taken, resolved, with times.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.exc import (
    DatabaseError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from core.errors import KakehashiError

CONSULTATION_STATUSES = ("open", "taken", "resolved")
# Seconds to wait for a PostgreSQL connection: the dedupe middleware asks the database before
# Slack's 3-second acknowledgement, so a server that does not answer must fail fast.
PG_CONNECT_TIMEOUT_S = 2

T = TypeVar("T")
log = logging.getLogger("kakehashi.store")


class StoreError(KakehashiError):
    """The desk database cannot be opened or written."""


class DeskDatabaseUnavailableError(StoreError):
    """The database did not answer (down, unreachable, locked, unreadable): worth retrying later."""


class StoreConflictError(StoreError):
    """A row with this key exists already."""


class ConsultationNotFound(StoreError):
    """No consultation has this id."""


def _rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE changed (SQLAlchemy answers one with a CursorResult)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _unavailable(exc: SQLAlchemyError) -> bool:
    # A bare DatabaseError is what SQLite raises for an unreadable file ("file is not a database").
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError) or (
        type(exc) is DatabaseError
    )


def retried(call: Callable[[], T], *, attempts: int = 3, backoff_s: float = 0.2) -> T:
    """`call()`, tried again after 0.2 s, 0.4 s, ... while the database is unavailable; the last
    DeskDatabaseUnavailableError is raised. Bounded: for work that can wait a second, never for the ack path."""
    for attempt in range(attempts):
        try:
            return call()
        except DeskDatabaseUnavailableError:
            if attempt == attempts - 1:
                raise
            time.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class AnswerRecord(Base):
    """One answer the bot gave, with where it was posted and the passages it cited."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    surface: Mapped[str] = mapped_column(String(16))  # mention | dm | assistant | thread | command | match
    team_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(4))
    confident: Mapped[bool] = mapped_column(Boolean)
    mode: Mapped[str] = mapped_column(String(16))
    citations_json: Mapped[str] = mapped_column(Text, default="[]")

    @property
    def citations(self) -> list[dict[str, Any]]:
        return json.loads(self.citations_json or "[]")


class FeedbackRecord(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    answer_id: Mapped[str | None] = mapped_column(ForeignKey("answers.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    reasons: Mapped[str] = mapped_column(Text, default="")  # comma-separated codes
    comment: Mapped[str] = mapped_column(Text, default="")


class Consultation(Base):
    """A hand-off to a human supporter, from the asker's thread to the supporters' channel."""

    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    asker_user_id: Mapped[str] = mapped_column(String(32))
    asker_channel_id: Mapped[str | None] = mapped_column(String(32))
    asker_thread_ts: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(4), default="ja")
    topic: Mapped[str] = mapped_column(Text)
    urgency: Mapped[str] = mapped_column(String(12))  # low | normal | high
    consent_to_share: Mapped[bool] = mapped_column(Boolean)
    question: Mapped[str] = mapped_column(Text, default="")
    thread_summary: Mapped[str] = mapped_column(Text, default="")
    profile_json: Mapped[str] = mapped_column(Text, default="")
    answer_id: Mapped[str | None] = mapped_column(ForeignKey("answers.id"))
    thread_permalink: Mapped[str | None] = mapped_column(Text)
    card_channel_id: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    assignee_user_id: Mapped[str | None] = mapped_column(String(32))
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(32))

    @property
    def ref(self) -> str:
        """The number the asker and supporters quote: K-0007."""
        return f"K-{self.id:04d}"


class ProcessedEvent(Base):
    """Events API deliveries already handled: Slack retries the same event_id."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)


class BotThread(Base):
    """A thread the bot answers in, written before the first answer is posted there."""

    __tablename__ = "bot_threads"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class IdempotencyKey(Base):
    """A state-changing request already handled (its Slack signature, a form's view): a replay within
    Slack's five-minute window, to any process sharing the database, changes nothing."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)


class OutboxMessage(Base):
    """An answer to deliver to Slack, kept until Slack has taken it. A process claims a row for a lease
    (claimed_by, claimed_until) before posting, so two processes never post the same row at once; a
    process that dies while posting leaves the lease to expire and another takes the row over."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    answer_id: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    payload_json: Mapped[str] = mapped_column(Text)
    last_error: Mapped[str] = mapped_column(Text, default="")
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.payload_json))


OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


class DeskStore:
    """The desk database. Opening it brings the schema up to date unless `upgrade=False`
    (`kakehashi db current` looks without changing anything)."""

    def __init__(self, *, url: str, echo: bool = False, upgrade: bool = True) -> None:
        from bot import migrations

        self.url = url
        try:
            parsed = make_url(url)
            kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
            if parsed.get_backend_name() == "sqlite":
                # Listeners run on a thread pool: share the file between threads, wait on locks.
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
                if (file := sqlite_file(parsed)) is not None:
                    file.parent.mkdir(parents=True, exist_ok=True)
            elif parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
            self.engine = create_engine(parsed, **kwargs)
            self.revision = migrations.upgrade(self.engine)[1] if upgrade else None
        except (SQLAlchemyError, migrations.MigrationError, ValueError, OSError) as exc:
            raise StoreError(f"cannot open the desk database {parsed_safe(url)}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._file = sqlite_file(make_url(url)) if upgrade else None
        self._inode = self._file_inode()
        self._recreate_lock = threading.Lock()

    def _file_inode(self) -> int | None:
        try:
            return self._file.stat().st_ino if self._file is not None else None
        except OSError:
            return None

    def _recreate_if_deleted(self) -> None:
        """An SQLite file deleted while serving (by hand, a clean-up job, a restored backup gone wrong):
        SQLite refuses every write to the unlinked file ("readonly database") until restart. A new file
        with the current schema is made instead, and the loss is logged. A file replaced under us (another
        process made it again) is reopened. One stat per transaction."""
        if self._file is None:
            return
        inode = self._file_inode()
        if inode is not None and inode == self._inode:
            return
        with self._recreate_lock:
            inode = self._file_inode()
            if inode is not None:
                if inode != self._inode:  # not the file our pooled connections have open
                    log.warning("the desk database file %s was replaced while in use; reconnecting", self._file)
                    self.engine.dispose()
                    self._inode = inode
                return
            from bot import migrations

            log.error(
                "the desk database file %s was deleted while in use; a new, empty one is created "
                "(answers, feedback and consultations recorded before are not in it)",
                self._file,
            )
            self.engine.dispose()
            try:
                self._file.parent.mkdir(parents=True, exist_ok=True)
                migrations.upgrade(self.engine)
                self._inode = self._file_inode()
            except (SQLAlchemyError, migrations.MigrationError, OSError) as exc:
                raise DeskDatabaseUnavailableError(
                    f"desk database {self._file} was deleted and cannot be made again: {exc}"
                ) from exc

    @contextmanager
    def _session(self) -> Iterator[Session]:
        self._recreate_if_deleted()
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except IntegrityError as exc:
                session.rollback()
                raise StoreConflictError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
            except SQLAlchemyError as exc:
                with contextlib.suppress(SQLAlchemyError):  # the connection may be gone; the original error matters
                    session.rollback()
                kind = DeskDatabaseUnavailableError if _unavailable(exc) else StoreError
                raise kind(
                    f"desk database {parsed_safe(self.url)}: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}"
                ) from exc

    def close(self) -> None:
        self.engine.dispose()

    # --- deliveries ---------------------------------------------------------------------------

    def claim_event(self, event_id: str, *, keep: dt.timedelta = dt.timedelta(days=2)) -> bool:
        """True the first time an event id is seen (in any process sharing this database)."""
        try:
            with self._session() as session:
                session.add(ProcessedEvent(event_id=event_id))
        except StoreConflictError:
            return False
        if secrets.randbelow(200) == 0:
            with self._session() as session:
                session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < _now() - keep))
        return True

    def claim_key(self, key: str, *, scope: str, keep: dt.timedelta = dt.timedelta(minutes=15)) -> bool:
        """True the first time `key` is claimed in `scope` (in any process sharing this database); keys
        older than `keep` are pruned now and then (Slack refuses a signature older than five minutes)."""
        try:
            with self._session() as session:
                session.add(IdempotencyKey(key=f"{scope}:{key}"[:128], scope=scope))
        except StoreConflictError:
            return False
        if secrets.randbelow(100) == 0:
            with self._session() as session:
                session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < _now() - keep))
        return True

    # --- the outbox ---------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        answer_id: str,
        payload: dict[str, Any],
        claimed_by: str | None = None,
        lease: dt.timedelta = dt.timedelta(seconds=90),
    ) -> OutboxMessage:
        """Keep an answer for delivery. With `claimed_by`, the caller holds it for a first attempt now
        (nobody else may post it until the lease ends); else it waits for a worker."""
        now = _now()
        row = OutboxMessage(
            answer_id=answer_id,
            payload_json=json.dumps(payload, ensure_ascii=False),
            status="sending" if claimed_by else "pending",
            attempts=1 if claimed_by else 0,
            next_attempt_at=now,
            claimed_by=claimed_by,
            claimed_until=now + lease if claimed_by else None,
            last_error="",
        )
        with self._session() as session:
            session.add(row)
        return row

    @staticmethod
    def _due(now: dt.datetime, *, expedite: bool) -> Any:
        """Pending and due (any pending row when `expedite`), or sending under a lease that ran out (the
        process posting it died or hung)."""
        pending = OutboxMessage.status == "pending"
        if not expedite:
            pending = pending & (OutboxMessage.next_attempt_at <= now)
        return pending | ((OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now))

    def due_deliveries(self, *, limit: int = 20, expedite: bool = False) -> list[int]:
        """Rows a worker may claim now, oldest first."""
        with self._session() as session:
            query = (
                select(OutboxMessage.id)
                .where(self._due(_now(), expedite=expedite))
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
            return list(session.scalars(query))

    def claim_delivery(
        self, delivery_id: int, *, by: str, lease: dt.timedelta = dt.timedelta(seconds=90), expedite: bool = False
    ) -> tuple[OutboxMessage, bool] | None:
        """Take a due row for one attempt: (the row, whether an earlier attempt may have reached Slack),
        or None when another process took it first or it is not due."""
        now = _now()
        due = self._due(now, expedite=expedite)
        with self._session() as session:
            before = session.get(OutboxMessage, delivery_id)
            if before is None:
                return None
            uncertain = before.status == "sending"
            changed = _rows_changed(
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == delivery_id, due)
                    .values(
                        status="sending", claimed_by=by, claimed_until=now + lease, attempts=OutboxMessage.attempts + 1
                    )
                )
            )
        if not changed:
            return None
        with self._session() as session:
            row = session.get(OutboxMessage, delivery_id)
        assert row is not None
        return row, uncertain

    def delivered(self, delivery_id: int, *, by: str, channel_id: str, message_ts: str) -> None:
        with self._session() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == delivery_id, OutboxMessage.claimed_by == by)
                .values(
                    status="sent",
                    channel_id=channel_id,
                    message_ts=message_ts,
                    sent_at=_now(),
                    claimed_until=None,
                    last_error="",
                )
            )

    def retry_delivery(self, delivery_id: int, *, by: str, at: dt.datetime, error: str) -> None:
        """Back to the queue, due at `at` (naive UTC): Slack was rate-limiting or failing."""
        with self._session() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == delivery_id, OutboxMessage.claimed_by == by)
                .values(
                    status="pending",
                    next_attempt_at=self._stored_time(at),
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:500],
                )
            )

    def fail_delivery(self, delivery_id: int, *, by: str, error: str) -> None:
        """Slack refused the message for good (or it waited too long): kept, with why, for staff."""
        with self._session() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == delivery_id, OutboxMessage.claimed_by == by)
                .values(status="failed", claimed_until=None, last_error=error[:500])
            )

    def deliveries(self, *, statuses: tuple[str, ...] = OUTBOX_STATUSES) -> list[OutboxMessage]:
        with self._session() as session:
            return list(
                session.scalars(
                    select(OutboxMessage).where(OutboxMessage.status.in_(statuses)).order_by(OutboxMessage.id)
                )
            )

    # --- answers ------------------------------------------------------------------------------

    def record_answer(
        self,
        *,
        surface: str,
        question: str,
        answer: str,
        language: str,
        confident: bool,
        mode: str,
        citations: list[dict[str, Any]],
        user_id: str | None = None,
        team_id: str | None = None,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        answer_id: str | None = None,
        message_ts: str | None = None,
    ) -> AnswerRecord:
        """Store an answer. `answer_id` (from new_answer_id) lets the answer be posted, with buttons
        that name it, before it is recorded."""
        row = AnswerRecord(
            id=answer_id or new_answer_id(),
            surface=surface,
            question=question,
            answer=answer,
            language=language,
            confident=confident,
            mode=mode,
            citations_json=json.dumps(citations, ensure_ascii=False),
            user_id=user_id,
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            message_ts=message_ts,
        )
        with self._session() as session:
            session.add(row)
        return row

    def set_answer_message(
        self, answer_id: str, *, channel_id: str, message_ts: str | None, thread_ts: str | None = None
    ) -> None:
        values: dict[str, Any] = {"channel_id": channel_id, "message_ts": message_ts}
        if thread_ts:
            values["thread_ts"] = thread_ts
        with self._session() as session:
            session.execute(update(AnswerRecord).where(AnswerRecord.id == answer_id).values(**values))

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        with self._session() as session:
            return session.get(AnswerRecord, answer_id)

    def answers(self) -> list[AnswerRecord]:
        with self._session() as session:
            return list(session.scalars(select(AnswerRecord).order_by(AnswerRecord.created_at)))

    def open_thread(self, channel_id: str, thread_ts: str) -> None:
        """Mark a thread as one the bot answers in, before its answer is out: a follow-up sent while
        the answer is being written is then a follow-up too. Marking it again changes nothing."""
        try:
            with self._session() as session:
                if session.get(BotThread, (channel_id, thread_ts)) is None:
                    session.add(BotThread(channel_id=channel_id, thread_ts=thread_ts))
        except StoreConflictError:
            pass  # another process (or listener) marked it between the look and the write

    def is_bot_thread(self, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot is answering or has answered in this thread, so follow-ups need no new mention."""
        with self._session() as session:
            found = session.scalar(
                select(BotThread.thread_ts)
                .where(BotThread.channel_id == channel_id, BotThread.thread_ts == thread_ts)
                .limit(1)
            )
            if found is None:  # answers recorded before threads were marked
                found = session.scalar(
                    select(AnswerRecord.id)
                    .where(AnswerRecord.channel_id == channel_id, AnswerRecord.thread_ts == thread_ts)
                    .limit(1)
                )
        return found is not None

    def handed_off(self, channel_id: str, thread_ts: str) -> bool:
        """Whether a person is (or will be) handling this thread: then the bot keeps quiet unless asked."""
        with self._session() as session:
            found = session.scalar(
                select(Consultation.id)
                .where(
                    Consultation.asker_channel_id == channel_id,
                    Consultation.asker_thread_ts == thread_ts,
                    Consultation.status.in_(("open", "taken")),
                )
                .limit(1)
            )
        return found is not None

    def consultation_of_thread(self, channel_id: str, thread_ts: str) -> Consultation | None:
        """The open or taken consultation handed off from the asker's thread (for relaying)."""
        with self._session() as session:
            return session.scalar(
                select(Consultation)
                .where(
                    Consultation.asker_channel_id == channel_id,
                    Consultation.asker_thread_ts == thread_ts,
                    Consultation.status.in_(("open", "taken")),
                )
                .order_by(Consultation.id.desc())
                .limit(1)
            )

    def consultation_of_card(self, channel_id: str, card_ts: str) -> Consultation | None:
        """The consultation whose card is the root of this thread in the supporters' channel."""
        with self._session() as session:
            return session.scalar(
                select(Consultation)
                .where(Consultation.card_channel_id == channel_id, Consultation.card_ts == card_ts)
                .limit(1)
            )

    # --- feedback -----------------------------------------------------------------------------

    def add_feedback(
        self,
        *,
        answer_id: str | None,
        user_id: str | None,
        rating: str,
        reasons: list[str] | None = None,
        comment: str = "",
    ) -> FeedbackRecord:
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be up or down, not {rating!r}")
        with self._session() as session:
            if answer_id and session.get(AnswerRecord, answer_id) is None:
                answer_id = None  # an answer from another database: keep the feedback, drop the link
            row = FeedbackRecord(
                answer_id=answer_id, user_id=user_id, rating=rating, reasons=",".join(reasons or []), comment=comment
            )
            session.add(row)
        return row

    def explain_feedback(
        self, feedback_id: int, *, reasons: list[str], comment: str, user_id: str | None = None
    ) -> bool:
        """The reasons a user gave for a 👎, added to the rating recorded at the click; with `user_id`, only
        to that user's own rating. False when no such rating was changed."""
        query = update(FeedbackRecord).where(FeedbackRecord.id == feedback_id)
        if user_id is not None:
            query = query.where(FeedbackRecord.user_id == user_id)
        with self._session() as session:
            return bool(_rows_changed(session.execute(query.values(reasons=",".join(reasons), comment=comment))))

    def feedback(self) -> list[FeedbackRecord]:
        with self._session() as session:
            return list(session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id)))

    # --- consultations ------------------------------------------------------------------------

    def open_consultation(
        self,
        *,
        asker_user_id: str,
        topic: str,
        urgency: str,
        consent_to_share: bool,
        question: str = "",
        thread_summary: str = "",
        profile: dict[str, Any] | None = None,
        answer_id: str | None = None,
        asker_channel_id: str | None = None,
        asker_thread_ts: str | None = None,
        team_id: str | None = None,
        language: str = "ja",
        thread_permalink: str | None = None,
    ) -> Consultation:
        with self._session() as session:
            if answer_id and session.get(AnswerRecord, answer_id) is None:
                answer_id = None
            row = Consultation(
                asker_user_id=asker_user_id,
                topic=topic,
                urgency=urgency,
                consent_to_share=consent_to_share,
                question=question,
                thread_summary=thread_summary,
                profile_json=json.dumps(profile, ensure_ascii=False) if profile else "",
                answer_id=answer_id,
                asker_channel_id=asker_channel_id,
                asker_thread_ts=asker_thread_ts,
                team_id=team_id,
                language=language,
                status="open",
                thread_permalink=thread_permalink,
            )
            session.add(row)
        return row

    def set_card(self, consultation_id: int, *, channel_id: str, ts: str) -> None:
        with self._session() as session:
            session.execute(
                update(Consultation)
                .where(Consultation.id == consultation_id)
                .values(card_channel_id=channel_id, card_ts=ts)
            )

    def get_consultation(self, consultation_id: int) -> Consultation:
        with self._session() as session:
            row = session.get(Consultation, consultation_id)
        if row is None:
            raise ConsultationNotFound(f"no consultation {consultation_id}")
        return row

    def take(self, consultation_id: int, *, supporter: str) -> tuple[Consultation, bool]:
        """Assign an open consultation; False when someone else was first (the row says who)."""
        with self._session() as session:
            changed = _rows_changed(
                session.execute(
                    update(Consultation)
                    .where(Consultation.id == consultation_id, Consultation.status == "open")
                    .values(status="taken", assignee_user_id=supporter, taken_at=_now())
                )
            )
        return self.get_consultation(consultation_id), bool(changed)

    def resolve(self, consultation_id: int, *, supporter: str) -> tuple[Consultation, bool]:
        with self._session() as session:
            row = session.get(Consultation, consultation_id)
            if row is None:
                raise ConsultationNotFound(f"no consultation {consultation_id}")
            changed = _rows_changed(
                session.execute(
                    update(Consultation)
                    .where(Consultation.id == consultation_id, Consultation.status != "resolved")
                    .values(
                        status="resolved",
                        resolved_at=_now(),
                        resolved_by=supporter,
                        assignee_user_id=func.coalesce(Consultation.assignee_user_id, supporter),
                        taken_at=func.coalesce(Consultation.taken_at, _now()),
                    )
                )
            )
        return self.get_consultation(consultation_id), bool(changed)

    def consultations(
        self, *, statuses: tuple[str, ...] = CONSULTATION_STATUSES, limit: int = 100
    ) -> list[Consultation]:
        with self._session() as session:
            query = (
                select(Consultation)
                .where(Consultation.status.in_(statuses))
                .order_by(Consultation.created_at.desc(), Consultation.id.desc())
                .limit(limit)
            )
            return list(session.scalars(query))

    def consultation_counts(self, *, since: dt.datetime | None = None) -> dict[str, int]:
        """Consultations by status (and in total) since a time, for the desk's monthly report."""
        with self._session() as session:
            query = select(Consultation.status, func.count()).group_by(Consultation.status)
            if since is not None:
                query = query.where(Consultation.created_at >= since)
            counts = {status: 0 for status in CONSULTATION_STATUSES}
            counts.update({status: n for status, n in session.execute(query)})
        counts["total"] = sum(counts[s] for s in CONSULTATION_STATUSES)
        return counts

    # --- gaps report (read-only) --------------------------------------------------------------

    @staticmethod
    def _stored_time(at: dt.datetime) -> dt.datetime:
        """Times are stored as naive UTC; an aware time is converted first."""
        return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at

    def low_confidence_answers(self, *, since: dt.datetime, until: dt.datetime | None = None) -> list[AnswerRecord]:
        """Answers given without confidence from `since` (up to `until`), oldest first."""
        with self._session() as session:
            query = select(AnswerRecord).where(
                AnswerRecord.confident.is_(False), AnswerRecord.created_at >= self._stored_time(since)
            )
            if until is not None:
                query = query.where(AnswerRecord.created_at < self._stored_time(until))
            return list(session.scalars(query.order_by(AnswerRecord.created_at)))

    def count_answers(self, *, mode: str, since: dt.datetime, until: dt.datetime | None = None) -> int:
        """How many answers of `mode` (e.g. "curated") were given from `since` (up to `until`)."""
        with self._session() as session:
            query = (
                select(func.count())
                .select_from(AnswerRecord)
                .where(AnswerRecord.mode == mode, AnswerRecord.created_at >= self._stored_time(since))
            )
            if until is not None:
                query = query.where(AnswerRecord.created_at < self._stored_time(until))
            return int(session.scalar(query) or 0)

    def down_feedback(
        self, *, since: dt.datetime, until: dt.datetime | None = None
    ) -> list[tuple[FeedbackRecord, AnswerRecord | None]]:
        """👎 ratings from `since` (up to `until`), oldest first, each with the answer it rated
        (None when the answer is not in this database)."""
        with self._session() as session:
            query = (
                select(FeedbackRecord, AnswerRecord)
                .outerjoin(AnswerRecord, FeedbackRecord.answer_id == AnswerRecord.id)
                .where(FeedbackRecord.rating == "down", FeedbackRecord.created_at >= self._stored_time(since))
            )
            if until is not None:
                query = query.where(FeedbackRecord.created_at < self._stored_time(until))
            return [
                (feedback, answer)
                for feedback, answer in session.execute(query.order_by(FeedbackRecord.created_at, FeedbackRecord.id))
            ]

    def consultations_since(self, *, since: dt.datetime, until: dt.datetime | None = None) -> list[Consultation]:
        """Consultations opened from `since` (up to `until`), oldest first, whatever their status."""
        with self._session() as session:
            query = select(Consultation).where(Consultation.created_at >= self._stored_time(since))
            if until is not None:
                query = query.where(Consultation.created_at < self._stored_time(until))
            return list(session.scalars(query.order_by(Consultation.created_at, Consultation.id)))


def new_answer_id() -> str:
    return secrets.token_hex(6)


def sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names (opening it creates it); None for in-memory SQLite and other databases."""
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def parsed_safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError, TypeError):  # an unparsable URL is shown as a placeholder, never as given
        return "<unparsable database URL>"
