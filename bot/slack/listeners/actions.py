"""Buttons: feedback, sources, details, sharing, hand-off, the match form, the supporters' take / resolve, and
staff's 回答として登録 on a resolved card."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import blocks as kit
from bot.slack import cards, curate, feedback, handoff, matchform
from bot.slack.deps import Deps, Place
from bot.slack.edge import report_failure


def register(app: App, deps: Deps) -> None:
    def guarded(what: str, work: Callable[[WebClient, dict[str, Any], Respond], None]) -> Callable[..., None]:
        def listener(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
            ack()
            try:
                work(client, body, respond)
            except Exception as exc:  # the Slack edge
                channel, thread_ts = handoff.origin_of(body)
                user = body["user"]["id"]
                place = Place(channel=channel or user, thread_ts=thread_ts if channel else None, user_id=user)
                report_failure(deps.logger, client, what=what, error=exc, place=place)

        listener.__name__ = f"on_{what.replace(' ', '_')}"
        return listener

    app.action(kit.FEEDBACK)(guarded("feedback", lambda c, b, _: feedback.rate(deps, c, b)))
    app.action(kit.SOURCES)(guarded("sources", lambda c, b, _: cards.open_sources(deps, c, b)))
    app.action(kit.DETAILS)(guarded("match details", lambda c, b, _: cards.open_details(deps, c, b)))
    app.action(kit.HANDOFF)(guarded("hand-off form", lambda c, b, _: handoff.open_form(deps, c, b)))
    app.action(kit.OPEN_MATCH)(guarded("match form", lambda c, b, _: _open_match(deps, c, b)))
    app.action(kit.TAKE)(guarded("take", lambda c, b, _: handoff.change_state(deps, c, b, action="take")))
    app.action(kit.RESOLVE)(guarded("resolve", lambda c, b, _: handoff.change_state(deps, c, b, action="resolve")))

    app.action(kit.SHARE)(guarded("share", lambda c, b, r: cards.share(deps, c, b, r)))
    app.action(kit.CURATE)(guarded("curate form", lambda c, b, _: curate.open_form(deps, c, b)))
    app.action(kit.CURATE_GAP)(guarded("curate form", lambda c, b, _: curate.open_from_gap(deps, c, b)))

    @app.action(kit.LINK)
    def on_link(ack: Ack) -> None:
        ack()  # a link-out button: Slack opens the URL, we only acknowledge


def _open_match(deps: Deps, client: WebClient, body: dict[str, Any]) -> None:
    channel, thread_ts = handoff.origin_of(body)
    matchform.open_form(deps, client, trigger_id=body["trigger_id"], user=body["user"]["id"], channel=channel,
                        thread_ts=thread_ts)
