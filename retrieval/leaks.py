"""What must never reach a founder: staff-only material in an answer's text.

Used by the evaluation and the tests; the answer pipeline avoids these by construction (it quotes
documents, never record notes), and this is the check that it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_FILE_NAME = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b|\b[\w-]+\.ya?ml\b|\bnotes_ja\b|\bsummary_(?:ja|en)\b")
# How curators write about the decks ("deck 003 only", "read as", "inferred"): never the decks' own words.
_CURATOR = re.compile(
    r"デッキ\s*\d{3}|資料\s*\d{3}|\b0\d\d\s*(?:の表|のみ|では|・)|備考[:：]|と解した|とした。|の読み|推定|"
    r"\bdeck\s*\d{3}\b"
)


def leaks(text: str, record_ids: Iterable[str] = ()) -> list[str]:
    """The pieces of `text` a founder must not see: file names, YAML paths, record ids, curator notes."""
    found = [m.group() for m in _FILE_NAME.finditer(text)] + [m.group() for m in _CURATOR.finditer(text)]
    found += [rid for rid in record_ids if re.search(rf"(?<![\w-]){re.escape(rid)}(?![\w-])", text)]
    return found
