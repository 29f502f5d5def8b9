"""A real Chroma server for the tests: `chroma run` (the CLI that ships with the chromadb package) on
127.0.0.1, with helpers to stop, freeze and restart it mid-test on the same data and port.

tests/conftest.py imports the fixtures, so every test module can use them by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.settings import Settings
from retrieval.embeddings import Embedder
from retrieval.engine import open_index
from retrieval.index import SearchIndex
from retrieval.store import ChromaStore

CHROMA = Path(sys.executable).with_name("chroma")
SEED_COLLECTION = "kakehashi-seed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """One `chroma run` process at a time, always on the same path and port, so a restart brings back
    the same collections at the same address (what a bot sees when its server is restarted)."""

    def __init__(self, *, path: Path, log: Path, port: int | None = None, start_timeout_s: float = 30.0) -> None:
        self.path = path
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """KAKEHASHI_* variables that point a `kakehashi` process at this server."""
        return {"KAKEHASHI_CHROMA_HOST": self.host, "KAKEHASHI_CHROMA_PORT": str(self.port)}

    def settings(self, base: Settings, *, collection: str, **changes: object) -> Settings:
        return base.updated(
            **{"chroma_host": self.host, "chroma_port": self.port, "chroma_collection": collection, **changes}
        )

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> ChromaServer:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.path.mkdir(parents=True, exist_ok=True)
        # The Rust server sends no product telemetry; the variable keeps chromadb's Python side quiet too.
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", self.host, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + self.start_timeout_s
        while not self.alive():
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"chroma run gave no heartbeat in {self.start_timeout_s:.0f}s:\n{self.log_text()[-2000:]}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its data stays in `path`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers — a hung server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    root = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(path=root / "data", log=root / "chroma.log").start()
    yield server
    server.stop()


def copy_index_to(index: SearchIndex, settings: Settings) -> None:
    """Put `index` where `settings` point (a Chroma server collection and a lexical pickle) without
    embedding anything again: each passage's vector is read back from `index`'s own store."""
    source = index.store
    assert isinstance(source, ChromaStore)
    target = ChromaStore.from_settings(settings)
    target.ensure(index.embedder.signature)
    chunks = list(index.lexical.chunks())
    for start in range(0, len(chunks), 500):
        part = chunks[start : start + 500]
        stored = source.vectors([c.id for c in part])
        target.upsert(part, np.asarray([stored[c.id] for c in part], dtype=np.float32))
    index.lexical.save(settings.storage.lexical_path / f"bm25-{settings.chroma.collection}.pkl")


@pytest.fixture(scope="session")
def server_seed_settings(
    seed_settings: Settings, chroma_server: ChromaServer, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Seed knowledge, vectors on the Chroma server; its own data dir (so its own lexical pickle)."""
    return chroma_server.settings(
        seed_settings,
        collection=SEED_COLLECTION,
        data_dir=tmp_path_factory.mktemp("server-seed-data"),
        chroma_timeout_s=2.0,
    )


@pytest.fixture(scope="session")
def server_seed_index(seed_index: SearchIndex, server_seed_settings: Settings, embedder: Embedder) -> SearchIndex:
    """The session's seed index served from the Chroma server: embedded once (seed_index), copied there,
    then opened from settings as `kakehashi` opens it."""
    copy_index_to(seed_index, server_seed_settings)
    return open_index(server_seed_settings, embedder=embedder)
