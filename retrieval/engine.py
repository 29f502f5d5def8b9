"""Build the search index from settings, and keep it in step with the knowledge files."""

from __future__ import annotations

from filelock import FileLock

from core.settings import Settings
from knowledge.loader import KnowledgeBase, load_knowledge
from retrieval.chunking import knowledge_chunks
from retrieval.embeddings import Embedder, make_embedder
from retrieval.index import IngestReport, SearchIndex
from retrieval.lexical import LexicalIndex
from retrieval.sentences import SentenceVectors
from retrieval.store import ChromaStore, VectorStore
from retrieval.tokenize import make_tokenizer


def open_index(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    store: VectorStore | None = None,
    for_rebuild: bool = False,
) -> SearchIndex:
    """The hybrid index named by settings; collaborators passed in are used as they are. `for_rebuild`
    opens it to be built again, which a collection made with another embedding model must be."""
    tokenizer = make_tokenizer(settings.search.tokenizer)
    lexical_path = settings.storage.lexical_path / f"bm25-{settings.chroma.collection}.pkl"
    embedder = embedder or make_embedder(settings)
    sentences = SentenceVectors(
        settings.storage.lexical_path / f"sentences-{settings.chroma.collection}.npz",
        dim=embedder.dim,
        signature=str(embedder.signature),
    )
    return SearchIndex(
        embedder=embedder,
        sentences=sentences,
        store=store or ChromaStore.from_settings(settings),
        lexical=LexicalIndex.load(lexical_path, tokenizer),
        lexical_path=lexical_path,
        rrf_k=settings.search.rrf_k,
        candidates=settings.search.candidates,
        for_rebuild=for_rebuild,
    )


def ingest(
    settings: Settings,
    index: SearchIndex,
    *,
    kb: KnowledgeBase | None = None,
    rebuild: bool = False,
    prune: bool = False,
) -> IngestReport:
    """Load and validate the knowledge files, then index what changed (`prune`: see SearchIndex.ingest)."""
    kb = kb or load_knowledge(settings.storage.knowledge_dir)
    return index.ingest(knowledge_chunks(kb, chunk_chars=settings.search.chunk_chars), rebuild=rebuild, prune=prune)


def embedded_store_lock(settings: Settings) -> FileLock | None:
    """Chroma's embedded store takes one writing process at a time (its own docs say so), so the process
    serving the bot holds this lock and other commands leave indexing to it. None with a Chroma server,
    which takes writers from any number of processes."""
    if settings.chroma.host:
        return None
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.storage.data_dir / "embedded-store.lock"))
