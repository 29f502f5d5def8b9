"""Edit a hand-written record file in place: only the fields whose values changed are rewritten, so
comments, folded text (`>-`), flow lists (`[a, b]`), quoting and key order stay as staff wrote them.

ruamel.yaml's round-trip mode keeps the layout of every node it is not asked to change."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString
from ruamel.yaml.util import load_yaml_guess_indent


def _yaml(text: str = "") -> YAML:
    """A round-trip loader/dumper indenting lists as `text` does (`key:\n  - item` or `key:\n- item`)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    # ruamel's guess: the list's indent (where its items' keys start) and the dash's offset
    _, sequence, dash = load_yaml_guess_indent(text) if text else (None, 4, 2)
    yaml.indent(mapping=2, sequence=sequence or 2, offset=dash or 0)
    yaml.allow_unicode = True
    # `null` written out, as the hand-written files do (ruamel leaves it empty by default)
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _plain(value: Any) -> Any:
    """A comparable form: dates as ISO strings, ruamel's containers as dicts and lists."""
    if isinstance(value, Mapping):  # `key: null`, `key: []`, `key: false` and no key say the same (a default)
        return {
            str(k): _plain(v)
            for k, v in value.items()
            if not (v is None or v is False or (isinstance(v, list | dict | str) and not v))
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)  # numbers by value: ruamel may read `5.0` back as 5
    return value


def same(a: Any, b: Any) -> bool:
    return json.dumps(_plain(a), ensure_ascii=False, sort_keys=True, default=str) == json.dumps(
        _plain(b), ensure_ascii=False, sort_keys=True, default=str
    )


def _styled(new: Any, old: Any) -> Any:
    """A changed value, shaped like the one it replaces where that matters to the file's look."""
    if isinstance(new, list):
        seq = CommentedSeq([_styled(v, None) for v in new])
        if isinstance(old, CommentedSeq) and old.fa.flow_style():
            seq.fa.set_flow_style()
        elif not isinstance(old, CommentedSeq) and all(not isinstance(v, dict | list) for v in new):
            seq.fa.set_flow_style()  # a new list of plain values: `[a, b]`, like the hand-written files
        return seq
    if isinstance(new, dict):
        mapping = CommentedMap()
        for key, value in new.items():
            mapping[key] = _styled(value, old.get(key) if isinstance(old, Mapping) else None)
        return mapping
    if isinstance(new, str) and "\n" in new:
        return LiteralScalarString(new)
    if isinstance(new, str) and isinstance(old, FoldedScalarString):
        return FoldedScalarString(new)  # a `>-` paragraph stays one
    return new


def patch(before: str, data: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
    """`before` with the top-level fields of `data` that differ from it rewritten, fields `data` no longer
    has removed, and new ones appended (unless they only state a default). Returns (text, changed fields)."""
    yaml = _yaml(before)
    document = yaml.load(before)
    if not isinstance(document, CommentedMap):
        raise TypeError("a record file holds one mapping")
    defaults = defaults or {}
    changed: list[str] = []
    for key in list(document.keys()):
        if key not in data and document[key] is not None:
            del document[key]
            changed.append(str(key))
    for key, value in data.items():
        if key in document:
            if not same(document[key], value):
                document[key] = _styled(value, document[key])
                changed.append(key)
        elif not (value in ([], {}, "", None) or (key in defaults and same(defaults[key], value))):
            document[key] = _styled(value, None)
            changed.append(key)
    if not changed:
        return before, []
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue(), changed
