"""YAML text from staff (record files, front matter, the document manifest) read into data and nodes, every
failure a RecordError naming the file and line.

PyYAML composes nested collections recursively, so a file of a few thousand `[` overflows Python's stack
(RecursionError) before it can say anything useful. Its event parser is not recursive: when composing
overflows, it finds the line where the nesting went past any record's depth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import RecordError

# Records nest a handful of levels (a VC's investments' sources); far deeper is a broken or hostile file.
MAX_NESTING = 64


def _too_deep(text: str) -> int | None:
    """The 0-based line where collections nest deeper than MAX_NESTING, if they do."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    return event.start_mark.line if event.start_mark is not None else 0
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    return None


def _refuse(exc: BaseException, text: str, path: Path, first_line: int) -> RecordError:
    if isinstance(exc, RecursionError):
        line = _too_deep(text)
        return RecordError(
            f"invalid YAML: lists or mappings nested more than {MAX_NESTING} levels deep",
            path=path,
            line=(line if line is not None else 0) + first_line,
        )
    mark = getattr(exc, "problem_mark", None)
    return RecordError(
        f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
        path=path,
        line=mark.line + first_line if mark else None,
    )


def load_yaml(text: str, *, path: Path, first_line: int = 1) -> tuple[Any, yaml.Node | None]:
    """(data, node) of a single-document text; `first_line` is the file line the text starts on."""
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise _refuse(exc, text, path, first_line) from exc


def load_yaml_all(text: str, *, path: Path) -> list[tuple[Any, yaml.Node]]:
    """(data, node) of each document of a multi-document text (`---` between them)."""
    try:
        return list(zip(yaml.safe_load_all(text), yaml.compose_all(text), strict=True))
    except (yaml.YAMLError, RecursionError) as exc:
        raise _refuse(exc, text, path, 1) from exc
