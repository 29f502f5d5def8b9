"""Exceptions raised by retrieval, ingestion and answering."""

from __future__ import annotations

from core.errors import KakehashiError


class RetrievalError(KakehashiError):
    """Search or answering cannot proceed."""


class EmbeddingError(RetrievalError):
    """The embedding model cannot be loaded or run."""


class IndexMismatchError(RetrievalError):
    """The stored index was built with another embedding model or dimension."""


class VectorStoreUnavailableError(RetrievalError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class LLMError(RetrievalError):
    """The configured chat model failed, timed out or answered with nothing usable."""


class VocabularyError(RetrievalError):
    """A vocabulary file (question words, profile words, the relevance floor) is missing or malformed."""
