"""Text at the Slack edge: turn Slack's markup into plain text, and plain text back into safe mrkdwn.

User text arrives with Slack's own markup (`<@U123>`, `<#C1|name>`, `<https://x|label>`, and `&amp;`
for `&`); we search with plain text and, whenever we post user text back, escape it so that a
`<!channel>` or a fake link typed by a user is shown, not acted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prompts.messages import t

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as Slack asks (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_answer(text: str) -> str:
    """An answer's text for mrkdwn: escaped like any text, except the answer's own quote marks ("> " opening a
    line), which stay Slack's blockquote."""
    return re.sub(r"(?m)^&gt; ", "> ", escape_mrkdwn(text))


def slack_to_plain(text: str, *, bot_user_id: str | None = None) -> str:
    """Plain text from a Slack message: mentions of the bot dropped, other markup made readable."""

    def user(match: re.Match[str]) -> str:
        if bot_user_id and match.group(1) == bot_user_id:
            return ""
        return "@" + (match.group(2) or match.group(1))

    text = _USER.sub(user, text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()


@dataclass(frozen=True)
class CutText:
    text: str
    truncated: bool
    original_chars: int


def cut(text: str, limit: int) -> CutText:
    """At most `limit` characters; `truncated` tells the caller to add a note."""
    text = text.strip()
    if len(text) <= limit:
        return CutText(text, False, len(text))
    return CutText(text[:limit].rstrip(), True, len(text))


def shorten(text: str, limit: int) -> str:
    """For display only (titles, previews): one line, with an ellipsis when cut."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: max(1, limit - 1)].rstrip() + "…"


def split_for_sections(text: str, limit: int = 2900) -> list[str]:
    """Pieces under a section block's 3,000-character limit, cut at line ends where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


def command_words(key_prefix: str, names: Iterable[str]) -> dict[str, str]:
    """What a person may type for each of `names`: the catalog's words (`key_prefix` + name, English then
    Japanese, space-separated), each mapped to its name."""
    return {
        word: name for name in names for language in ("en", "ja") for word in t(f"{key_prefix}{name}", language).split()
    }
