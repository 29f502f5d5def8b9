"""`build_app`: the one place the Slack app is wired from the collaborators it is handed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler

from bot.slack import listeners
from bot.slack.blockkit import JSON
from bot.slack.deps import AnswererLike, Deps, MatcherLike
from bot.slack.edge import new_reference
from bot.slack.guards import SupporterDirectory, refuse_replays
from bot.slack.middleware import dedupe_events, ignore_bots
from bot.slack.outbox import Outbox, ShortRateLimitRetryHandler
from bot.slack.sources import LiveSourceCatalog, SourceCatalog
from bot.slack.staff import StaffDirectory, parse_user_ids
from bot.store import DeskStore
from core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from knowledge.editor import KnowledgeEditor
    from retrieval.live import LiveKnowledge

WEB_API_TIMEOUT_S = 30


class _DropRecords(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def make_client(settings: Settings) -> WebClient:
    """The Web API client: Slack's URL from settings (the test seam); a 429 retried after a short Retry-After,
    failed at once after a long one (no listener thread sleeps: answers wait in the outbox instead)."""
    if settings.slack.bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set: the bot token (xoxb-...) from the app's OAuth page")
    base_url = settings.slack.api_url if settings.slack.api_url.endswith("/") else settings.slack.api_url + "/"
    return WebClient(
        token=settings.slack.bot_token.get_secret_value(),
        base_url=base_url,
        timeout=WEB_API_TIMEOUT_S,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            ShortRateLimitRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def build_app(
    *,
    settings: Settings,
    store: DeskStore,
    answerer: AnswererLike | None = None,
    matcher: MatcherLike | None = None,
    catalog: SourceCatalog | None = None,
    client: WebClient | None = None,
    logger: logging.Logger | None = None,
    editor: KnowledgeEditor | None = None,
    live: LiveKnowledge | None = None,
    outbox: Outbox | None = None,
    **app_options: Any,
) -> App:
    """A bolt App answering on every surface; `app_options` go to bolt's App (e.g. token_verification_enabled).

    With `live` (a LiveKnowledge) the bot answers, matches and cites from the current knowledge, staff may
    change it from Slack (`/kakehashi kb`, forms, uploads) through its editor, and each change is searchable
    without a restart: `live` stands in for `answerer`, `matcher`, `catalog` and `editor` when they are not
    given, so a caller hands over the live knowledge once. With `outbox` (started by the caller), answers are
    kept in the desk database until Slack takes them."""
    if live is not None:
        answerer = live if answerer is None else answerer
        matcher = live if matcher is None else matcher
        catalog = LiveSourceCatalog(live) if catalog is None else catalog
        editor = live.editor if editor is None else editor
    if answerer is None:
        raise TypeError("build_app needs an answerer (or live knowledge)")
    logger = logger or logging.getLogger("kakehashi.slack")
    client = client or make_client(settings)
    secret = settings.slack.signing_secret.get_secret_value() if settings.slack.signing_secret else ""
    # bolt also reads SLACK_BOT_TOKEN from the environment and warns that the client wins; the client
    # was made from that same token, so the warning is noise.
    quiet = _DropRecords("As you gave `client` as well")
    logger.addFilter(quiet)
    try:
        app = App(client=client, signing_secret=secret, process_before_response=False, logger=logger, **app_options)
    finally:
        logger.removeFilter(quiet)
    staff = StaffDirectory(
        user_ids=parse_user_ids(settings.slack.staff_user_ids),
        usergroup=settings.slack.staff_usergroup,
        client=client,
        logger=logger,
    )
    supporters = SupporterDirectory(
        staff=staff, channel=settings.slack.supporters_channel, client=client, logger=logger
    )
    deps = Deps(
        settings=settings,
        answerer=answerer,
        matcher=matcher,
        store=store,
        catalog=catalog or SourceCatalog.empty(),
        logger=logger,
        staff=staff,
        editor=editor,
        live=live,
        supporters=supporters,
        outbox=outbox,
    )

    # Bots' posts (ours included) are dropped before the dedupe claim: no database write for them.
    app.use(ignore_bots(logger=logger))
    app.use(dedupe_events(store=store, logger=logger))
    app.use(refuse_replays(store=store, logger=logger))

    @app.error
    def on_error(error: Exception, body: JSON) -> BoltResponse | None:
        # Listeners catch their own failures and tell the user; this is for what slipped past them.
        logger.error(
            "unhandled error [ref %s] in %s: %s",
            new_reference(),
            body.get("type"),
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
        if isinstance(error, ValueError | KeyError | TypeError | AttributeError):
            # A payload missing what its type promises (bolt's own dispatch raises on it): retrying the
            # same bytes cannot help, so Slack hears "bad request" rather than a server error.
            return BoltResponse(status=400, body="Bad Request")
        return None

    listeners.register(app, deps)
    return app
