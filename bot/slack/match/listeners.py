"""「支援制度・VC・CDMOを探す」 and the match form's submission. The form closes at once; the matching runs
after the acknowledgement (a lazy listener)."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blockkit import JSON
from bot.slack.deps import Deps
from bot.slack.edge import guarded, origin_of
from bot.slack.ids import MATCH_VIEW, OPEN_MATCH
from bot.slack.match import form
from bot.slack.match.blocks import match_form_text, match_form_values
from prompts.messages import t


def _match_errors(view: JSON) -> dict[str, str]:
    text = match_form_text(match_form_values(view["state"]["values"]))
    return {} if text.strip() else {"free_text": t("slack_match_empty", "ja")}


def _open_match(deps: Deps, client: WebClient, body: JSON) -> None:
    channel, thread_ts = origin_of(body)
    form.open_form(
        deps, client, trigger_id=body["trigger_id"], user=body["user"]["id"], channel=channel, thread_ts=thread_ts
    )


def register(app: App, deps: Deps) -> None:
    app.action(OPEN_MATCH)(guarded(deps, "match form", lambda c, b, _: _open_match(deps, c, b)))

    def ack_match(ack: Ack, view: JSON) -> None:
        errors = _match_errors(view)
        ack(response_action="errors", errors=errors) if errors else ack()

    def run_match(body: JSON, client: WebClient) -> None:
        if not _match_errors(body["view"]):
            form.submit_form(deps, client, body)

    app.view(MATCH_VIEW)(ack=ack_match, lazy=[run_match])
