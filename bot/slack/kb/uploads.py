"""Source documents uploaded in Slack: a staff member drops a PDF, Word (.docx), Markdown or text
file in the supporters' channel or in a DM with the bot, and it becomes answerable.

The file's size (from the event) is checked before anything is downloaded; the download sends the
bot token only to Slack's file host, stops at the size limit, and refuses the HTML login page Slack
serves when the token may not read the file. The editor extracts the text; a file it cannot read
gets its reason in the thread and nothing changes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml
from slack_sdk import WebClient

from bot.slack import blockkit, ids
from bot.slack.blockkit import JSON, button, section
from bot.slack.deps import Deps, Place
from bot.slack.edge import ephemeral, post, report_failure
from bot.slack.errors import SlackError
from bot.slack.ids import HANDOFF
from bot.slack.kb import documents
from bot.slack.kb.documents import DocumentDetails
from bot.slack.kb.flow import actor_for, announce_change, current_kb, editor_of, refresh_and_tell
from bot.slack.text import escape_mrkdwn, shorten
from knowledge.errors import KnowledgeError, NothingToChangeError, ReplaceNotConfirmedError
from knowledge.extract import SUPPORTED_EXTENSIONS, DocumentReadError
from knowledge.journal import Change
from knowledge.loader import DOCUMENTS_DIR, DOCUMENTS_MANIFEST, Document
from knowledge.schema import DocumentMeta
from prompts.messages import MESSAGES, t
from retrieval.chunking import document_chunks
from retrieval.language import detect_language

MAX_FILES_PER_MESSAGE = 5
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
DOWNLOAD_TIMEOUT_S = 60
_MIB = 1024 * 1024
_CHUNK = 64 * 1024


class DownloadError(SlackError):
    """Slack did not hand over the file's bytes."""


def _extension(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def readable(file: JSON) -> bool:
    return _extension(file_name(file)) in SUPPORTED_EXTENSIONS


def file_name(file: JSON) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "file")


def shown_name(name: str) -> str:
    """A file name safe inside `code` in mrkdwn."""
    return escape_mrkdwn(shorten(name, 120)).replace("`", "'")


def is_upload(deps: Deps, event: JSON) -> bool:
    """A message that adds documents: any file in a DM with the bot; in the supporters' channel, a
    readable file posted at the top level (files shared in a consultation's thread are conversation)."""
    files = event.get("files") or []
    if not files:
        return False
    if event.get("channel_type") == "im":
        return True
    supporters = deps.settings.slack.supporters_channel
    return (
        bool(supporters)
        and event.get("channel") == supporters
        and not event.get("thread_ts")
        and any(readable(f) for f in files)
    )


def file_offer_blocks(language: str) -> list[JSON]:
    return [
        section(t("slack_file_offer", language)),
        {"type": "actions", "elements": [button(t("slack_handoff", language), HANDOFF, "", style="primary")]},
    ]


def handle(deps: Deps, client: WebClient, event: JSON) -> None:
    user = str(event.get("user") or "")
    channel = str(event["channel"])
    place = Place(channel=channel, thread_ts=event.get("thread_ts") or event.get("ts"), user_id=user)
    in_dm = event.get("channel_type") == "im"
    files = list(event.get("files") or [])
    language = detect_language(event.get("text") or "") if (event.get("text") or "").strip() else "ja"
    names = ", ".join(file_name(f) for f in files)
    try:
        if in_dm and not deps.is_staff(user):
            # A founder's file (「この資料を見てもらえますか？」): the bot cannot read it for them, a person can.
            post(
                client,
                place,
                text=t("slack_file_offer", language),
                blocks=file_offer_blocks(language),
                logger=deps.logger,
            )
            return
        if deps.editor is None:
            if in_dm:
                post(client, place, text=t("slack_kb_unavailable", language), logger=deps.logger)
            return
        if not deps.check_staff(user, attempted=f"upload {names} in {channel}"):
            if in_dm:
                post(client, place, text=t("slack_kb_upload_refused", language), logger=deps.logger)
            else:
                ephemeral(
                    client,
                    channel=channel,
                    user=user,
                    text=t("slack_kb_upload_refused", language),
                    thread_ts=event.get("thread_ts"),
                    logger=deps.logger,
                )
            return
        if not in_dm:
            files = [f for f in files if readable(f)]  # other files in the channel are conversation
        for file in files[:MAX_FILES_PER_MESSAGE]:
            add_file(deps, client, file, user=user, place=place, language=language)
        if len(files) > MAX_FILES_PER_MESSAGE:
            post(
                client,
                place,
                text=t("slack_kb_upload_too_many", language, limit=MAX_FILES_PER_MESSAGE),
                logger=deps.logger,
            )
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(
            deps.logger, client, what="adding an uploaded document", error=exc, place=place, language=language
        )


def _unreadable_text(name: str, *, reason: str, detail: str, language: str) -> str:
    key = f"slack_read_failure_{reason}"
    why = t(key, language) if key in MESSAGES else ""
    return t(
        "slack_kb_upload_unreadable",
        language,
        name=shown_name(name),
        why=why,
        detail=escape_mrkdwn(shorten(detail, 500)),
    )


def add_file(
    deps: Deps, client: WebClient, file: JSON, *, user: str, place: Place, language: str, replace: str | None = None
) -> None:
    """One uploaded file: checked, downloaded, added, announced in the thread, then made searchable.
    `replace`: the id of the document whose text staff confirmed this file replaces."""
    name = file_name(file)
    limit_mb = deps.settings.kb.max_upload_mb
    if file.get("file_access") == "check_file_info" or not file.get("url_private_download"):
        file = client.files_info(file=file["id"])["file"]
        name = file_name(file)
    size = int(file.get("size") or 0)
    if size > limit_mb * _MIB:
        post(
            client,
            place,
            logger=deps.logger,
            text=_unreadable_text(
                name,
                reason="too_large",
                language=language,
                detail=f"{name} is {size / _MIB:.1f} MB; the limit is {limit_mb} MB.",
            ),
        )
        return
    if not readable(file):
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        post(
            client,
            place,
            logger=deps.logger,
            text=_unreadable_text(
                name,
                reason="unsupported_type",
                language=language,
                detail=f"{name}: {_extension(name) or 'files without an extension'} not supported; upload one of "
                f"{supported}.",
            ),
        )
        return
    channel, ts = post(
        client, place, text=t("slack_kb_upload_working", language, name=shown_name(name)), logger=deps.logger
    )
    try:
        data = download(
            str(file.get("url_private_download")),
            token=str(client.token or ""),
            max_bytes=limit_mb * _MIB,
            api_url=deps.settings.slack.api_url,
        )
        change = editor_of(deps).add_document(name=name, data=data, actor=actor_for(user), doc_id=replace)
    except DownloadError as exc:
        deps.logger.warning("download of %s (%s) failed: %s", file.get("id"), name, exc)
        client.chat_update(
            channel=channel, ts=ts, text=_unreadable_text(name, reason="download", detail=str(exc), language=language)
        )
        return
    except DocumentReadError as exc:
        deps.logger.info("upload %s refused: %s (%s)", name, exc.reason, exc)
        client.chat_update(
            channel=channel, ts=ts, text=_unreadable_text(name, reason=exc.reason, detail=str(exc), language=language)
        )
        return
    except NothingToChangeError:
        client.chat_update(channel=channel, ts=ts, text=t("slack_kb_upload_same", language, name=shown_name(name)))
        return
    except ReplaceNotConfirmedError as exc:  # a name that happens to be a document's id: ask, never replace
        text = t(
            "slack_kb_upload_replace_ask",
            language,
            name=shown_name(name),
            doc_id=exc.doc_id,
            title=escape_mrkdwn(shorten(exc.title, 120)),
        )
        value = json.dumps({"d": exc.doc_id, "s": file.get("id")}, ensure_ascii=False)
        client.chat_update(
            channel=channel,
            ts=ts,
            text=text,
            blocks=[
                blockkit.section(text),
                blockkit.actions(
                    [blockkit.button(t("slack_kb_replace_button", language), ids.KB_DOCUMENT_REPLACE, value)],
                    block_id="kk_kb_replace",
                ),
            ],
        )
        return
    except KnowledgeError as exc:
        client.chat_update(channel=channel, ts=ts, text=t("slack_kb_failed", language, error=escape_mrkdwn(str(exc))))
        return
    meta, passages = added_document(change, chunk_chars=deps.settings.search.chunk_chars)
    title = meta.title if meta else name
    doc_id = meta.id if meta else change.records[0]
    text = t(
        "slack_kb_upload_added",
        language,
        title=escape_mrkdwn(shorten(title, 120)),
        change=change.id,
        doc_id=doc_id,
        passages=passages,
    )
    if change.warnings:
        text += "\n" + "\n".join(
            t("slack_kb_upload_warning", language, warning=escape_mrkdwn(w)) for w in change.warnings
        )
    value = json.dumps({"d": doc_id, "s": file.get("id"), "n": name[:300]}, ensure_ascii=False)

    def render(note: str) -> tuple[str, list[JSON]]:
        return f"{text}\n{note}", [
            blockkit.section(text),
            blockkit.actions(
                [blockkit.button(t("slack_kb_document_edit_button", language), ids.KB_DOCUMENT_EDIT, value)],
                block_id="kk_kb_document",
            ),
            blockkit.context(note),
        ]

    first_text, first_blocks = render(t("slack_kb_refreshing", language))
    client.chat_update(channel=channel, ts=ts, text=first_text, blocks=first_blocks)
    refresh_and_tell(deps, client, channel=channel, ts=ts, render=render, language=language)


def added_document(change: Change, *, chunk_chars: int) -> tuple[DocumentMeta | None, int]:
    """The manifest entry and passage count of the document a change added (read from the change itself)."""
    manifest_rel = f"{DOCUMENTS_DIR}/{DOCUMENTS_MANIFEST}"
    manifest = next((f.after for f in change.files if f.path == manifest_rel), None)
    entries = yaml.safe_load(manifest or "") or []
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") in change.records), None)
    if entry is None:
        return None, 0
    meta = DocumentMeta.model_validate(entry)
    text = next((f.after for f in change.files if f.path == f"{DOCUMENTS_DIR}/{meta.file}"), None)
    if text is None:
        return meta, 0
    document = Document(meta=meta, path=Path(DOCUMENTS_DIR) / meta.file, text=text)
    return meta, len(document_chunks(document, chunk_chars=chunk_chars))


# --- downloading from Slack -----------------------------------------------------------------------


def allowed_file_url(url: str, *, api_url: str) -> bool:
    """Slack's file host over HTTPS, or the host of the configured Web API (a local fake in tests)."""
    parts = urlsplit(url)
    api = urlsplit(api_url)
    if parts.scheme == "https" and parts.hostname in SLACK_FILE_HOSTS:
        return True
    return bool(parts.hostname) and (parts.scheme, parts.hostname, parts.port) == (api.scheme, api.hostname, api.port)


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an allowed host: urllib would otherwise carry the token along."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not allowed_file_url(newurl, api_url=self.api_url):
            raise DownloadError(f"Slack redirected the download to {urlsplit(newurl).hostname}; not followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, *, token: str, max_bytes: int, api_url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The bytes at a file's url_private_download, with the bot token in the Authorization header
    (Slack's documented way); at most max_bytes + 1 are read, so a lying size field cannot flood us."""
    if not allowed_file_url(url, api_url=api_url):
        raise DownloadError(f"not a Slack file URL ({urlsplit(url).hostname}); not downloaded")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(_SameHostRedirects(api_url))
    try:
        with opener.open(request, timeout=timeout) as response:
            content_type = str(response.headers.get("Content-Type") or "")
            chunks, total = [], 0
            while total <= max_bytes:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"Slack answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot reach Slack's file host: {getattr(exc, 'reason', exc)}") from exc
    data = b"".join(chunks)
    if total > max_bytes:
        raise DownloadError(f"the file is over the {max_bytes // _MIB} MB limit")
    if content_type.startswith("text/html") and data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        # What Slack serves instead of the file when the token may not read it.
        raise DownloadError(
            "Slack sent its sign-in page instead of the file: the app needs the files:read scope "
            "(reinstall it after adding the scope)"
        )
    return data


# --- the document details form --------------------------------------------------------------------


def confirm_replace(deps: Deps, client: WebClient, body: JSON, *, value: str, user: str) -> None:
    """「置き換える」 under an upload whose name matched a document's id: the file, fetched again, replaces
    that document's text (the caller checked that `user` is staff)."""
    try:
        target = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("not a replace button") from None
    if not isinstance(target, dict) or not target.get("d") or not target.get("s"):
        raise ValueError("not a replace button")
    file = client.files_info(file=str(target["s"]))["file"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or user
    message = body.get("message") or {}
    place = Place(channel=channel, thread_ts=message.get("thread_ts") or message.get("ts"), user_id=user)
    add_file(deps, client, file, user=user, place=place, language="ja", replace=str(target["d"]))


def open_document_form(deps: Deps, client: WebClient, *, trigger_id: str | None, value: str) -> None:
    """「詳細を編集」 under an added document: its manifest entry in a form."""
    try:
        target = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("not a document button") from None
    # The knowledge in memory, not a fresh read of every file: views.open must come within Slack's 3 s.
    kb = current_kb(deps)
    document = next((d for d in kb.documents if d.meta.id == target.get("d")), None)
    if document is None:
        raise ValueError(f"no document {target.get('d')!r} (it may have been reverted)")
    meta = document.meta
    client.views_open(
        trigger_id=trigger_id,
        view=documents.document_modal(
            file=meta.file,
            title=meta.title,
            ministry=meta.ministry.value,
            date=meta.date,
            description=meta.description_ja,
            doc_id=meta.id,
            origin={"s": target.get("s"), "n": target.get("n") or meta.original or meta.file},
        ),
    )


def save_document_details(deps: Deps, client: WebClient, *, user: str, meta: JSON, values: DocumentDetails) -> None:
    """After the details form closes: the manifest entry changes, the extracted text stays."""
    place = Place(channel=user, user_id=user)
    language = "ja"
    try:
        change = editor_of(deps).update_document_details(str(meta.get("d")), actor=actor_for(user), **values)
    except NothingToChangeError:
        post(
            client,
            place,
            text=t("slack_kb_nothing", language, error=shown_name(str(meta.get("d")))),
            logger=deps.logger,
        )
        return
    except KnowledgeError as exc:
        post(client, place, text=t("slack_kb_failed", language, error=escape_mrkdwn(str(exc))), logger=deps.logger)
        return
    except Exception as exc:  # noqa: BLE001 - the Slack edge
        report_failure(deps.logger, client, what="saving document details", error=exc, place=place)
        return
    announce_change(deps, client, user=user, change=change, language=language)
