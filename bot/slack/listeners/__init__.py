"""Listeners, one module per surface; each exposes `register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.deps import Deps
from bot.slack.listeners import actions, assistant, commands, events, views


def register(app: App, deps: Deps) -> None:
    assistant.register(app, deps)  # before events: AI-app threads are the Assistant's
    events.register(app, deps)
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
