"""`python -m tests.killpoint N before|after LOG kakehashi-args…`: the real `kakehashi` command line, with
every file replace and removal under the knowledge folder counted (appended to LOG as "number op path")
and the process SIGKILLed just before or just after write number N (N=0: never). What a power cut or an
OOM kill does at that moment, with nothing in the editor changed.

The knowledge change's indexing is left out (`reindex` does nothing here): it runs after the change is
committed, is not what the crash test is about, and loading the model in each of fifty processes would
cost minutes.

`python -m tests.killpoint --serve` does the same for many runs at the cost of one start: it imports the
program once, then for each JSON job on stdin ({"target", "when", "log", "args", "env", "stdout",
"stderr"}) forks a child that runs the command line with that environment and its output in those files,
and answers one JSON line {"returncode": ...} (negative: the signal that ended the child), as
subprocess.run would. The child is a real process, SIGKILLed for real."""

from __future__ import annotations

import json
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


def _child(job: dict[str, object]) -> None:
    """In the forked child: the job's environment and output files, then the command; never returns."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(job["env"]).items()})  # type: ignore[call-overload]
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            out = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        code = main([str(job["target"]), str(job["when"]), str(job["log"]), *map(str, job["args"])])  # type: ignore[call-overload]
    except BaseException:  # noqa: BLE001 - reported as the process would: a traceback and exit 1
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(job)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(main(sys.argv[1:]))
