"""Who may change the knowledge base from Slack: the one staff check that commands, modal
submissions, buttons and uploads all go through.

Staff are the user IDs in settings (`slack_staff_user_ids`) plus the members of a Slack user group
(`slack_staff_usergroup`). Group members are fetched with usergroups.users.list and cached for a
few minutes, so a person removed from the group loses access within that time; when Slack cannot
be asked, the ID list alone decides (and the failure is logged), never "everyone".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.text import shorten

GROUP_TTL_S = 300.0
FAILURE_TTL_S = 60.0  # after a failed lookup, ask Slack again only after this long


def parse_user_ids(text: str) -> frozenset[str]:
    return frozenset(x.strip() for x in text.split(",") if x.strip())


class CachedMembers:
    """A set of Slack user IDs fetched from Slack and kept for `ttl_s`; when Slack fails, empty (never
    everyone) for `FAILURE_TTL_S`, with one WARNING saying `consequence`."""

    def __init__(
        self,
        *,
        fetch: Callable[[], frozenset[str]],
        what: str,
        consequence: str,
        logger: logging.Logger,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._what = what
        self._consequence = consequence
        self._logger = logger
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._members: frozenset[str] = frozenset()
        self._expires = 0.0

    def get(self) -> frozenset[str]:
        with self._lock:
            now = self._clock()
            if now < self._expires:
                return self._members
            try:
                self._members, self._expires = self._fetch(), now + self._ttl_s
            except (SlackApiError, OSError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                self._logger.warning("%s failed (%s); %s until it works again", self._what, error, self._consequence)
                self._members, self._expires = frozenset(), now + FAILURE_TTL_S
            return self._members


class StaffDirectory:
    def __init__(
        self,
        *,
        user_ids: frozenset[str],
        usergroup: str | None,
        client: WebClient | None,
        logger: logging.Logger,
        ttl_s: float = GROUP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_ids = user_ids
        self.usergroup = usergroup or None
        self._client = client
        self._logger = logger
        self._group = CachedMembers(
            fetch=self._fetch_group,
            what=f"usergroups.users.list for {self.usergroup}",
            consequence="staff are only the user IDs in KAKEHASHI_SLACK_STAFF_USER_IDS",
            logger=logger,
            ttl_s=ttl_s,
            clock=clock,
        )

    def _fetch_group(self) -> frozenset[str]:
        assert self._client is not None and self.usergroup
        response = self._client.usergroups_users_list(usergroup=self.usergroup)
        return frozenset(str(u) for u in response.get("users") or [])

    def group_members(self) -> frozenset[str]:
        """The user group's members, from the cache or Slack; empty when there is no group or Slack fails."""
        if not self.usergroup or self._client is None:
            return frozenset()
        return self._group.get()

    def is_staff(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        return user_id in self.user_ids or user_id in self.group_members()

    def check(self, user_id: str | None, *, attempted: str) -> bool:
        """is_staff, with a WARNING naming who tried what when the answer is no (the attempt is kept)."""
        if self.is_staff(user_id):
            return True
        self._logger.warning(
            "refused a knowledge change: %s is not staff (tried: %r)",
            user_id or "(unknown user)",
            shorten(attempted, 200),
        )
        return False
