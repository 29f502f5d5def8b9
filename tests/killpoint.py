"""`python -m tests.killpoint N before|after LOG kakehashi-args…`: the real `kakehashi` command line, with
every file replace and removal under the knowledge folder counted (appended to LOG as "number op path")
and the process SIGKILLed just before or just after write number N (N=0: never). What a power cut or an
OOM kill does at that moment, with nothing in the editor changed.

The knowledge change's indexing is left out (`reindex` does nothing here): it runs after the change is
committed, is not what the crash test is about, and loading the model in each of fifty processes would
cost minutes."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from bot import cli, cli_kb
from knowledge.journal import LOCK_FILE


def _killing(target: int, when: str, log: str, root: str) -> Callable[[str, Callable[..., Any]], Callable[..., Any]]:
    seen = 0

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            nonlocal seen
            path = os.path.realpath(os.fspath(args[-1] if name in ("replace", "rename") else args[0]))
            if not path.startswith(root + os.sep) or os.path.basename(path) == LOCK_FILE:
                return real(*args, **kwargs)
            seen += 1
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{seen} {name} {os.path.relpath(path, root)}\n")
            if seen == target and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = real(*args, **kwargs)
            if seen == target and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return write

    return wrap


def main(argv: list[str]) -> int:
    target, when, log, *args = argv
    root = os.path.realpath(os.environ["KAKEHASHI_KNOWLEDGE_DIR"])
    wrap = _killing(int(target), when, log, root)
    for name in ("replace", "rename", "unlink", "remove"):
        setattr(os, name, wrap(name, getattr(os, name)))
    cli_kb.reindex = lambda settings: None
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
