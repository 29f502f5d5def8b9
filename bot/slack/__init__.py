"""The Slack app: surfaces, listeners, Block Kit and the edge. `build_app` wires it."""

from bot.slack.app import build_app

__all__ = ["build_app"]
