"""The Slack layer's errors, under the one root (core.errors.KakehashiError)."""

from __future__ import annotations

from core.errors import KakehashiError


class SlackError(KakehashiError):
    """Something a Slack flow of ours refuses or cannot do; caught and told to the user at the Slack edge."""
