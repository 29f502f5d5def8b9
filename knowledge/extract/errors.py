"""The one error of extraction: what went wrong with an upload, for staff, with a machine-readable reason."""

from __future__ import annotations

from typing import Literal, get_args

from knowledge.errors import KnowledgeError

ReadFailure = Literal["too_large", "unsupported_type", "encrypted", "no_text", "corrupt", "zip_bomb", "encoding"]


class DocumentReadError(KnowledgeError):
    """An uploaded file cannot become a source document; the message names the file and what to do."""

    def __init__(self, message: str, *, name: str, reason: ReadFailure) -> None:
        if reason not in get_args(ReadFailure):
            raise ValueError(f"unknown DocumentReadError reason {reason!r}")
        self.name = name
        self.reason: ReadFailure = reason
        super().__init__(message)


def too_many_chars(name: str, max_chars: int) -> DocumentReadError:
    return DocumentReadError(
        f"{name} has more than {max_chars:,} characters of text; split it and upload the parts.",
        name=name,
        reason="too_large",
    )
