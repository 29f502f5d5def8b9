"""`/kakehashi ask …`, `/kakehashi match …`, `/kakehashi help`; `/kakehashi kb …` (staff) is in kb/commands.py.

Slack allows three seconds: the acknowledgement goes out at once and the work runs after it
(bolt's lazy listeners). Everything here is private to the asker, as Slack's own default for slash
commands is: the "checking…" note is replaced by the answer through the response_url, and the
answer carries 「チャンネルに共有」 for when the asker wants the channel to see it."""

from __future__ import annotations

import difflib
import re

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.slack.answers.answering import answer_and_post, match_and_post
from bot.slack.blockkit import JSON, section
from bot.slack.deps import Deps, Place
from bot.slack.edge import report_failure
from bot.slack.home import help_blocks
from bot.slack.kb import commands as kb_commands
from bot.slack.match import form as matchform
from bot.slack.text import command_words, escape_mrkdwn, shorten, slack_to_plain
from prompts.messages import t
from retrieval.language import detect_language

COMMAND = "/kakehashi"
_SUBCOMMANDS = command_words("slack_command_words_", ("ask", "match", "help", "kb"))


_COMMAND_LIKE = re.compile(r"^[a-z][a-z_-]{0,11}$")  # `hepl`, `asdf`: a mistyped command, not a question


def parse(text: str | None) -> tuple[str, str]:
    """(subcommand, rest); text without a known subcommand is a question, except a lone lower-case
    word, which is a mistyped subcommand: ("unknown", word)."""
    text = (text or "").strip()
    if not text:
        return "help", ""
    head, _, rest = text.partition(" ")
    sub = _SUBCOMMANDS.get(head.lower())
    if sub:
        return sub, rest.strip()
    if not rest and _COMMAND_LIKE.match(head):
        return "unknown", head
    return "ask", text


def unknown_text(word: str, language: str) -> str:
    close = difflib.get_close_matches(word.lower(), [k for k in _SUBCOMMANDS if k.isascii()], n=1, cutoff=0.6)
    hint = t("slack_did_you_mean", language, command=close[0]) if close else ""
    return t("slack_unknown_command", language, word=escape_mrkdwn(word), hint=hint).strip()


def register(app: App, deps: Deps) -> None:
    def acknowledge(ack: Ack, command: JSON) -> None:
        sub, rest = parse(command.get("text"))
        language = detect_language(rest) if rest else "ja"
        if sub == "kb":
            kb_commands.acknowledge(deps, ack, command, rest)
        elif sub == "help":
            ack(text="Kakehashi", blocks=help_blocks(language))
        elif sub == "unknown":
            ack(text=unknown_text(rest, "ja"), blocks=[section(unknown_text(rest, "ja")), *help_blocks("ja")])
        elif sub == "ask" and not rest:
            ack(text=t("slack_empty_ask", language))
        elif sub == "match" and not rest:
            ack()  # the form opens from the lazy listener, with the trigger id
        elif sub == "match":
            ack(text=t("slack_working_match", language))
        else:
            ack(text=f"{t('slack_working', language)}\n>{escape_mrkdwn(shorten(slack_to_plain(rest), 200))}")

    def work(command: JSON, client: WebClient, context: BoltContext, respond: Respond) -> None:
        sub, rest = parse(command.get("text"))
        if sub in ("help", "unknown") or (sub == "ask" and not rest):
            return
        if sub == "kb":
            kb_commands.work(deps, client, command, rest, respond)
            return
        place = Place(channel=command["channel_id"], user_id=command["user_id"], team_id=command.get("team_id"))
        if sub == "match" and not rest:
            try:
                matchform.open_form(
                    deps,
                    client,
                    trigger_id=command["trigger_id"],
                    user=command["user_id"],
                    channel=command["channel_id"],
                    thread_ts=None,
                )
            except Exception as exc:  # noqa: BLE001 - the Slack edge
                report_failure(deps.logger, client, what="opening the match form", error=exc, place=place)
            return
        run = match_and_post if sub == "match" else answer_and_post
        kwargs: JSON = {"text": rest} if sub == "match" else {"raw_text": rest}
        run(deps, client, place=place, surface="command", bot_user_id=context.bot_user_id, private=respond, **kwargs)

    app.command(COMMAND)(ack=acknowledge, lazy=[work])
