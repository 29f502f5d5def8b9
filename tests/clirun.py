"""`kakehashi ARGS` run inside the test process: `bot.cli.main(argv)` with the test's settings in the
environment, its stdin, stdout and stderr captured, and the embedding model handed in.

A `kakehashi` subprocess costs ~2 s before it does anything (imports, loading the model); the suite ran
hundreds. What a real process adds (signals, two processes sharing files, a kill at any write) is tested
with real processes (tests/conftest.py `run_kakehashi`), one smoke test per command group besides."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot import cli, cli_report
from core.settings import Settings
from retrieval import engine
from retrieval.embeddings import Embedder, make_embedder

EmbedderFactory = Callable[[Settings], Embedder]


@dataclass(frozen=True)
class CliResult:
    """What a finished `kakehashi` run left: the fields of subprocess.CompletedProcess the tests read."""

    returncode: int
    stdout: str
    stderr: str


def real_model(embedder: Embedder) -> EmbedderFactory:
    """The session's real model for the default backend (its vectors are remembered for the session);
    another configured backend is built as the command would build it."""

    def factory(settings: Settings) -> Embedder:
        default = settings.embedding.backend == embedder.backend
        return embedder if default else make_embedder(settings)

    return factory


def run_main(*args: str, env: dict[str, str], embedder: EmbedderFactory, stdin: str = "") -> CliResult:
    """`kakehashi ARGS` in this process with `env` on top of the test's environment (the CLI reads its
    settings from KAKEHASHI_* variables), every embedder the command makes coming from `embedder`."""
    out, err = io.StringIO(), io.StringIO()
    # main's logging.basicConfig does nothing here (pytest's handlers are on the root logger): log to
    # the captured stderr as the process would.
    log = logging.StreamHandler(err)
    log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    verbose = "-v" in args or "--verbose" in args
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    root, ours = logging.getLogger(), logging.getLogger("kakehashi")
    level, our_level = root.level, ours.level  # `serve` sets its logger's level; a process would end there
    root.addHandler(log)
    if verbose:
        root.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("KAKEHASHI_", "SLACK_")) or name == "OPENAI_API_KEY":
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr(engine, "make_embedder", embedder)
        patch.setattr(cli_report, "make_embedder", embedder)
        patch.setattr("sys.stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
            finally:
                root.removeHandler(log)
                root.setLevel(level)
                ours.setLevel(our_level)
    return CliResult(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
