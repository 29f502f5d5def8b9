"""The vector store seam, with Chroma behind it (embedded or a server)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge.settings import Settings
from retrieval.chunking import Chunk
from retrieval.errors import IndexMismatchError, StoreUnavailableError

Where = dict[str, Any]


class VectorStore(ABC):
    @abstractmethod
    def ensure(self, signature: dict[str, str | int]) -> None:
        """Open or create the collection; refuse one built with another embedder."""

    @abstractmethod
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        """New metadata for passages already stored, keeping their vectors."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def ids(self) -> set[str]: ...

    @abstractmethod
    def query(self, vector: np.ndarray, *, limit: int, where: Where | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first."""

    @abstractmethod
    def reset(self) -> None:
        """Drop the collection, for a rebuild."""


class ChromaStore(VectorStore):
    """Chroma with our own embeddings: no embedding function is ever attached, so Chroma never
    falls back to its default model (which it would try to download)."""

    def __init__(self, *, client: Any, collection: str) -> None:
        self._client = client
        self._name = collection
        self._collection: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ChromaStore:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if settings.chroma_host:
                client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
                )
            else:
                settings.chroma_path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
        except Exception as exc:  # chromadb raises ValueError / httpx errors / its own
            where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else settings.chroma_path
            raise StoreUnavailableError(f"cannot open the Chroma store at {where}: {exc}") from exc
        return cls(client=client, collection=settings.chroma_collection)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (IndexMismatchError, StoreUnavailableError):
            raise
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma {what} failed: {exc}") from exc

    def ensure(self, signature: dict[str, str | int]) -> None:
        collection = self._call(
            "get_or_create_collection",
            self._client.get_or_create_collection,
            self._name,
            embedding_function=None,
            metadata=dict(signature),
            configuration={"hnsw": {"space": "cosine"}},
        )
        stored = {k: (collection.metadata or {}).get(k) for k in signature}
        if stored != dict(signature):
            raise IndexMismatchError(
                f"the Chroma collection {self._name!r} was built with {stored}, but settings ask for "
                f"{dict(signature)}; rebuild it with `kakehashi ingest --rebuild` (or choose another "
                "KAKEHASHI_CHROMA_COLLECTION)"
            )
        self._collection = collection

    @property
    def collection(self) -> Any:
        if self._collection is None:
            raise StoreUnavailableError("the vector store is not opened; call ensure() first")
        return self._collection

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        # Chroma caps batch sizes; stay well under it.
        for start in range(0, len(chunks), 1000):
            part = chunks[start : start + 1000]
            self._call(
                "upsert",
                self.collection.upsert,
                ids=[c.id for c in part],
                embeddings=vectors[start : start + len(part)],
                documents=[c.text for c in part],
                metadatas=[dict(c.metadata) for c in part],
            )

    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        for start in range(0, len(chunks), 1000):
            part = chunks[start : start + 1000]
            self._call("update", self.collection.update, ids=[c.id for c in part],
                       metadatas=[dict(c.metadata) for c in part])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            for start in range(0, len(ids), 1000):
                self._call("delete", self.collection.delete, ids=list(ids[start : start + 1000]))

    def ids(self) -> set[str]:
        result = self._call("get", self.collection.get, include=[])
        return set(result["ids"])

    def query(self, vector: np.ndarray, *, limit: int, where: Where | None = None) -> list[tuple[str, float]]:
        result = self._call(
            "query",
            self.collection.query,
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=limit,
            where=where or None,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def reset(self) -> None:
        try:
            self._client.delete_collection(self._name)
        except Exception as exc:  # NotFoundError when there is nothing to drop
            if "does not exist" not in str(exc) and type(exc).__name__ != "NotFoundError":
                raise StoreUnavailableError(f"Chroma delete_collection failed: {exc}") from exc
        self._collection = None
