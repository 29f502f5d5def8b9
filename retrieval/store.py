"""The vector store seam, with Chroma behind it (embedded or a server)."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from core.settings import Settings
from retrieval.chunking import Chunk
from retrieval.errors import IndexMismatchError, VectorStoreUnavailableError

if TYPE_CHECKING:  # chromadb is imported only where a store is opened (it is slow to import)
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Embedding, GetResult, QueryResult
    from chromadb.config import Settings as ChromaSettings

Where = dict[str, Any]
T = TypeVar("T")
S = TypeVar("S")
_BATCH = 1000
log = logging.getLogger(__name__)


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
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these passages; ids not stored are left out."""

    @abstractmethod
    def ids(self) -> set[str]: ...

    @abstractmethod
    def query(self, vector: np.ndarray, *, limit: int, where: Where | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first."""

    @abstractmethod
    def reset(self) -> None:
        """Drop the collection."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to let go of
        """Let go of the store's client (its files may be gone); the store is not used afterwards."""

    @contextmanager
    def rebuilding(self, signature: dict[str, str | int]) -> Iterator[None]:
        """Writes in the block go to a new, empty collection that takes the current one's place when the
        block completes. This plain version drops the current one first; stores that can build aside and
        swap (ChromaStore) keep serving the old one meanwhile."""
        self.reset()
        self.ensure(signature)
        yield


class ChromaStore(VectorStore):
    """Chroma with our own embeddings: no embedding function is ever attached, so Chroma never
    falls back to its default model (which it would try to download).

    With a Chroma server, every request is bounded by `chroma_timeout_s`; a server that is down fails
    each call at once with VectorStoreUnavailableError, and the next call after it is back succeeds (the HTTP
    client opens a new connection). A collection that another process rebuilt (dropped and created
    anew, so with a new id) is opened again by name on the next call."""

    def __init__(
        self,
        *,
        client: ClientAPI,
        collection: str,
        where: str = "the embedded Chroma store",
        ef_search: int = 400,
        max_neighbors: int = 32,
        ef_construction: int = 200,
    ) -> None:
        self._client = client
        self._name = collection
        self._where = where
        self._ef_search = ef_search
        self._graph = {"max_neighbors": max_neighbors, "ef_construction": ef_construction}
        self.graph_outdated = False  # the collection's HNSW graph differs from what the settings ask
        self._collection: Collection | None = None
        self._signature: dict[str, str | int] | None = None
        self._reopen_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ChromaStore:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma.host:
            where = f"the Chroma server at {settings.chroma.host}:{settings.chroma.port}"
        else:
            where = f"the embedded Chroma store in {settings.storage.chroma_path}"
        try:
            if settings.chroma.host:
                client = _http_client(settings, chroma_settings)
            else:
                settings.storage.chroma_path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(settings.storage.chroma_path), settings=chroma_settings)
        except Exception as exc:  # chromadb raises ValueError / httpx errors / its own
            raise VectorStoreUnavailableError(f"cannot open {where}: {type(exc).__name__}: {exc}") from exc
        return cls(
            client=client,
            collection=settings.chroma.collection,
            where=where,
            ef_search=settings.chroma.ef_search,
            max_neighbors=settings.chroma.max_neighbors,
            ef_construction=settings.chroma.ef_construction,
        )

    def _call(self, what: str, operation: Callable[[Collection], T]) -> T:
        """`operation(collection)`, with Chroma's many error types turned into VectorStoreUnavailableError."""
        collection = self.collection
        try:
            try:
                return operation(collection)
            except Exception as exc:
                if not _collection_gone(exc):
                    raise
            return operation(self._reopen(collection))
        except (IndexMismatchError, VectorStoreUnavailableError):
            raise
        except Exception as exc:
            raise VectorStoreUnavailableError(f"{self._where}: {what} failed: {type(exc).__name__}: {exc}") from exc

    def _open(self, *, create: bool) -> Collection:
        assert self._signature is not None
        if create:
            collection = self._client.get_or_create_collection(
                self._name, embedding_function=None, metadata=dict(self._signature), configuration=self._configuration()
            )
        else:
            collection = self._client.get_collection(self._name, embedding_function=None)
        stored = {k: (collection.metadata or {}).get(k) for k in self._signature}
        if stored != dict(self._signature):
            raise IndexMismatchError(
                f"the Chroma collection {self._name!r} was built with {stored}, but settings ask for "
                f"{dict(self._signature)}; rebuild it with `kakehashi ingest --rebuild` (or choose another "
                "KAKEHASHI_CHROMA_COLLECTION)"
            )
        self._adjust(collection)
        return collection

    def _configuration(self) -> CreateCollectionConfiguration:
        """The HNSW configuration a collection is made with."""
        return {
            "hnsw": {
                "space": "cosine",
                "ef_search": self._ef_search,
                "max_neighbors": self._graph["max_neighbors"],
                "ef_construction": self._graph["ef_construction"],
            }
        }

    def _adjust(self, collection: Collection) -> None:
        """Bring an existing collection's search breadth to the settings (the one HNSW setting Chroma lets
        a collection change), and say when its graph was built otherwise than the settings ask."""
        hnsw = (getattr(collection, "configuration", None) or {}).get("hnsw") or {}
        if hnsw.get("ef_search") != self._ef_search:
            collection.modify(configuration={"hnsw": {"ef_search": self._ef_search}})
        built = {name: hnsw.get(name) for name in self._graph}
        self.graph_outdated = built != self._graph
        if self.graph_outdated:
            log.warning(
                "%s: the collection %r was built with HNSW %s, the settings ask for %s; dense search may "
                "miss passages until `kakehashi ingest` re-links it (nothing is embedded again)",
                self._where,
                self._name,
                built,
                self._graph,
            )

    @contextmanager
    def rebuilding(self, signature: dict[str, str | int]) -> Iterator[None]:
        """Writes in the block go to a collection made aside under a temporary name, which is renamed into
        place when the block completes: other hosts sharing the server search the old collection until
        then (and find the new one by name after), and a failure part way leaves the old one as it was."""
        self._signature = dict(signature)
        staging_name = f"{self._name}-next"
        previous = self._collection
        try:
            if any(c.name == staging_name for c in self._client.list_collections()):
                self._client.delete_collection(staging_name)  # left by a run that failed part way
            staging = self._client.create_collection(
                staging_name, embedding_function=None, metadata=dict(signature), configuration=self._configuration()
            )
        except Exception as exc:  # chromadb's many error types, as in _call
            raise VectorStoreUnavailableError(
                f"{self._where}: cannot make the collection {staging_name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._collection = staging
        try:
            yield
        except BaseException:
            self._collection = previous
            try:
                self._client.delete_collection(staging_name)
            except Exception as cleanup:  # noqa: BLE001 - the original failure is the one to report
                log.warning("%s: could not drop %r after a failed rebuild: %s", self._where, staging_name, cleanup)
            raise
        try:
            self.reset()
            staging.modify(name=self._name)
        except Exception as exc:
            raise VectorStoreUnavailableError(
                f"{self._where}: the rebuilt collection could not take the name {self._name!r} and is left as "
                f"{staging_name!r}: {type(exc).__name__}: {exc}; run `kakehashi ingest --rebuild` again"
            ) from exc
        self._collection = staging
        self.graph_outdated = False

    def rebuild_graph(self) -> int:
        """Re-create the collection with the configured HNSW graph from the vectors it holds (nothing is
        embedded again); returns how many were moved."""
        assert self._signature is not None, "call ensure() first"
        old = self.collection
        ids = sorted(self.ids())
        with self.rebuilding(self._signature):
            for _, part in _batches(ids):
                try:
                    got = old.get(ids=list(part), include=["embeddings", "documents", "metadatas"])
                    self.collection.upsert(
                        ids=got["ids"],
                        embeddings=got["embeddings"],
                        documents=got["documents"],
                        metadatas=got["metadatas"],
                    )
                except Exception as exc:  # chromadb's many error types, as in _call
                    raise VectorStoreUnavailableError(
                        f"{self._where}: re-linking {self._name!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc
        return len(ids)

    def _reopen(self, failed: Collection) -> Collection:
        """The collection by name again, after ours was found gone. Not created: an empty collection would
        make every answer quietly lose its dense half, where an error says what to do."""
        with self._reopen_lock:
            current = self._collection
            if current is not None and current is not failed:  # another thread already opened it again
                return current
            try:
                collection = self._open(create=False)
            except IndexMismatchError:
                raise
            except Exception as exc:
                if _collection_gone(exc):
                    raise VectorStoreUnavailableError(
                        f"{self._where}: the collection {self._name!r} is gone (dropped, or the server lost its "
                        "data); run `kakehashi ingest` to build it again"
                    ) from exc
                raise
            self._collection = collection
            return collection

    def ensure(self, signature: dict[str, str | int]) -> None:
        self._signature = dict(signature)
        try:
            collection = self._open(create=True)
        except (IndexMismatchError, VectorStoreUnavailableError):
            raise
        except Exception as exc:
            raise VectorStoreUnavailableError(
                f"{self._where}: get_or_create_collection failed: {type(exc).__name__}: {exc}"
            ) from exc
        self._collection = collection

    @property
    def where(self) -> str:
        """Where the vectors live, as messages name it."""
        return self._where

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            raise VectorStoreUnavailableError("the vector store is not opened; call ensure() first")
        return self._collection

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for start, part in _batches(chunks):
            embeddings = vectors[start : start + len(part)]

            def upsert(c: Collection, part: Sequence[Chunk] = part, embeddings: np.ndarray = embeddings) -> None:
                c.upsert(
                    ids=[x.id for x in part],
                    embeddings=embeddings,
                    documents=[x.text for x in part],
                    metadatas=[dict(x.metadata) for x in part],
                )

            self._call("upsert", upsert)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for _, part in _batches(ids):

            def get(c: Collection, part: Sequence[str] = part) -> GetResult:
                return c.get(ids=list(part), include=["embeddings"])

            got = self._call("get", get)
            embeddings = got["embeddings"]
            assert embeddings is not None, "asked for with include=['embeddings']"
            found.update({i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], embeddings, strict=True)})
        return found

    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        for _, part in _batches(chunks):

            def update(c: Collection, part: Sequence[Chunk] = part) -> None:
                c.update(ids=[x.id for x in part], metadatas=[dict(x.metadata) for x in part])

            self._call("update", update)

    def delete(self, ids: Sequence[str]) -> None:
        for _, part in _batches(ids):

            def delete(c: Collection, part: Sequence[str] = part) -> None:
                c.delete(ids=list(part))

            self._call("delete", delete)

    def ids(self) -> set[str]:
        result: GetResult = self._call("get", lambda c: c.get(include=[]))
        return set(result["ids"])

    def query(self, vector: np.ndarray, *, limit: int, where: Where | None = None) -> list[tuple[str, float]]:
        query_vector = cast("Embedding", np.asarray(vector, dtype=np.float32))
        result: QueryResult = self._call(
            "query",
            lambda c: c.query(
                query_embeddings=[query_vector], n_results=limit, where=where or None, include=["distances"]
            ),
        )
        assert result["distances"] is not None, "asked for with include=['distances']"
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def close(self) -> None:
        # chromadb shares one system per folder between the clients of a process: unless it is released,
        # a new client for the same folder gets the old one, still on the deleted files.
        close = getattr(self._client, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - its files may be gone: letting go is all that matters
                log.info("closing %s: %s: %s", self._where, type(exc).__name__, exc)
        self._collection = None

    def reset(self) -> None:
        try:
            self._client.delete_collection(self._name)
        except Exception as exc:  # NotFoundError when there is nothing to drop
            if not _collection_gone(exc):
                raise VectorStoreUnavailableError(
                    f"{self._where}: delete_collection failed: {type(exc).__name__}: {exc}"
                ) from exc
        self._collection = None


def _batches(items: Sequence[S]) -> Iterator[tuple[int, Sequence[S]]]:
    """`items` in slices, with where each starts: Chroma caps batch sizes; stay well under it."""
    for start in range(0, len(items), _BATCH):
        yield start, items[start : start + _BATCH]


def _collection_gone(exc: BaseException) -> bool:
    """Chroma's NotFoundError (checked by name: chromadb is imported only where a store is opened)."""
    return type(exc).__name__ == "NotFoundError" or "does not exist" in str(exc)


def _http_client(settings: Settings, chroma_settings: ChromaSettings) -> ClientAPI:
    """chromadb.HttpClient with every request bounded by settings.chroma.timeout_s.

    chromadb (1.x) has no client timeout setting: its httpx session is made with timeout=None, so a hung
    server would hold a question forever, and the constructor already asks the server for its tenant.
    So the server is asked for a heartbeat first, with the timeout, and the session's timeout is set.
    chromadb shares one session between the clients of a process that name the same host and port."""
    import chromadb
    import httpx

    assert settings.chroma.host
    timeout = httpx.Timeout(settings.chroma.timeout_s)
    host = f"[{settings.chroma.host}]" if ":" in settings.chroma.host else settings.chroma.host
    heartbeat = httpx.get(f"http://{host}:{settings.chroma.port}/api/v2/heartbeat", timeout=timeout)
    heartbeat.raise_for_status()
    client = chromadb.HttpClient(host=settings.chroma.host, port=settings.chroma.port, settings=chroma_settings)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = timeout
    else:  # a chromadb that builds its client otherwise: say so rather than hang silently one day
        log.warning(
            "cannot bound requests to the Chroma server to %gs: this chromadb version has no "
            "httpx session where expected",
            settings.chroma.timeout_s,
        )
    return client
