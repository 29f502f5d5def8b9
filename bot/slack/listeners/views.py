"""Modal submissions: 👎 reasons, the hand-off form, the match form, 回答として登録. The form closes at once;
slow work runs after the acknowledgement (lazy listeners)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack import blocks as kit
from bot.slack import curate, feedback, handoff, matchform
from bot.slack.deps import Deps
from bot.slack.edge import report_failure


def _handoff_errors(view: dict[str, Any]) -> dict[str, str]:
    values = kit.handoff_form_values(view["state"]["values"])
    return {} if values["topic"] else {"topic": "相談したいことを入力してください / Please enter a topic"}


def _match_errors(view: dict[str, Any]) -> dict[str, str]:
    text = kit.match_form_text(kit.match_form_values(view["state"]["values"]))
    return {} if text.strip() else {"free_text": "条件を1つ以上選ぶか、状況を書いてください / Please tell me something"}


def register(app: App, deps: Deps) -> None:
    @app.view(kit.FEEDBACK_VIEW)
    def on_feedback(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            feedback.explain_down(deps, client, body)
        except Exception as exc:  # the Slack edge: the user closed a form; log, nowhere to post
            report_failure(deps.logger, client, what="feedback reasons", error=exc, place=None)

    def ack_handoff(ack: Ack, view: dict[str, Any]) -> None:
        errors = _handoff_errors(view)
        ack(response_action="errors", errors=errors) if errors else ack()

    def run_handoff(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        if not _handoff_errors(body["view"]):
            handoff.submit_form(deps, client, body, bot_user_id=context.bot_user_id)

    app.view(kit.HANDOFF_VIEW)(ack=ack_handoff, lazy=[run_handoff])

    def ack_match(ack: Ack, view: dict[str, Any]) -> None:
        errors = _match_errors(view)
        ack(response_action="errors", errors=errors) if errors else ack()

    def run_match(body: dict[str, Any], client: WebClient) -> None:
        if not _match_errors(body["view"]):
            matchform.submit_form(deps, client, body)

    app.view(kit.MATCH_VIEW)(ack=ack_match, lazy=[run_match])

    @app.view(kit.CURATE_VIEW)
    def on_curate(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        # Checked before the form closes, so a problem shows on its field; saved after (the editor's write and
        # the refresh take longer than Slack's 3 s).
        try:
            errors, data = curate.check_form(deps, body)
        except Exception as exc:  # the Slack edge: said on the form
            report_failure(deps.logger, client, what="checking a curated answer form", error=exc, place=None)
            errors, data = {"answer_ja": "確認できませんでした。もう一度お試しください。"}, None
        if errors or data is None:
            ack(response_action="errors", errors=errors or {"answer_ja": "登録できませんでした"})
            return
        ack()
        curate.save(deps, client, body, data)
