"""Checks on what a Slack payload claims, made before anything changes: that a signed request is not a
replay, that the person taking or resolving a consultation is a supporter, and that an id in a button value
or form metadata belongs to the person acting, where they act.

Slack signs requests, not the values inside them, and a signature stays valid for five minutes: anyone
holding one valid request can send it again, and anyone able to sign can put any id in a button value. So
every id is looked up and checked against the acting user (and the channel), and form metadata is sealed
with an HMAC bound to the user who opened the form."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blockkit import JSON, read_metadata
from bot.slack.deps import Deps, Place
from bot.slack.edge import new_reference, post
from bot.slack.middleware import Middleware
from bot.slack.staff import CachedMembers, StaffDirectory
from bot.store import AnswerRecord, DeskStore, StoreError
from core.settings import Settings
from prompts.messages import t

MEMBERS_TTL_S = 300.0
_SEAL = "s"
_SEALED_FOR = "u"


# --- replays ---------------------------------------------------------------------------------------


def refuse_replays(*, store: DeskStore, logger: logging.Logger) -> Middleware:
    """A signed request seen before (the same signature: the same bytes at the same timestamp) is
    acknowledged and dropped, in every process sharing the database. Events are left to the event_id
    claim (dedupe_events), which also covers Slack's own retries. Socket Mode carries no signatures:
    Slack hands each envelope over once. With the database down it fails open, as the event claim does."""

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        body = req.body or {}
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if not signature or body.get("type") == "event_callback":
            return next()
        try:
            first = store.claim_key(signature, scope="request")
        except StoreError as exc:
            logger.error("cannot check a request for replay; handling it [ref %s]: %s", new_reference(), exc)
            first = True
        if not first:
            logger.warning(
                "dropped a replayed request (%s from %s)",
                body.get("type") or body.get("command"),
                (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else body.get("user_id"),
            )
            return BoltResponse(status=200, body="")
        return next()

    return middleware


# --- supporters ------------------------------------------------------------------------------------


class SupporterDirectory:
    """Who may take and resolve consultations: staff (their IDs or user group) and the members of the
    supporters' channel (conversations.members, cached for a few minutes; when Slack cannot be asked,
    only staff, never everyone)."""

    def __init__(
        self,
        *,
        staff: StaffDirectory | None,
        channel: str | None,
        client: WebClient | None,
        logger: logging.Logger,
        ttl_s: float = MEMBERS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.staff = staff
        self.channel = channel or None
        self._client = client
        self._logger = logger
        self._members = CachedMembers(
            fetch=self._fetch_members,
            what=f"conversations.members for {self.channel}",
            consequence="only staff count as supporters",
            logger=logger,
            ttl_s=ttl_s,
            clock=clock,
        )

    def _fetch_members(self) -> frozenset[str]:
        assert self._client is not None and self.channel
        members: set[str] = set()
        cursor = None
        while True:
            response = self._client.conversations_members(channel=self.channel, cursor=cursor, limit=1000)
            members |= {str(m) for m in response.get("members") or []}
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)

    def channel_members(self) -> frozenset[str]:
        if not self.channel or self._client is None:
            return frozenset()
        return self._members.get()

    def is_supporter(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        if self.staff is not None and self.staff.is_staff(user_id):
            return True
        return user_id in self.channel_members()

    def check(self, user_id: str | None, *, attempted: str) -> bool:
        """is_supporter, with a WARNING naming who tried what when the answer is no."""
        if self.is_supporter(user_id):
            return True
        self._logger.warning("refused %s: %s is not a supporter", attempted, user_id or "(unknown user)")
        return False


def consultation_place_ok(body: JSON, *, supporters_channel: str | None) -> bool:
    """Take and resolve buttons live on the card in the supporters' channel and on the App Home."""
    if (body.get("view") or {}).get("type") == "home":
        return True
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return bool(supporters_channel) and channel == supporters_channel


# --- ids in payloads -------------------------------------------------------------------------------


def owned_answer(
    store: DeskStore, answer_id: str | None, *, user: str, channel: str | None, logger: logging.Logger
) -> AnswerRecord | None:
    """The answer a button names, when the acting user asked it and the button was clicked where the
    answer was posted; None otherwise (logged: a forged or misrouted id)."""
    if not answer_id:
        return None
    record = store.get_answer(answer_id)
    if record is None:
        return None
    if record.user_id != user or (channel is not None and record.channel_id not in (channel, None)):
        logger.warning(
            "refused answer %s named by %s in %s: asked by %s in %s",
            answer_id,
            user,
            channel,
            record.user_id,
            record.channel_id,
        )
        return None
    return record


def answer_in_place(
    store: DeskStore, answer_id: str | None, *, channel: str | None, logger: logging.Logger
) -> tuple[bool, AnswerRecord | None]:
    """For ratings, which anyone who sees an answer may give: (whether the id may be used here, the answer).
    An id of an answer posted in another channel is refused."""
    if not answer_id:
        return True, None
    record = store.get_answer(answer_id)
    if record is None:
        return True, None  # an answer from before the desk database (or another one): nothing to protect
    if channel is not None and record.channel_id not in (channel, None):
        logger.warning(
            "refused a rating of answer %s from %s: it was posted in %s", answer_id, channel, record.channel_id
        )
        return False, None
    return True, record


def refuse_form(deps: Deps, client: WebClient, *, what: str, user: str) -> None:
    """A form submission whose metadata was not sealed for this user: logged, and the user told by DM."""
    deps.logger.warning("refused a %s from %s: its metadata was not sealed for them", what, user)
    try:
        post(client, Place(channel=user, user_id=user), text=t("slack_form_not_yours", "ja"), logger=deps.logger)
    except SlackApiError as exc:
        deps.logger.info("could not tell %s: %s", user, exc)


def seal_key(settings: Settings) -> str:
    """The key form metadata is sealed with: the signing secret (or, in Socket Mode without one, the bot
    token); a secret of this deployment that no user sees."""
    for secret in (settings.slack.signing_secret, settings.slack.bot_token, settings.slack.app_token):
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value()
    raise ValueError("no Slack secret is configured to seal form metadata with")


def _mac(secret: str, data: JSON) -> str:
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def seal(metadata: JSON, *, user: str, secret: str) -> JSON:
    """Form metadata bound to the user who opened the form: unseal refuses it from anyone else, or changed."""
    data = {**metadata, _SEALED_FOR: user}
    return {**data, _SEAL: _mac(secret, data)}


def form_metadata(deps: Deps, body: JSON) -> JSON | None:
    """A submitted form's metadata, if we sealed it for the user who submitted it; else None."""
    return unseal(read_metadata(body["view"]), user=body["user"]["id"], secret=seal_key(deps.settings))


def opened_form(deps: Deps, client: WebClient, body: JSON, *, what: str) -> JSON | None:
    """form_metadata, or None after refusing the submission (logged, and the user told)."""
    meta = form_metadata(deps, body)
    if meta is None:
        refuse_form(deps, client, what=what, user=body["user"]["id"])
    return meta


def unseal(metadata: JSON, *, user: str, secret: str) -> JSON | None:
    """The metadata, if it was sealed for `user` and not changed since; else None."""
    data = {k: v for k, v in metadata.items() if k != _SEAL}
    mark = metadata.get(_SEAL)
    if not isinstance(mark, str) or data.get(_SEALED_FOR) != user:
        return None
    if not hmac.compare_digest(mark, _mac(secret, data)):
        return None
    return {k: v for k, v in data.items() if k != _SEALED_FOR}
