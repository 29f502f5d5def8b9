"""Hand-off and the supporters' buttons: 「相談員につなぐ」 and its form, 担当する / 対応済みにする on the card,
and staff's 回答として登録 (from a resolved card or a gaps-report topic) with its form."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack.blockkit import JSON
from bot.slack.deps import Deps
from bot.slack.edge import guarded, report_failure
from bot.slack.handoff import curate, handlers
from bot.slack.handoff.blocks import handoff_form_values
from bot.slack.ids import CURATE, CURATE_GAP, CURATE_VIEW, HANDOFF, HANDOFF_VIEW, RESOLVE, TAKE
from prompts.messages import t


def _handoff_errors(view: JSON) -> dict[str, str]:
    values = handoff_form_values(view["state"]["values"])
    return {} if values["topic"] else {"topic": t("slack_handoff_topic_missing", "ja")}


def register(app: App, deps: Deps) -> None:
    app.action(HANDOFF)(guarded(deps, "hand-off form", lambda c, b, _: handlers.open_form(deps, c, b)))
    app.action(TAKE)(guarded(deps, "take", lambda c, b, _: handlers.change_state(deps, c, b, action="take")))
    app.action(RESOLVE)(guarded(deps, "resolve", lambda c, b, _: handlers.change_state(deps, c, b, action="resolve")))
    app.action(CURATE)(guarded(deps, "curate form", lambda c, b, _: curate.open_form(deps, c, b)))
    app.action(CURATE_GAP)(guarded(deps, "curate form", lambda c, b, _: curate.open_from_gap(deps, c, b)))

    def ack_handoff(ack: Ack, view: JSON) -> None:
        errors = _handoff_errors(view)
        ack(response_action="errors", errors=errors) if errors else ack()

    def run_handoff(body: JSON, client: WebClient, context: BoltContext) -> None:
        if not _handoff_errors(body["view"]):
            handlers.submit_form(deps, client, body, bot_user_id=context.bot_user_id)

    app.view(HANDOFF_VIEW)(ack=ack_handoff, lazy=[run_handoff])

    @app.view(CURATE_VIEW)
    def on_curate(ack: Ack, body: JSON, client: WebClient) -> None:
        # Checked before the form closes, so a problem shows on its field; saved after (the editor's write and
        # the refresh take longer than Slack's 3 s).
        try:
            errors, data = curate.check_form(deps, body)
        except Exception as exc:  # noqa: BLE001 - the Slack edge: said on the form
            report_failure(deps.logger, client, what="checking a curated answer form", error=exc, place=None)
            errors, data = {"answer_ja": t("slack_curate_check_failed", "ja")}, None
        if errors or data is None:
            ack(response_action="errors", errors=errors or {"answer_ja": t("slack_curate_not_registered", "ja")})
            return
        ack()
        curate.save(deps, client, body, data)
