"""The buttons on an answer or a match result: sources, a recommendation's details, 「チャンネルに共有」, links."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.slack.answers import cards
from bot.slack.deps import Deps
from bot.slack.edge import guarded
from bot.slack.ids import DETAILS, LINK, SHARE, SOURCES


def register(app: App, deps: Deps) -> None:
    app.action(SOURCES)(guarded(deps, "sources", lambda c, b, _: cards.open_sources(deps, c, b)))
    app.action(DETAILS)(guarded(deps, "match details", lambda c, b, _: cards.open_details(deps, c, b)))
    app.action(SHARE)(guarded(deps, "share", lambda c, b, r: cards.share(deps, c, b, r)))

    @app.action(LINK)
    def on_link(ack: Ack) -> None:
        ack()  # a link-out button: Slack opens the URL, we only acknowledge
