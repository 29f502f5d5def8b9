"""👍 / 👎 and the 👎 reasons form."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blockkit import JSON
from bot.slack.deps import Deps
from bot.slack.edge import guarded, report_failure
from bot.slack.feedback import handlers
from bot.slack.ids import FEEDBACK, FEEDBACK_VIEW


def register(app: App, deps: Deps) -> None:
    app.action(FEEDBACK)(guarded(deps, "feedback", lambda c, b, _: handlers.rate(deps, c, b)))

    @app.view(FEEDBACK_VIEW)
    def on_feedback(ack: Ack, body: JSON, client: WebClient) -> None:
        ack()
        try:
            handlers.explain_down(deps, client, body)
        except Exception as exc:  # noqa: BLE001 - the Slack edge: the user closed a form; log, nowhere to post
            report_failure(deps.logger, client, what="feedback reasons", error=exc, place=None)
