"""The knowledge editor in Slack, end to end: the real app over HTTP with a fake Slack, a copy of the
knowledge folder, the real editor, live knowledge and index. Staff add and change records in forms
and upload documents; what they add is answered and recommended without a restart; everyone else
changes nothing."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slack import ids
from bot.slack.kb import documents, lines
from bot.slack.kb import forms as kbforms
from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from retrieval.answer import Answerer
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from retrieval.live import LiveKnowledge
from tests import docfactory
from tests.fakeslack import FakeSlack
from tests.kbfiles import DOC, QUOTE, tree_digest
from tests.slack_fixtures import STAFF, SUPPORTERS, Rig, make_rig, posted_text

STAFF2 = "U0STAFF2"  # staff through the user group, not the ID list
GROUP = "S0EDITORS"
NEW_ID = "mhlw-hoshizora-kakusan"
NEW_NAME = "ほしぞら核酸創薬加速事業"
SUMMARY = (
    "希少疾患の核酸医薬に取り組む創業3年以内のスタートアップに、ほしぞら基金から非臨床試験の費用を"
    "最大2億円まで補助する。"
)


def _live_rig(
    base: Settings, fake: FakeSlack, tmp_path: Path, embedder: Embedder, root: Path, **changes: object
) -> Rig:
    settings = base.updated(**{"knowledge_dir": root, "data_dir": tmp_path / "data", **changes})
    index = open_index(settings, embedder=embedder)
    ingest(settings, index)
    editor = KnowledgeEditor(root=root)
    live = LiveKnowledge(settings=settings, editor=editor, index=index, answerer=Answerer(index=index, k=8))
    fake.usergroups[GROUP] = [STAFF2]
    return make_rig(base=settings, fake=fake, tmp_path=tmp_path, editor=editor, live=live, slack_staff_usergroup=GROUP)


@pytest.fixture
def live_rig(
    seed_settings: Settings, fake_slack: FakeSlack, tmp_path: Path, embedder: Embedder, small_knowledge_dir: Path
) -> Iterator[Rig]:
    """A few real records and one deck: quick to index."""
    rig = _live_rig(seed_settings, fake_slack, tmp_path, embedder, small_knowledge_dir)
    yield rig
    rig.close()


@pytest.fixture
def seed_rig(
    seed_settings: Settings, fake_slack: FakeSlack, tmp_path: Path, standin_embedder: Embedder
) -> Iterator[Rig]:
    """A copy of the whole seed knowledge base (VCs and CDMOs included), indexed with the stand-in embedder:
    the forms are under test, not the ranking (and the whole base takes the real model ~1.5 minutes)."""
    from knowledge import SEED_KNOWLEDGE_DIR

    root = tmp_path / "knowledge"
    shutil.copytree(SEED_KNOWLEDGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py", ".*"))
    rig = _live_rig(seed_settings, fake_slack, tmp_path, standin_embedder, root)
    yield rig
    rig.close()


def _editor(rig: Rig) -> KnowledgeEditor:
    return KnowledgeEditor(root=rig.settings.storage.knowledge_dir)


# --- what a staff member types into the form --------------------------------------------------------


def _text(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def _select(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value} if value else None}}


def _multi(*values: str) -> dict[str, Any]:
    return {"value": {"type": "multi_static_select", "selected_options": [{"value": v} for v in values]}}


def _date(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "datepicker", "selected_date": value}}


def program_values(**changes: Any) -> dict[str, Any]:
    values = {
        "id": _text(NEW_ID),
        "name_ja": _text(NEW_NAME),
        "name_en": _text("Hoshizora Nucleic Acid Acceleration"),
        "aliases": _text("ほしぞら事業"),
        "ministry": _select("MHLW"),
        "agency": _select(None),
        "category": _select("program"),
        "summary_ja": _text(SUMMARY),
        "summary_en": _text(None),
        "eligible": _multi("startup"),
        "stages": _multi("non_clinical"),
        "modalities": _multi("nucleic_acid"),
        "disease_areas": _multi("rare"),
        "support": _multi("non_dilutive_funding"),
        "url": _text(None),
        "as_of": _date("2026-04-01"),
        "rounds": _text("第1回 2026-05-01 2026-06-30"),
        "source_document": _select(DOC),
        "source_quote": _text(QUOTE),
    }
    values.update(changes)
    return values


def state_from_view(view: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What Slack sends back for a prefilled form the user did not touch, with `changes` typed in."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        if kind in ("plain_text_input", "url_text_input"):
            state = {"type": kind, "value": element.get("initial_value")}
        elif kind == "static_select":
            state = {"type": kind, "selected_option": element.get("initial_option")}
        elif kind == "multi_static_select":
            state = {"type": kind, "selected_options": element.get("initial_options", [])}
        elif kind == "datepicker":
            state = {"type": kind, "selected_date": element.get("initial_date")}
        else:
            raise AssertionError(kind)
        values[block["block_id"]] = {"value": state}
    values.update(changes)
    return values


def _open(rig: Rig, text: str, *, user: str = STAFF, count: int = 1) -> dict[str, Any]:
    reply = rig.driver.command(text, user=user)
    assert reply.status == 200 and reply.seconds < 3.0
    return rig.fake.wait_for("views.open", count=count)[count - 1].args["view"]


def _dm(user: str) -> str:
    return "D" + user[1:]


def _searchable(rig: Rig, user: str = STAFF, count: int = 1, channel: str | None = None) -> list[Any]:
    """The confirmations (in the staff member's DM, or `channel`) rewritten to say the change is searchable."""
    return rig.fake.wait_for(
        "chat.update",
        lambda c: c.args["channel"] == (channel or _dm(user)) and ":mag:" in str(c.args.get("text")),
        count=count,
        timeout=60,
    )


# --- a record added in Slack is answered and recommended at once ----------------------------------


def test_staff_adds_a_program_in_the_form_and_it_is_answered_and_recommended_without_restart(live_rig: Rig) -> None:
    rig = live_rig
    before = rig.driver.command(f"ask {NEW_NAME}の補助上限は？")
    rig.fake.wait_for("response_url")
    rig.settle()
    assert "2億円" not in posted_text(rig.fake.calls_to("response_url")[0]) and before.status == 200

    view = _open(rig, "kb add program")
    assert view["callback_id"] == ids.KB_RECORD_VIEW
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"][:3] == ["id", "name_ja", "name_en"]
    documents = next(b for b in view["blocks"] if b.get("block_id") == "source_document")["element"]["options"]
    assert DOC in [o["value"] for o in documents]

    reply = rig.driver.submit(view, program_values(), user=STAFF)
    assert reply.status == 200 and not reply.body and reply.seconds < 3.0  # the form closes
    done = _searchable(rig)[0].args["text"]
    assert "（変更 *#1*）" in done and NEW_ID in done and "検索に反映しました" in done  # the staff member's locale

    saved = (rig.settings.storage.knowledge_dir / "programs" / f"{NEW_ID}.yaml").read_text(encoding="utf-8")
    assert NEW_NAME in saved and "nucleic_acid" in saved and QUOTE in saved and "第1回" in saved
    [change] = _editor(rig).history(NEW_ID)
    assert change.actor.id == STAFF and change.actor.via == "slack" and change.action == "add"

    rig.driver.command(f"ask {NEW_NAME}の補助上限は？")
    answer = rig.fake.wait_for("response_url", lambda c: bool(c.args.get("replace_original")), count=2)[-1]
    seen = posted_text(answer)
    assert "2億円" in seen and NEW_NAME in seen  # answered from the new record, cited by its name

    rig.driver.command(
        "match 希少疾患の核酸医薬を開発している非臨床段階のスタートアップです。研究開発の補助金を探しています"
    )
    cards = rig.fake.wait_for("response_url", lambda c: bool(c.args.get("replace_original")), count=3)[-1]
    program_cards = [b["text"]["text"] for b in cards.args["blocks"] if b.get("accessory")]
    assert program_cards and NEW_NAME in program_cards[0]  # the first program recommended
    rig.settle()


def test_a_form_with_problems_shows_them_field_by_field_and_writes_nothing(live_rig: Rig) -> None:
    rig = live_rig
    digest = tree_digest(rig.settings.storage.knowledge_dir)
    view = _open(rig, "kb 追加 制度")
    reply = rig.driver.submit(
        view,
        program_values(
            id=_text("Bad ID!"),
            summary_ja=_text(None),
            eligible=_multi(),
            rounds=_text("第1回 2026-05-01 2026-06-30\n第2回 2026-13-01 2026-06-30\n第3回だけ"),
        ),
        user=STAFF,
    )
    body = reply.json()
    assert body["response_action"] == "errors"
    errors = body["errors"]
    assert set(errors) >= {"id", "summary_ja", "eligible", "rounds"}
    assert "英小文字" in errors["id"] and "必須" in errors["summary_ja"] and "1つ以上" in errors["eligible"]
    assert "2行目" in errors["rounds"] and "3行目" in errors["rounds"] and "1行目" not in errors["rounds"]

    # A quote that is not in the document: the error is on the quote, nothing written.
    reply = rig.driver.submit(
        view, program_values(source_quote=_text("この一節は資料のどこにもありません。")), user=STAFF
    )
    assert reply.json()["response_action"] == "errors" and "source_quote" in reply.json()["errors"]
    assert "not found" in reply.json()["errors"]["source_quote"]

    # An id that is already taken.
    existing = min((rig.settings.storage.knowledge_dir / "programs").glob("*.yaml")).stem
    reply = rig.driver.submit(view, program_values(id=_text(existing)), user=STAFF)
    assert "すでに使われています" in reply.json()["errors"]["id"]
    rig.settle()
    assert tree_digest(rig.settings.storage.knowledge_dir) == digest
    assert _editor(rig).head() == 0 and not rig.fake.calls_to("chat.update")


def test_an_update_keeps_what_the_form_does_not_show(live_rig: Rig) -> None:
    rig = live_rig
    path = rig.settings.storage.knowledge_dir / "programs" / "mhlw-kaigai-vc-visit-program.yaml"
    editor = _editor(rig)
    original, _ = editor.record_data("mhlw-kaigai-vc-visit-program")
    before = path.read_text(encoding="utf-8")
    view = _open(rig, "kb edit mhlw-kaigai-vc-visit-program")
    assert "id" not in [b.get("block_id") for b in view["blocks"]]  # an id is not edited
    name_block = next(b for b in view["blocks"] if b.get("block_id") == "name_ja")
    assert name_block["element"]["initial_value"] == original["name_ja"]
    new_summary = original["summary_ja"] + "令和8年度も継続して実施する。"
    reply = rig.driver.submit(view, state_from_view(view, summary_ja=_text(new_summary)), user=STAFF)
    assert reply.status == 200 and not reply.body
    _searchable(rig)
    updated, _ = editor.record_data("mhlw-kaigai-vc-visit-program")
    assert updated["summary_ja"] == new_summary
    untouched = {k: v for k, v in original.items() if k != "summary_ja"}
    assert json.dumps({k: updated.get(k) for k in untouched}, default=str, ensure_ascii=False) == json.dumps(
        untouched, default=str, ensure_ascii=False
    )  # budgets, sources, notes, rounds as they were
    [change] = editor.history("mhlw-kaigai-vc-visit-program")
    assert change.action == "update" and change.summary.endswith("(summary_ja)") and path.is_file()
    # The rest of the file is byte for byte what staff wrote: comments, folded text, flow lists.
    after = path.read_text(encoding="utf-8")
    assert _without_field(after, "summary_ja") == _without_field(before, "summary_ja")
    assert "summary_ja: >-" in after and "令和8年度も継続して実施する。" in after
    confirmation = rig.fake.calls_to("chat.postMessage")[0].args["text"]
    assert "summary_ja" in confirmation and "budgets" not in confirmation and "sources" not in confirmation
    assert "変更" in confirmation  # the staff member's Slack language (ja-JP), not guessed from "edit …"


def _without_field(text: str, field: str) -> str:
    """The file with one top-level field (its line and its indented continuation) taken out."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(f"{field}:"):
            skipping = True
            continue
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = False
        kept.append(line)
    return "".join(kept)


def test_two_staff_editing_one_record_the_second_is_told_and_nothing_is_overwritten(live_rig: Rig) -> None:
    rig = live_rig
    record = "mhlw-cariso"
    first = _open(rig, f"kb edit {record}", user=STAFF)
    second = _open(rig, f"kb edit {record}", user=STAFF2, count=2)  # staff by the user group
    reply = rig.driver.submit(first, state_from_view(first, name_en=_text("CARISO (first edit)")), user=STAFF)
    assert not reply.body
    _searchable(rig)
    reply = rig.driver.submit(second, state_from_view(second, name_en=_text("CARISO (second edit)")), user=STAFF2)
    body = reply.json()
    assert body["response_action"] == "errors"
    [message] = body["errors"].values()
    assert STAFF in message and "#1" in message and "開き直し" in message  # in the staff member's Slack language
    rig.settle()
    data, _ = _editor(rig).record_data(record)
    assert data["name_en"] == "CARISO (first edit)" and len(_editor(rig).history(record)) == 1


def test_someone_who_is_not_staff_changes_nothing_and_is_logged(
    live_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = live_rig
    digest = tree_digest(rig.settings.storage.knowledge_dir)
    caplog.set_level(logging.WARNING, logger="kakehashi.slack.test")
    reply = rig.driver.command("kb add program", user="U0ASKER")
    assert "相談員（スタッフ）だけ" in reply.json()["text"] or "only the desk's staff" in reply.json()["text"]
    for text in ("kb retire mhlw-cariso", "kb revert 1", "kb 履歴"):
        assert rig.driver.command(text, user="U0ASKER").json()["text"]

    # A form submitted by someone who is not staff (opened while they were, or forged): refused on the form.
    view = kbforms.record_modal("program", documents=[kbforms.DocumentChoice(file=DOC, title="資料")])
    reply = rig.driver.submit(view, program_values(), user="U0ASKER")
    assert reply.json()["response_action"] == "errors" and "スタッフ" in json.dumps(reply.json(), ensure_ascii=False)
    rig.driver.click(
        action_id=ids.KB_RETIRE,
        value="mhlw-cariso",
        user="U0ASKER",
        channel="C0GENERAL",
        message={"ts": "1700000000.000001"},
    )
    refusal = rig.fake.wait_for("response_url")[-1].args
    assert "スタッフ" in refusal["text"]
    document_view = documents.document_modal(
        file=DOC, title="t", ministry="MHLW", date="2026-03-05", description=None, doc_id="mhlw-medical-venture"
    )
    reply = rig.driver.submit(
        document_view,
        {"title": _text("乗っ取り"), "ministry": _select("MHLW"), "date": _date("2026-03-05")},
        user="U0ASKER",
    )
    assert reply.json()["response_action"] == "errors"
    rig.settle()
    assert not rig.fake.calls_to("views.open")
    assert tree_digest(rig.settings.storage.knowledge_dir) == digest and _editor(rig).head() == 0
    refused = [r for r in caplog.records if r.levelno == logging.WARNING and "not staff" in r.getMessage()]
    assert len(refused) >= 7 and all("U0ASKER" in r.getMessage() for r in refused)
    assert any("kb add program" in r.getMessage() for r in refused)
    assert not any("xoxb" in r.getMessage() for r in caplog.records)


def test_the_user_group_is_asked_once_for_a_while(live_rig: Rig) -> None:
    rig = live_rig
    for _ in range(3):
        assert not rig.driver.command("kb list", user=STAFF2).body  # staff through the group: no refusal
    listed = rig.fake.wait_for("response_url", count=3)[0].args
    rig.settle()
    assert len(rig.fake.calls_to("usergroups.users.list")) == 1  # cached
    assert rig.fake.calls_to("usergroups.users.list")[0].args == {"usergroup": GROUP}
    assert "mhlw-cariso" in json.dumps(listed, ensure_ascii=False)


def test_when_slack_cannot_list_the_group_only_the_id_list_is_staff(
    live_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = live_rig
    rig.fake.fail("usergroups.users.list", error="missing_scope", times=5)
    caplog.set_level(logging.WARNING, logger="kakehashi.slack.test")
    reply = rig.driver.command("kb list", user=STAFF2)
    assert "only the desk's staff" in reply.json()["text"]
    assert not rig.driver.command("kb list", user=STAFF).body  # the ID list still works
    rig.settle()
    assert any("usergroups.users.list" in r.getMessage() and "missing_scope" in r.getMessage() for r in caplog.records)


# --- history, revert, retire ------------------------------------------------------------------------


def test_history_lists_a_change_and_its_revert_button_undoes_it(live_rig: Rig) -> None:
    rig = live_rig
    view = _open(rig, "kb add program")
    rig.driver.submit(view, program_values(), user=STAFF)
    _searchable(rig)
    rig.driver.command(f"kb history {NEW_ID}", user=STAFF)
    listed = rig.fake.wait_for("response_url")[-1].args
    [section] = [b for b in listed["blocks"] if b.get("accessory", {}).get("action_id") == ids.KB_REVERT]
    button = section["accessory"]
    assert button["value"] == "1" and button["confirm"]["confirm"]["text"] == "取り消す"  # asks first
    assert f"<@{STAFF}>" in section["text"]["text"] and NEW_ID in section["text"]["text"]

    rig.driver.click(action_id=ids.KB_REVERT, value="1", user=STAFF, channel="C0GENERAL", message={"ts": "1.2"})
    _searchable(rig, count=2)
    assert not (rig.settings.storage.knowledge_dir / "programs" / f"{NEW_ID}.yaml").exists()
    latest = _editor(rig).history()[0]
    assert latest.action == "revert" and latest.reverts == 1 and latest.actor.id == STAFF

    rig.driver.command(f"ask {NEW_NAME}の補助上限は？")
    answer = rig.fake.wait_for("response_url", lambda c: "blocks" in c.args)[-1]
    assert "2億円" not in posted_text(answer)  # gone from the answers too
    rig.settle()


def test_retire_and_restore_from_the_command(live_rig: Rig) -> None:
    rig = live_rig
    rig.driver.command("kb retire mhlw-cariso", user=STAFF)
    _searchable(rig)
    data, _ = _editor(rig).record_data("mhlw-cariso")
    assert data["status"] == "retired"
    rig.driver.command("kb retire mhlw-cariso", user=STAFF)  # again: nothing to change, said so
    note = rig.fake.wait_for("response_url", lambda c: "already retired" in str(c.args.get("text")))[0]
    assert note.args["response_type"] == "ephemeral"
    rig.driver.command("kb show mhlw-cariso", user=STAFF)
    shown = rig.fake.wait_for("response_url", lambda c: bool(c.args.get("blocks")))[-1].args
    text = json.dumps(shown["blocks"], ensure_ascii=False)
    assert "廃止済み" in text and ids.KB_RESTORE in text and "status: retired" in text
    rig.driver.command("kb restore mhlw-cariso", user=STAFF)
    _searchable(rig, count=2)
    assert _editor(rig).record_data("mhlw-cariso")[0]["status"] == "active"
    assert [c.action for c in _editor(rig).history("mhlw-cariso")] == ["restore", "retire"]


def test_staff_home_lists_stale_records_and_others_do_not_see_it(
    seed_settings: Settings, fake_slack: FakeSlack, tmp_path: Path, embedder: Embedder, small_knowledge_dir: Path
) -> None:
    rig = _live_rig(seed_settings, fake_slack, tmp_path, embedder, small_knowledge_dir, kb_stale_days=1)
    try:
        rig.driver.event(
            {
                "type": "app_home_opened",
                "user": STAFF,
                "channel": "D0STAFF1",
                "tab": "home",
                "event_ts": "1700000300.000001",
            }
        )
        staff_view = rig.fake.wait_for("views.publish")[0].args["view"]
        rig.driver.event(
            {
                "type": "app_home_opened",
                "user": "U0ASKER",
                "channel": "D0ASKER",
                "tab": "home",
                "event_ts": "1700000300.000002",
            }
        )
        public_view = rig.fake.wait_for("views.publish", count=2)[1].args["view"]
        staff_text = json.dumps(staff_view, ensure_ascii=False)
        assert "知識の鮮度" in staff_text and "知識の鮮度" not in json.dumps(public_view, ensure_ascii=False)
        assert len(staff_view["blocks"]) <= 100
        # Every record in the small folder is dated 2026-03-05 or earlier (the deck's date): over a day old.
        records = sorted(p.stem for p in (small_knowledge_dir / "programs").glob("*.yaml"))
        listed = [
            b["accessory"]["value"]
            for b in staff_view["blocks"]
            if b.get("accessory", {}).get("action_id") == ids.KB_EDIT
        ]
        assert len(records) <= 10 and sorted(listed) == records
        assert "情報の日付" in staff_text and "/kakehashi kb stale" in staff_text

        rig.driver.click(action_id=ids.KB_EDIT, value=listed[0], user=STAFF, view={"id": "VHOME", "type": "home"})
        view = rig.fake.wait_for("views.open")[0].args["view"]
        assert json.loads(view["private_metadata"])["id"] == listed[0]
    finally:
        rig.close()


# --- documents uploaded in Slack ---------------------------------------------------------------------

PDF_SENTENCE = "つばさ再生医療実証プログラムでは、採択された企業に最大3,000万円の実証費用を支援します。"
DOCX_SENTENCE = "みなと医療機器海外展開支援の申請締切は2026年7月31日です。"


def _upload(
    rig: Rig,
    name: str,
    data: bytes,
    *,
    user: str = STAFF,
    channel: str | None = None,
    channel_type: str = "im",
    size: int | None = None,
    mimetype: str = "application/octet-stream",
) -> str:
    file = rig.fake.add_file(name, data, user=user, mimetype=mimetype, size=size)
    channel = channel or _dm(user)
    ts = rig.fake.add_message(channel, text="", user=user)
    rig.driver.event(
        {
            "type": "message",
            "subtype": "file_share",
            "text": "",
            "user": user,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "channel_type": channel_type,
            "files": [file],
            "upload": True,
            "display_as_bot": False,
        }
    )
    return ts


def _thread_texts(rig: Rig, channel: str, ts: str) -> str:
    rig.settle()
    return "\n".join(
        m.text + json.dumps(m.blocks, ensure_ascii=False) for m in rig.fake.thread(channel, ts) if m.bot_id
    )


def test_uploaded_japanese_pdf_and_docx_become_answerable(live_rig: Rig) -> None:
    rig = live_rig
    text_pages = docfactory.japanese_pdf(
        [PDF_SENTENCE, "対象は再生医療等製品の実用化を目指すスタートアップです。"],
        title="つばさ再生医療実証プログラムのご案内",
    )
    pdf = docfactory.merge_pdfs(text_pages, docfactory.image_only_pdf(pages=1))  # a scanned appendix page
    ts = _upload(rig, "tsubasa.pdf", pdf, mimetype="application/pdf")
    _searchable(rig)
    said = _thread_texts(rig, _dm(STAFF), ts)
    assert "資料「つばさ再生医療実証プログラムのご案内」を追加しました" in said and ids.KB_DOCUMENT_EDIT in said
    # Staff learn that the scanned page was not read.
    assert "抽出時の注意: 1 of 2 pages have no text (images only, or unreadable): 2" in said
    downloads = rig.fake.calls_to("file_download")
    assert downloads and downloads[0].token == rig.fake.token  # the bot token went in the header

    docx = docfactory.japanese_docx(heading="みなと医療機器海外展開支援", paragraphs=[DOCX_SENTENCE])
    channel_ts = _upload(rig, "minato.docx", docx, channel=SUPPORTERS, channel_type="channel")
    _searchable(rig, channel=SUPPORTERS)
    assert "を追加しました" in _thread_texts(rig, SUPPORTERS, channel_ts)
    [pdf_change, docx_change] = reversed(_editor(rig).history()[:2])
    assert pdf_change.action == docx_change.action == "add-document"

    rig.driver.command("ask つばさ再生医療実証プログラムの支援額は？")
    answer = rig.fake.wait_for("response_url", lambda c: "blocks" in c.args)[-1]
    assert "3,000万円" in posted_text(answer)
    rig.driver.command("ask みなと医療機器海外展開支援の申請締切はいつですか？")
    answer = rig.fake.wait_for("response_url", lambda c: "blocks" in c.args, count=2)[-1]
    assert "2026年7月31日" in posted_text(answer)
    rig.settle()


def test_edit_details_of_an_uploaded_document(live_rig: Rig) -> None:
    rig = live_rig
    ts = _upload(rig, "notes.md", "# メモ\n\nつばさ事業の説明会は毎月開催します。\n".encode(), mimetype="text/markdown")
    _searchable(rig)
    message = next(m for m in rig.fake.thread(_dm(STAFF), ts) if m.bot_id and m.blocks)
    button = next(e for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    rig.driver.click(
        action_id=ids.KB_DOCUMENT_EDIT,
        value=button["value"],
        user=STAFF,
        channel=_dm(STAFF),
        message=message.to_slack(),
    )
    view = rig.fake.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == ids.KB_DOCUMENT_VIEW
    downloads = sum(1 for c in rig.fake.calls if c.method == "file_download")
    reply = rig.driver.submit(
        view,
        {
            "title": _text("つばさ事業 説明会のご案内"),
            "ministry": _select("METI"),
            "date": _date("2026-05-01"),
            "description_ja": _text("説明会の日程"),
        },
        user=STAFF,
    )
    assert not reply.body
    _searchable(rig, count=2)
    kb = _editor(rig).load()
    meta = next(d.meta for d in kb.documents if d.meta.title == "つばさ事業 説明会のご案内")
    assert meta.ministry.value == "METI" and str(meta.date) == "2026-05-01" and meta.description_ja == "説明会の日程"
    assert _editor(rig).history()[0].action == "update-document"
    # Only the details changed: the file was not fetched again and the extracted text is as it was.
    assert sum(1 for c in rig.fake.calls if c.method == "file_download") == downloads
    assert [f.path for f in _editor(rig).history()[0].files] == ["documents/documents.yaml"]


@pytest.mark.parametrize(
    ("name", "make", "reason_ja"),
    [
        ("secret.pdf", lambda: docfactory.encrypted_pdf(), "パスワード"),
        ("scan.pdf", lambda: docfactory.image_only_pdf(), "文字が読み取れません"),
        ("bomb.docx", lambda: docfactory.docx_zip_bomb(), "異常に大きく"),
        ("tool.exe", lambda: b"MZ\x90\x00" + b"\x00" * 64, "対応していません"),
        ("broken.pdf", lambda: b"%PDF-1.7\n" + b"\x00garbage" * 100, "壊れている"),
    ],
)
def test_unreadable_and_hostile_files_get_the_reason_and_change_nothing(
    live_rig: Rig, name: str, make: Any, reason_ja: str
) -> None:
    rig = live_rig
    digest = tree_digest(rig.settings.storage.knowledge_dir)
    ts = _upload(rig, name, make())
    said = _thread_texts(rig, _dm(STAFF), ts)
    assert "追加できませんでした（何も変更していません）" in said and reason_ja in said, said
    assert tree_digest(rig.settings.storage.knowledge_dir) == digest and _editor(rig).head() == 0


def test_a_file_over_the_limit_is_refused_before_it_is_downloaded(live_rig: Rig) -> None:
    rig = live_rig
    digest = tree_digest(rig.settings.storage.knowledge_dir)
    ts = _upload(rig, "huge.pdf", b"%PDF-1.7 small", size=(rig.settings.kb.max_upload_mb + 1) * 1024 * 1024)
    said = _thread_texts(rig, _dm(STAFF), ts)
    assert "大きすぎます" in said and "MB" in said
    assert not rig.fake.calls_to("file_download") and tree_digest(rig.settings.storage.knowledge_dir) == digest


def test_a_lying_size_field_does_not_let_a_bigger_file_through(live_rig: Rig) -> None:
    rig = live_rig
    limit = rig.settings.kb.max_upload_mb * 1024 * 1024
    ts = _upload(rig, "sneaky.txt", b"a" * (limit + 10), size=100)
    said = _thread_texts(rig, _dm(STAFF), ts)
    assert "追加できませんでした" in said and "limit" in said and _editor(rig).head() == 0


def test_uploads_from_someone_who_is_not_staff_are_refused(live_rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig = live_rig
    caplog.set_level(logging.WARNING, logger="kakehashi.slack.test")
    digest = tree_digest(rig.settings.storage.knowledge_dir)
    ts = _upload(rig, "mine.txt", "私の会社の資料です。".encode(), user="U0ASKER")
    said = _thread_texts(rig, _dm("U0ASKER"), ts)
    assert "相談員（サポーター）に見てもらう" in said and "kk_handoff" in said  # a founder's file: a person is offered
    _upload(
        rig, "mine.txt", "私の会社の資料です。".encode(), user="U0ASKER", channel=SUPPORTERS, channel_type="channel"
    )
    refusal = rig.fake.wait_for("chat.postEphemeral")[0].args
    assert refusal["user"] == "U0ASKER" and "スタッフ）だけ" in refusal["text"]
    rig.settle()
    assert not rig.fake.calls_to("file_download") and tree_digest(rig.settings.storage.knowledge_dir) == digest
    assert sum("U0ASKER" in r.getMessage() and "upload" in r.getMessage() for r in caplog.records) == 1


def test_files_in_other_channels_and_in_consultation_threads_are_left_alone(live_rig: Rig) -> None:
    rig = live_rig
    _upload(rig, "x.pdf", b"%PDF-1.7", channel="C0GENERAL", channel_type="channel")
    file = rig.fake.add_file("y.pdf", b"%PDF-1.7", user=STAFF)
    root = rig.fake.add_message(SUPPORTERS, text="card", user=STAFF)
    ts = rig.fake.add_message(SUPPORTERS, text="", user=STAFF, thread_ts=root)
    rig.driver.event(
        {
            "type": "message",
            "subtype": "file_share",
            "text": "",
            "user": STAFF,
            "ts": ts,
            "thread_ts": root,
            "channel": SUPPORTERS,
            "event_ts": ts,
            "channel_type": "channel",
            "files": [file],
        }
    )
    rig.settle()
    assert not rig.fake.calls_to("file_download") and not rig.fake.calls_to("chat.postMessage")


def test_a_download_without_the_token_gets_the_sign_in_page_and_is_refused() -> None:
    from bot.slack.kb.uploads import DownloadError, download

    fake = FakeSlack().start()
    try:
        file = fake.add_file("a.txt", b"hello", user=STAFF)
        assert download(file["url_private_download"], token=fake.token, max_bytes=100, api_url=fake.url) == b"hello"
        with pytest.raises(DownloadError, match="sign-in page"):
            download(file["url_private_download"], token="xoxb-wrong", max_bytes=100, api_url=fake.url)
        with pytest.raises(DownloadError, match="not a Slack file URL"):
            download("https://evil.example.com/x", token=fake.token, max_bytes=100, api_url=fake.url)
    finally:
        fake.stop()


# --- VCs and CDMOs, on a copy of the whole seed knowledge base ----------------------------------------


def test_staff_add_a_vc_and_a_cdmo_in_their_forms(seed_rig: Rig) -> None:
    rig = seed_rig
    view = _open(rig, "kb add vc")
    certs = next(b for b in view["blocks"] if b.get("block_id") == "certified_in")["element"]["options"]
    assert {o["value"].split("|")[0] for o in certs} == {"000_766c4c58fa799f87.txt", "004_34e0b65bd129f0b3.txt"}
    reply = rig.driver.submit(
        view,
        {
            "id": _text("vc-hoshizora-capital"),
            "name": _text("ほしぞらキャピタル"),
            "name_en": _text("Hoshizora Capital"),
            "aliases": _text("ほしぞら\nHSC"),
            "certified_in": _multi(certs[0]["value"]),
            "url": _text("https://hoshizora.example.jp/"),
            "as_of": _date("2025-06-13"),
            "source_document": _select("000_766c4c58fa799f87.txt"),
            "source_quote": _text("【参考】 認定VC (30社)"),
        },
        user=STAFF,
    )
    assert not reply.body, reply.body
    _searchable(rig)
    vc, _ = _editor(rig).record_data("vc-hoshizora-capital")
    assert vc["aliases"] == ["ほしぞら", "HSC"] and vc["certified_in"][0]["list_title"].startswith("認定VC")

    view = _open(rig, "kb add cdmo", count=2)
    reply = rig.driver.submit(view, {**view_values_cdmo(), "url": _text("ftp://not-a-web-page")}, user=STAFF)
    assert set(reply.json()["errors"]) == {"url"}  # checked before anything is written
    reply = rig.driver.submit(view, {**view_values_cdmo(), "url": _text(None)}, user=STAFF)
    assert not reply.body, reply.body
    _searchable(rig, count=2)
    cdmo, _ = _editor(rig).record_data("cdmo-hoshizora-bio")
    assert cdmo["facilities"] == [
        {"country": "JP", "region_ja": "日本", "area_m2": 4400},
        {"country": "US", "region_ja": "米国"},
    ]

    rig.driver.command("kb list cdmo", user=STAFF)
    listed = rig.fake.wait_for("response_url", lambda c: "cdmo-hoshizora-bio" in json.dumps(c.args))[0].args
    assert "vc-hoshizora-capital" not in json.dumps(listed)
    rig.driver.command("kb stale", user=STAFF)
    stale = rig.fake.wait_for("response_url", lambda c: "更新が必要" in json.dumps(c.args, ensure_ascii=False))[0]
    assert len(stale.args["blocks"]) <= 50


def view_values_cdmo() -> dict[str, Any]:
    return {
        "id": _text("cdmo-hoshizora-bio"),
        "name": _text("Hoshizora Bio"),
        "name_ja": _text("ほしぞらバイオ"),
        "aliases": _text(None),
        "modalities": _multi("cell_therapy", "gene_therapy"),
        "services_ja": _text("細胞治療の受託製造"),
        "facilities": _text("JP 日本 4,400\nUS 米国"),
        "as_of": _date("2025-01-01"),
        "source_document": _select("004_34e0b65bd129f0b3.txt"),
        "source_quote": _text("主要細胞治療CDMOの推定事業規模とシェア（2022年）"),
    }


# --- the forms themselves (pure) ----------------------------------------------------------------------


def _seed_records() -> list[dict[str, Any]]:
    import yaml

    from knowledge import SEED_KNOWLEDGE_DIR

    return [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for folder in ("programs", "vcs", "cdmos")
        for p in sorted((SEED_KNOWLEDGE_DIR / folder).glob("*.yaml"))
    ]


def test_every_seed_record_comes_back_unchanged_from_its_untouched_form(seed_kb: Any) -> None:
    documents = kbforms.document_choices(seed_kb.documents)
    certifications = kbforms.certification_choices(seed_kb.vcs)
    records = _seed_records()
    assert len(records) == len(seed_kb.records)
    for data in records:
        view = kbforms.record_modal(
            data["kind"], data=data, base="b", documents=documents, certifications=certifications
        )
        assert len(view["blocks"]) <= 100 and len(view["private_metadata"]) <= 3000
        for block in view["blocks"]:
            element = block.get("element") or {}
            assert len(element.get("options") or []) <= 100
            assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in element.get("options") or [])
            assert len(element.get("initial_value") or "") <= 3000
        meta = json.loads(view["private_metadata"])
        back = kbforms.record_from_form(data["kind"], state_from_view(view), original=data, hidden=meta["x"])
        assert back.new_source is None
        assert json.dumps(back.data, default=str, ensure_ascii=False, sort_keys=True) == json.dumps(
            data, default=str, ensure_ascii=False, sort_keys=True
        ), data["id"]


def test_rounds_are_read_line_by_line_with_each_bad_line_named() -> None:
    rounds = lines.parse_rounds("第5回 2026-04-01 2026-05-29\n\n  二次　公募  ２０２６-６-１  -  \n")
    assert rounds[0] == {
        "name": "第5回",
        "opens": kbforms.dt.date(2026, 4, 1),
        "closes": kbforms.dt.date(2026, 5, 29),
        "text": "第5回 2026-04-01 2026-05-29",
    }
    assert rounds[1]["name"] == "二次 公募" and rounds[1]["opens"] == kbforms.dt.date(2026, 6, 1)
    assert "closes" not in rounds[1]
    with pytest.raises(ValueError) as caught:
        lines.parse_rounds("第1回 2026-02-30 2026-03-01\nok 2026-01-01 2026-01-02\n第3回\n第4回 2026-05-01 2026-04-01")
    message = str(caught.value)
    assert "1行目" in message and "ありえない日付" in message and "2行目" not in message
    assert "3行目" in message and "4行目" in message and "締切日" in message


def test_facilities_keep_their_notes_and_bad_lines_are_named() -> None:
    existing = [{"country": "US", "region_ja": "米国", "area_m2": 60000, "notes_ja": "合計値"}]
    assert lines.parse_facilities("US 米国 60,000\njp 日本", existing=existing) == [
        {"country": "US", "region_ja": "米国", "area_m2": 60000.0, "notes_ja": "合計値"},
        {"country": "JP", "region_ja": "日本"},
    ]
    with pytest.raises(ValueError, match="2行目"):
        lines.parse_facilities("US 米国 1\n日本 4400")


def test_editor_problems_land_on_their_blocks() -> None:
    problems = [
        ("summary_ja", 3, "Field required"),
        ("rounds[1].closes", 9, "Input should be a valid date"),
        ("sources[2].quote", None, "quote not found in 001.txt"),
        ("sources[0].quote", None, "old"),
        ("budgets[0].amount_oku_yen", 4, "bad"),
        ("eligible[1]", 5, "Input should be 'academia'"),
    ]
    errors = kbforms.errors_for_problems("program", problems, is_update=True, new_source=2)
    assert errors["summary_ja"].startswith("入力してください")
    assert errors["rounds"].startswith("2行目（closes）")
    assert errors["source_quote"] == "quote not found in 001.txt"
    assert "eligible" in errors and "番目" not in errors["eligible"]
    general = kbforms.general_block("program", is_update=True)
    assert general == "name_ja" and "sources[0].quote: old" in errors[general]
    assert "budgets[0].amount_oku_yen: bad" in errors[general]
    assert kbforms.general_block("program", is_update=False) == "id"


def test_a_new_record_needs_its_source_and_a_quote_needs_its_document() -> None:
    values = program_values(source_document=_select(None), source_quote=_text(None))
    with pytest.raises(kbforms.FormError) as caught:
        kbforms.record_from_form("program", values, original=None)
    assert set(caught.value.errors) == {"source_document", "source_quote"}
    with pytest.raises(kbforms.FormError) as caught:
        kbforms.record_from_form("program", program_values(source_document=_select(None)), original=None)
    assert set(caught.value.errors) == {"source_document"}
    made = kbforms.record_from_form("program", program_values(modalities=_multi()), original=None)
    assert made.data["modalities"] == ["any"] and made.new_source == 0
    assert made.data["sources"] == [{"document": DOC, "quote": QUOTE}]


def test_staff_directory_caches_the_group_and_asks_again_when_it_expires(caplog: pytest.LogCaptureFixture) -> None:
    from slack_sdk import WebClient

    from bot.slack.staff import FAILURE_TTL_S, StaffDirectory

    fake = FakeSlack().start()
    try:
        fake.usergroups[GROUP] = [STAFF2]
        now = [0.0]
        staff = StaffDirectory(
            user_ids=frozenset({STAFF}),
            usergroup=GROUP,
            ttl_s=300,
            client=WebClient(token=fake.token, base_url=fake.url),
            logger=logging.getLogger("kakehashi.slack.test"),
            clock=lambda: now[0],
        )
        assert staff.is_staff(STAFF) and staff.is_staff(STAFF2) and not staff.is_staff("U0ASKER")
        assert not staff.is_staff(None) and not staff.is_staff("")
        fake.usergroups[GROUP] = []  # removed from the group
        now[0] = 299.0
        assert staff.is_staff(STAFF2)  # still cached
        now[0] = 301.0
        assert not staff.is_staff(STAFF2) and len(fake.calls_to("usergroups.users.list")) == 2
        fake.usergroups[GROUP] = [STAFF2]
        fake.fail("usergroups.users.list", error="ratelimited_or_down")
        now[0] = 700.0
        caplog.set_level(logging.WARNING, logger="kakehashi.slack.test")
        assert not staff.is_staff(STAFF2) and staff.is_staff(STAFF)  # the ID list alone, never "everyone"
        assert any("ratelimited_or_down" in r.getMessage() for r in caplog.records)
        now[0] = 700.0 + FAILURE_TTL_S + 1
        assert staff.is_staff(STAFF2)  # asked again after a short while
        assert not staff.check("U0ASKER", attempted="kb retire x")
        assert any("U0ASKER" in r.getMessage() and "kb retire x" in r.getMessage() for r in caplog.records)
    finally:
        fake.stop()


def test_an_upload_named_like_a_document_asks_before_replacing_it_and_the_same_text_changes_nothing(
    live_rig: Rig,
) -> None:
    rig = live_rig
    koubo = "ほしぞら創薬加速パートナーシップ事業の公募要領（抜粋）\n補助上限は2億円。\n".encode()
    other = "ほしぞら創薬加速パートナーシップ事業の公募要領（改訂）\n補助上限は3億円に引き上げ。\n".encode()
    _upload(rig, "hoshizora-koubo.txt", koubo, mimetype="text/plain")
    _searchable(rig)
    head = _editor(rig).head()
    ts = _upload(rig, "hoshizora-koubo.txt", other, mimetype="text/plain")
    rig.fake.wait_for(
        "chat.update", lambda c: "置き換える" in json.dumps(c.args.get("blocks") or [], ensure_ascii=False)
    )
    rig.settle()
    assert _editor(rig).head() == head  # asked, nothing replaced
    message = next(m for m in rig.fake.thread(_dm(STAFF), ts) if m.bot_id and m.blocks)
    replace = next(e for b in message.blocks if b["type"] == "actions" for e in b["elements"])
    assert replace["action_id"] == ids.KB_DOCUMENT_REPLACE and "hoshizora-koubo" in message.text
    rig.driver.click(
        action_id=ids.KB_DOCUMENT_REPLACE,
        value=replace["value"],
        user="U0ASKER",
        channel=_dm(STAFF),
        message=message.to_slack(),
    )
    rig.settle()
    assert _editor(rig).head() == head  # not staff: refused
    rig.driver.click(
        action_id=ids.KB_DOCUMENT_REPLACE,
        value=replace["value"],
        user=STAFF,
        channel=_dm(STAFF),
        message=message.to_slack(),
    )
    _searchable(rig, count=2)
    change = _editor(rig).history()[0]
    assert (change.action, change.records) == ("update-document", ("hoshizora-koubo",))
    kb = _editor(rig).load()
    assert "3億円" in next(d.text for d in kb.documents if d.meta.id == "hoshizora-koubo")
    # The same file once more: "nothing changed", not a change of 0 passages.
    _upload(rig, "hoshizora-koubo.txt", other, mimetype="text/plain")
    same = rig.fake.wait_for("chat.update", lambda c: "同じ内容" in str(c.args.get("text")), timeout=30)[0]
    assert "0 節" not in str(same.args.get("text"))
    rig.settle()
    assert _editor(rig).head() == change.id
