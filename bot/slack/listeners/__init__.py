"""Every listener, registered in one place: the surfaces (assistant, events, the slash command) here, and each
feature's buttons and forms from its own `listeners.register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.answers import listeners as answers
from bot.slack.deps import Deps
from bot.slack.feedback import listeners as feedback
from bot.slack.handoff import listeners as handoff
from bot.slack.kb import listeners as kb
from bot.slack.listeners import assistant, commands, events
from bot.slack.match import listeners as match


def register(app: App, deps: Deps) -> None:
    assistant.register(app, deps)  # before events: AI-app threads are the Assistant's
    events.register(app, deps)
    commands.register(app, deps)
    answers.register(app, deps)
    feedback.register(app, deps)
    handoff.register(app, deps)
    match.register(app, deps)
    kb.register(app, deps)  # the knowledge editor's forms and buttons (staff only)
