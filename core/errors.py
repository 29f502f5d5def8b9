"""The one error root. Every error Kakehashi raises on purpose is a KakehashiError, so an entry point
(the CLI, the Slack edge) can tell "we refused, and the message says why" from a bug."""

from __future__ import annotations


class KakehashiError(Exception):
    """Kakehashi cannot do what was asked; the message says what and where, for the person who asked."""
