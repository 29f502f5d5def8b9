"""`kakehashi serve`: the Slack app, over Socket Mode (default) or Slack's HTTP requests (--http).

The lead's bot/cli.py adds it with `cli_serve.register(sub)`.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from types import FrameType

from filelock import Timeout
from slack_sdk.errors import SlackApiError

from bot.cli_common import make_answerer, make_editor
from core.settings import Settings, SettingsError
from retrieval.answer import make_chat_model
from retrieval.engine import embedded_store_lock, ingest, open_index

log = logging.getLogger("kakehashi.serve")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="run the Slack app: Socket Mode, or --http to serve Slack's requests at /slack/events"
    )
    p.add_argument(
        "--http",
        action="store_true",
        help="serve HTTP (Events API, commands, interactivity) at /slack/events instead of connecting over Socket Mode",
    )
    p.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    p.add_argument("--host", default="0.0.0.0", help="HTTP address to bind (default 0.0.0.0)")
    p.set_defaults(func=cmd_serve)
    return p


def check_slack_settings(settings: Settings, *, http: bool) -> None:
    """Everything `serve` needs, checked before anything slow; one message naming each problem."""
    problems = []
    token = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else ""
    if not token:
        problems.append("SLACK_BOT_TOKEN is not set (the xoxb-... bot token from the app's OAuth & Permissions page)")
    elif not token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if http:
        if not (settings.slack.signing_secret and settings.slack.signing_secret.get_secret_value()):
            problems.append(
                "SLACK_SIGNING_SECRET is not set (Basic Information > App Credentials); "
                "HTTP mode verifies every request with it"
            )
    else:
        app_token = settings.slack.app_token.get_secret_value() if settings.slack.app_token else ""
        if not app_token:
            problems.append(
                "SLACK_APP_TOKEN is not set (an xapp-... app-level token with connections:write); "
                "Socket Mode needs it, or use --http"
            )
        elif not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    if not settings.slack.supporters_channel:
        problems.append(
            "KAKEHASHI_SUPPORTERS_CHANNEL is not set (the channel ID, e.g. C0123456789, where "
            "hand-offs to human supporters are posted)"
        )
    elif not _CHANNEL_ID.match(settings.slack.supporters_channel):
        problems.append("KAKEHASHI_SUPPORTERS_CHANNEL must be a channel ID such as C0123456789, not a name")
    if not re.match(r"^https?://", settings.slack.api_url):
        problems.append("SLACK_API_URL must be an http(s) URL")
    if problems:
        raise SettingsError("cannot start the Slack app: " + "; ".join(problems))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so the other subcommands do not pay for bolt.
    from bot.slack.app import build_app, make_client
    from bot.slack.gapsreport import start_weekly_gaps
    from bot.slack.outbox import Outbox
    from bot.slack.server import EVENTS_PATH, serve_http, serve_socket_mode
    from bot.store import DeskStore, StoreError, parsed_safe
    from retrieval.live import LiveKnowledge

    check_slack_settings(settings, http=args.http)
    if not 0 < args.port < 65536:
        raise SettingsError(f"--port must be between 1 and 65535, not {args.port}")
    logging.getLogger("kakehashi").setLevel(min(logging.getLogger().level, logging.INFO))

    client = make_client(settings)
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        raise SettingsError(f"Slack rejected SLACK_BOT_TOKEN: {exc.response.get('error')}") from exc
    except OSError as exc:
        raise SettingsError(f"cannot reach the Slack Web API at {settings.slack.api_url}: {exc}") from exc
    try:
        store = DeskStore(url=settings.storage.effective_database_url)
    except StoreError as exc:
        raise SettingsError(
            f"KAKEHASHI_DATABASE_URL ({parsed_safe(settings.storage.effective_database_url)}): {exc}"
        ) from exc

    store_lock = embedded_store_lock(settings)
    if store_lock is not None:
        try:
            store_lock.acquire(timeout=0)
        except Timeout as exc:
            raise SettingsError(
                f"another kakehashi process is serving from the embedded index in {settings.storage.data_dir}; the embedded "
                "store takes one process. Run several bots against a Chroma server (KAKEHASHI_CHROMA_HOST)"
            ) from exc
    editor = make_editor(settings)
    kb = editor.load()
    index = open_index(settings)
    # Incremental: whatever changed while no bot was running is indexed now, the rest is skipped.
    report = ingest(settings, index, kb=kb)
    if report.embedded:
        print(f"kakehashi: indexed {report.embedded} new or changed passages in {report.seconds:.1f}s", file=sys.stderr)
    chat_model = make_chat_model(settings)
    answerer = make_answerer(settings, index, chat_model)
    live = LiveKnowledge(settings=settings, editor=editor, index=index, answerer=answerer, chat_model=chat_model, kb=kb)
    # One worker per process; every process sharing the database shares the outbox's rows.
    outbox = Outbox(store=store, client=client, logger=logging.getLogger("kakehashi.slack.outbox")).start()
    app = build_app(settings=settings, store=store, client=client, live=live, outbox=outbox)
    start_weekly_gaps(settings=settings, store=store, answerer=answerer, client=client, logger=log)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    who = f"{identity.get('user')} in {identity.get('team')}"
    try:
        if args.http:

            def ready(server: object) -> None:
                print(
                    f"kakehashi: serving Slack as {who} at http://{args.host}:{args.port}{EVENTS_PATH}",
                    file=sys.stderr,
                    flush=True,
                )

            try:
                serve_http(app, host=args.host, port=args.port, on_ready=ready)
            except OSError as exc:
                raise SettingsError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        else:
            print(f"kakehashi: connecting to Slack as {who} over Socket Mode", file=sys.stderr, flush=True)
            assert settings.slack.app_token is not None
            serve_socket_mode(app, app_token=settings.slack.app_token.get_secret_value())
    finally:
        outbox.stop()  # what it has not delivered stays in the database for the next process
    return 0
