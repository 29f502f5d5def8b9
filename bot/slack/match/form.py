"""Matchmaking from the modal form: opened by a button or `/kakehashi match` with no text."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot.slack import guards
from bot.slack.answers.answering import match_and_post
from bot.slack.blockkit import JSON
from bot.slack.deps import Deps, Place
from bot.slack.match.blocks import MatchForm, match_form_text, match_form_values, match_modal
from retrieval.profile import Profile, extract_profile


def open_form(
    deps: Deps,
    client: WebClient,
    *,
    trigger_id: str,
    user: str,
    channel: str | None,
    thread_ts: str | None,
    initial_text: str = "",
) -> None:
    """The form, with where its results go sealed for `user` (a forged form cannot post into another
    person's thread)."""
    metadata = guards.seal({"c": channel, "t": thread_ts}, user=user, secret=guards.seal_key(deps.settings))
    client.views_open(trigger_id=trigger_id, view=match_modal(private_metadata=metadata, initial_text=initial_text))


def form_profile(values: MatchForm) -> Profile:
    """The form's choices as a profile, with whatever the free text adds to them."""
    free = extract_profile(values["free_text"]) if values["free_text"] else Profile()

    def both(chosen: list[str], extracted: list[Any]) -> list[Any]:
        return [*chosen, *(str(x) for x in extracted if str(x) not in chosen)]

    return Profile.model_validate(
        {
            "who": both([values["who"]] if values["who"] else [], free.who),
            "pre_founding": values["pre_founding"] or free.pre_founding,
            "stages": both([values["stage"]] if values["stage"] else [], free.stages),
            "modalities": both(values["modalities"], free.modalities),
            "disease_areas": [str(x) for x in free.disease_areas],
            "needs": both(values["needs"], free.needs),
            "destinations": [str(x) for x in free.destinations],
            "free_text": values["free_text"],
        }
    )


def submit_form(deps: Deps, client: WebClient, body: JSON) -> None:
    """Results go where the form was opened from: in a channel, privately to the founder (their stage
    and needs are theirs to share, with 「チャンネルに共有」); in the DM, or from the App Home, to the DM."""
    view = body["view"]
    user = body["user"]["id"]
    meta = guards.opened_form(deps, client, body, what="match form")
    if meta is None:  # not the form we opened for this user: its channel and thread cannot be trusted
        return
    team = (body.get("team") or {}).get("id")
    values = match_form_values(view["state"]["values"])
    channel = meta.get("c") or user
    place = Place(channel=channel, thread_ts=meta.get("t"), user_id=user, team_id=team)
    private = None
    if channel.startswith(("C", "G")):

        def private(*, text: str, blocks: list[JSON] | None = None, **_: Any) -> None:
            client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks, thread_ts=meta.get("t"))

    match_and_post(
        deps,
        client,
        text=match_form_text(values),
        place=place,
        surface="match_form",
        profile=form_profile(values),
        private=private,
    )
