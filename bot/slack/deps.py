"""What the listeners are handed: the collaborators `build_app` was given, nothing global."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.slack.sources import SourceCatalog
from bot.store import DeskStore
from knowledge.settings import Settings
from retrieval.answer import Answer
from retrieval.profile import Profile, extract_profile, render_profile


class AnswererLike(Protocol):
    def ask(self, question: str, *, filters: Any = None) -> Answer: ...


class MatcherLike(Protocol):
    """retrieval.match.Matcher: a result with `.profile`, `.language`, `.recommendations` and `.notes`."""

    def match(self, text: str) -> Any: ...

    def match_profile(self, profile: Profile) -> Any: ...


@dataclass(frozen=True)
class Place:
    """Where a reply goes: a channel and, usually, the thread in it."""

    channel: str
    thread_ts: str | None = None
    user_id: str | None = None
    team_id: str | None = None


@dataclass
class Deps:
    settings: Settings
    answerer: AnswererLike
    matcher: MatcherLike | None
    store: DeskStore
    catalog: SourceCatalog
    logger: logging.Logger
    staff_user_ids: frozenset[str] = frozenset()
    render_profile: Callable[[Profile, Any], str] = field(default=render_profile)
    extract_profile: Callable[[str], Profile] = field(default=extract_profile)

    @property
    def max_input_chars(self) -> int:
        return self.settings.slack_max_input_chars

    def is_staff(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.staff_user_ids
