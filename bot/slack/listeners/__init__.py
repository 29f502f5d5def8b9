"""Listeners, one module per surface; each exposes `register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.deps import Deps
from bot.slack.listeners import actions, assistant, commands, events, kb, views


def register(app: App, deps: Deps) -> None:
    assistant.register(app, deps)  # before events: AI-app threads are the Assistant's
    events.register(app, deps)
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    kb.register(app, deps)  # the knowledge editor's forms and buttons (staff only)
