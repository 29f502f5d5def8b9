"""What the listeners are handed: the collaborators `build_app` was given, nothing global."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.slack.sources import SourceCatalog
from bot.slack.staff import StaffDirectory
from bot.store import DeskStore
from core.settings import Settings
from retrieval.answer import Answer, Turn
from retrieval.index import Filters
from retrieval.match import MatchResult
from retrieval.profile import Profile

if TYPE_CHECKING:
    from bot.slack.guards import SupporterDirectory
    from bot.slack.locale import UserLocales
    from bot.slack.outbox import Outbox
    from knowledge.editor import KnowledgeEditor
    from retrieval.live import LiveKnowledge


class AnswererLike(Protocol):
    def ask(self, question: str, *, filters: Filters | None = None, history: Sequence[Turn] = ()) -> Answer: ...


class MatcherLike(Protocol):
    """retrieval.match.Matcher, as the listeners use it."""

    def match(self, text: str) -> MatchResult: ...

    def match_profile(self, profile: Profile) -> MatchResult: ...


@dataclass(frozen=True)
class Place:
    """Where a reply goes: a channel and, usually, the thread in it."""

    channel: str
    thread_ts: str | None = None
    user_id: str | None = None
    team_id: str | None = None


def _user_locales() -> UserLocales:
    from bot.slack.locale import UserLocales  # locale imports Deps: bound here, not at import

    return UserLocales()


@dataclass
class Deps:
    settings: Settings
    answerer: AnswererLike
    matcher: MatcherLike | None
    store: DeskStore
    catalog: SourceCatalog
    logger: logging.Logger
    staff: StaffDirectory | None = None  # None: nobody is staff (a Deps that only posts, e.g. the gaps report)
    # The knowledge editor and the live knowledge (also the answerer and matcher); None: a bot that
    # only answers, and `/kakehashi kb` says editing is not available.
    editor: KnowledgeEditor | None = None
    live: LiveKnowledge | None = None
    # Who may take and resolve consultations; None: staff only.
    supporters: SupporterDirectory | None = None
    # Answers go through the durable outbox (retried through Slack outages); None: posted directly.
    outbox: Outbox | None = None
    locales: UserLocales = field(default_factory=_user_locales)  # users' Slack languages, asked once each

    @property
    def max_input_chars(self) -> int:
        return self.settings.slack.max_input_chars

    def is_staff(self, user_id: str | None) -> bool:
        return self.staff is not None and self.staff.is_staff(user_id)

    def check_supporter(self, user_id: str | None, *, attempted: str) -> bool:
        """The check every take and resolve goes through: staff, or a member of the supporters' channel."""
        if self.supporters is not None:
            return self.supporters.check(user_id, attempted=attempted)
        return self.check_staff(user_id, attempted=attempted)

    def check_staff(self, user_id: str | None, *, attempted: str) -> bool:
        """The check every knowledge change goes through: is_staff, with the refusal logged (who tried what)."""
        staff = self.staff or StaffDirectory(user_ids=frozenset(), usergroup=None, client=None, logger=self.logger)
        return staff.check(user_id, attempted=attempted)
