"""The language of a user's Slack (users.info with include_locale): for the bot's own words where the
user's text cannot tell (a greeting, a one-word message, staff forms). Remembered per user."""

from __future__ import annotations

import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.deps import Deps
from bot.slack.edge import slack_error
from retrieval.language import detect_language

# Texts shorter than this say little about their language ("ok", "MEDISO?"): the locale decides.
MIN_TELLING_CHARS = 6


class UserLocales:
    """users.info's locale per user, asked once; Japanese when Slack will not say."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def language(self, deps: Deps, client: WebClient, user_id: str) -> str:
        with self._lock:
            if user_id in self._known:
                return self._known[user_id]
        try:
            locale = str((client.users_info(user=user_id, include_locale=True).get("user") or {}).get("locale") or "")
        except SlackApiError as exc:
            deps.logger.info("users.info for %s failed: %s", user_id, slack_error(exc))
            return "ja"
        language = "en" if locale.lower().startswith("en") else "ja"
        with self._lock:
            self._known[user_id] = language
        return language


def user_language(deps: Deps, client: WebClient, user_id: str) -> str:
    return deps.locales.language(deps, client, user_id)


def text_language(deps: Deps, client: WebClient, user_id: str | None, text: str) -> str:
    """The language of a user's message: from the text when it says enough, else their Slack locale."""
    stripped = "".join(text.split())
    if len(stripped) >= MIN_TELLING_CHARS or not user_id:
        return detect_language(text) if stripped else (user_language(deps, client, user_id) if user_id else "ja")
    return user_language(deps, client, user_id)
