"""Exceptions raised while loading or changing the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import KakehashiError

if TYPE_CHECKING:
    from knowledge.journal import Change


class KnowledgeError(KakehashiError):
    """The knowledge base cannot be loaded or changed as asked."""


class RecordError(KnowledgeError):
    """A record or manifest is invalid; the message names file, line, record and field."""

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        line: int | None = None,
        record_id: str | None = None,
        field: str | None = None,
        problems: list[tuple[str, int, str]] | None = None,
    ) -> None:
        self.reason = message
        self.path = path
        self.line = line
        self.record_id = record_id
        self.field = field
        self.problems = problems or []
        where = str(path) + (f":{line}" if line else "")
        what = ", ".join(
            part for part in (f"record {record_id}" if record_id else "", f"field {field}" if field else "") if part
        )
        super().__init__(f"{where}: {what + ': ' if what else ''}{message}")


class ConflictError(KnowledgeError):
    """Someone changed the record after the caller read it; nothing was written."""

    def __init__(self, message: str, *, change: Change | None = None) -> None:
        super().__init__(message)
        self.change = change


class UnknownRecordError(KnowledgeError):
    """No record, document or change has that id."""


class NothingToChangeError(KnowledgeError):
    """The change would leave every file as it is."""


class ReplaceNotConfirmedError(KnowledgeError):
    """An upload would replace the text of an existing document; staff must say that they mean it."""

    def __init__(self, message: str, *, doc_id: str, title: str) -> None:
        super().__init__(message)
        self.doc_id = doc_id
        self.title = title
