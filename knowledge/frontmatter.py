"""YAML front matter: the block between `---` lines that opens a Markdown file.

One reader for its two uses: a Markdown record file, whose block is the record (read as YAML by the
caller, with line numbers), and an uploaded Markdown document, whose block may give a title and a date
(read leniently, since a `---` line in Markdown may also be a horizontal rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOSERS = ("---", "...")
_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")


@dataclass(frozen=True)
class FrontMatter:
    lines: tuple[str, ...]
    """The block's lines, between the fences; the first is line 2 of the file."""
    body: str
    """Everything after the closing fence."""

    first_line = 2

    @property
    def block(self) -> str:
        return "\n".join(self.lines)

    def is_metadata(self) -> bool:
        """Whether every line is a `key: value`, an indented continuation, a list item or blank; if not, the
        opening `---` was a horizontal rule rather than front matter."""
        return bool(self.lines) and all(
            _KEY.match(line) or line.startswith((" ", "-")) or not line.strip() for line in self.lines
        )

    def fields(self) -> dict[str, str]:
        """The top-level `key: value` pairs as written (keys lowercased, quotes stripped); nested values
        are not read."""
        values = {}
        for line in self.lines:
            match = _KEY.match(line)
            if match:
                values[match.group(1).lower()] = match.group(2).strip().strip("'\"")
        return values


def split_front_matter(text: str, *, max_lines: int | None = None) -> FrontMatter | None:
    """The front matter opening `text`: a `---` line, closed by a `---` (or YAML's `...`) line, within
    the first `max_lines` lines if given. None when `text` does not open with one."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return None
    limit = len(lines) if max_lines is None else min(len(lines), max_lines)
    end = next((i for i in range(1, limit) if lines[i].strip() in _CLOSERS), None)
    if end is None:
        return None
    return FrontMatter(lines=tuple(lines[1:end]), body="\n".join(lines[end + 1 :]))
