"""「回答として登録」 end to end: a founder's question is handed off, a supporter answers in the card's thread
and resolves it, staff save the answer from the card, and the next founder who asks the same thing in other
words gets the supporter's answer at once; retired, it stops. The real app over HTTP against the fake Slack,
a copy of the knowledge folder, the real editor, live knowledge, index and answerer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from knowledge.editor import KnowledgeEditor
from knowledge.journal import Actor
from retrieval.answer import Answerer
from retrieval.curated import CuratedAnswers, CuratedThreshold
from retrieval.embeddings import Embedder
from retrieval.engine import ingest, open_index
from retrieval.live import LiveKnowledge
from tests.fakeslack import FakeSlack
from tests.slack_fixtures import STAFF, SUPPORTERS, Rig, button, make_rig, posted_text, record_calls, user_says

QUESTION = "MEDISOへの相談は無料ですか？"
PARAPHRASE = "MEDISOに相談するのにお金は必要？"
REPLY = "MEDISOへの相談は無料です。事務局に連絡すれば、登録サポーターが課題に応じて対応します。"


@pytest.fixture
def live(seed_settings: Settings, tmp_path: Path, embedder: Embedder, small_knowledge_dir: Path) -> LiveKnowledge:
    settings = seed_settings.updated(**{"knowledge_dir": small_knowledge_dir, "data_dir": tmp_path / "data"})
    index = open_index(settings, embedder=embedder)
    ingest(settings, index)
    editor = KnowledgeEditor(root=small_knowledge_dir)
    curated = CuratedAnswers(embedder=embedder, threshold=CuratedThreshold.load(), stale_days=settings.kb.stale_days)
    return LiveKnowledge(
        settings=settings,
        editor=editor,
        index=index,
        answerer=Answerer(index=index, k=8, curated=curated),
        check_interval_s=0.0,
    )


@pytest.fixture
def curate_rig(
    live: LiveKnowledge, fake_slack: FakeSlack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Rig]:
    rig = make_rig(base=live.settings, fake=fake_slack, tmp_path=tmp_path, editor=live.editor, live=live)
    yield rig
    rig.close()
    record_calls(fake_slack, request.node.name)


def _ask(rig: Rig, question: str, *, user: str) -> str:
    """`question` asked with a mention by `user`; the bot's answer in its thread, as the founder sees it."""
    root, _ = user_says(rig, question, mention=True, user=user)
    rig.fake.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == root)
    rig.settle()
    message = next(m for m in rig.fake.thread("C0GENERAL", root) if m.bot_id)
    return json.dumps(message.to_slack().get("blocks") or [], ensure_ascii=False) + message.text


def _card(rig: Rig) -> dict[str, Any]:
    return next(m for m in rig.fake.messages[SUPPORTERS] if not m.thread_ts or m.thread_ts == m.ts).to_slack()


def _resolved_consultation(rig: Rig) -> dict[str, Any]:
    """QUESTION handed off with consent, answered by a supporter in the card's thread, resolved."""
    root, _ = user_says(rig, QUESTION, mention=True)
    rig.fake.wait_for("chat.postMessage")
    rig.settle()
    message = next(m for m in rig.fake.thread("C0GENERAL", root) if m.bot_id).to_slack()
    rig.driver.click(
        action_id="kk_handoff",
        value=button(message, "kk_handoff")["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        message=message,
    )
    view = rig.fake.wait_for("views.open")[0].args["view"]
    rig.driver.submit(
        view,
        {
            "topic": {"value": {"type": "plain_text_input", "value": "MEDISOの費用について"}},
            "urgency": {"value": {"type": "radio_buttons", "selected_option": {"value": "normal"}}},
            "consent": {"value": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
        },
        user="U0ASKER",
    )
    rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)
    rig.settle()
    card = _card(rig)
    rig.driver.click(action_id="kk_take", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=card)
    rig.fake.wait_for("chat.update")
    rig.settle()
    user_says(rig, REPLY, channel=SUPPORTERS, thread_ts=card["ts"], user="U0SUPPORTER")
    rig.settle()
    rig.driver.click(action_id="kk_resolve", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=_card(rig))
    rig.fake.wait_for("chat.update", count=2)
    rig.settle()
    return _card(rig)


def test_a_resolved_consultation_saved_as_an_answer_answers_the_next_founder_until_retired(curate_rig: Rig) -> None:
    rig = curate_rig
    before = _ask(rig, PARAPHRASE, user="U0FOUNDER2")
    assert REPLY not in before

    card = _resolved_consultation(rig)
    assert "回答として登録" in posted_text(rig.fake.calls_to("chat.update")[-1])
    curate = button(card, "kk_curate")

    # A supporter who is not staff: refused, no form.
    rig.driver.click(action_id="kk_curate", value=curate["value"], user="U0SUPPORTER", channel=SUPPORTERS, message=card)
    refused = rig.fake.wait_for("chat.postEphemeral", lambda c: c.args["user"] == "U0SUPPORTER")[-1]
    assert "スタッフ" in refused.args["text"] and not rig.fake.calls_to("views.open")[1:]

    # Staff, but the id of another consultation than the card's, or the card clicked from elsewhere: refused.
    rig.driver.click(action_id="kk_curate", value="2", user=STAFF, channel=SUPPORTERS, message=card)
    rig.driver.click(action_id="kk_curate", value=curate["value"], user=STAFF, channel="C0GENERAL", message=card)
    rig.fake.wait_for("chat.postEphemeral", lambda c: c.args["user"] == STAFF, count=2)
    assert len(rig.fake.calls_to("views.open")) == 1  # only the hand-off form so far

    rig.driver.click(action_id="kk_curate", value=curate["value"], user=STAFF, channel=SUPPORTERS, message=card)
    form = rig.fake.wait_for("views.open", count=2)[1].args["view"]
    assert form["callback_id"] == "kk_curate_view"
    fields = {b["block_id"]: b["element"].get("initial_value", "") for b in form["blocks"] if b["type"] == "input"}
    assert fields["questions"] == QUESTION and fields["answer_ja"] == REPLY and fields["author"] == f"User {STAFF}"

    values = {
        name: {"value": {"type": "plain_text_input", "value": value}}
        for name, value in {
            "questions": f"{QUESTION}\nIs consulting MEDISO free?",
            "answer_ja": REPLY,
            "answer_en": "Consulting MEDISO is free.",
            "records": "",
            "author": "佐藤 花子",
        }.items()
    }
    # Sealed for the staff member who opened it: another user's submission is refused on the form.
    forged = rig.driver.submit(form, values, user="U0STAFF2")
    assert forged.json()["response_action"] == "errors"
    leaking = {
        **values,
        "answer_ja": {"value": {"type": "plain_text_input", "value": REPLY + "（備考：資料001の読み）"}},
    }
    refused_leak = rig.driver.submit(form, leaking, user=STAFF)
    assert "相談者に見せられない" in refused_leak.json()["errors"]["answer_ja"]

    saved = rig.driver.submit(form, values, user=STAFF)
    assert saved.status == 200 and not saved.body
    rig.fake.wait_for("chat.update", count=3)  # after the card's two: the DM says it is searchable
    rig.settle()
    editor = KnowledgeEditor(root=rig.settings.storage.knowledge_dir)
    [change] = editor.history("consultation-k-0001")
    assert change.action == "add" and change.actor.id == STAFF and change.actor.via == "slack"

    answer = _ask(rig, PARAPHRASE, user="U0FOUNDER3")
    assert REPLY in answer and "佐藤 花子さん" in answer and "確認" in answer
    english = _ask(rig, "Does it cost anything to consult MEDISO?", user="U0FOUNDER3")
    assert "Consulting MEDISO is free." in english
    unrelated = _ask(rig, "MEDISOの所在地はどこですか？", user="U0FOUNDER3")
    assert REPLY not in unrelated
    assert any(row.mode == "curated" for row in rig.store.answers())

    # Editable from Slack like every record: `/kakehashi kb edit ID` opens the same form, filled from the file.
    rig.driver.command("kb edit consultation-k-0001", user=STAFF, channel=SUPPORTERS)
    edit = rig.fake.wait_for("views.open", count=3)[2].args["view"]
    filled = {b["block_id"]: b["element"].get("initial_value", "") for b in edit["blocks"] if b["type"] == "input"}
    assert filled["questions"] == f"{QUESTION}\nIs consulting MEDISO free?" and filled["answer_ja"] == REPLY
    assert filled["answer_en"] == "Consulting MEDISO is free."
    amended = {**values, "answer_ja": {"value": {"type": "plain_text_input", "value": REPLY + "予約は不要です。"}}}
    assert rig.driver.submit(edit, amended, user=STAFF).status == 200
    rig.fake.wait_for("chat.update", count=4)
    rig.settle()
    assert [c.action for c in editor.history("consultation-k-0001")] == ["update", "add"]
    assert "予約は不要です。" in _ask(rig, PARAPHRASE, user="U0FOUNDER3")
    # The same form again, after that save: refused, naming the change.
    stale = rig.driver.submit(edit, values, user=STAFF).json()
    assert stale["response_action"] == "errors"

    editor.retire("consultation-k-0001", actor=Actor(id=STAFF, via="cli"))
    assert REPLY not in _ask(rig, PARAPHRASE, user="U0FOUNDER4")

    # Saved once: the same card cannot make a second answer.
    rig.driver.click(action_id="kk_curate", value=curate["value"], user=STAFF, channel=SUPPORTERS, message=card)
    again = rig.fake.wait_for("views.open", count=4)[3].args["view"]
    assert rig.driver.submit(again, values, user=STAFF).json()["response_action"] == "errors"
    assert dt.date.today().isoformat() in editor.record_text("consultation-k-0001")[0]


def test_a_gaps_report_topic_offers_staff_a_form_whose_answer_then_answers_it(
    curate_rig: Rig, live: LiveKnowledge
) -> None:
    from bot.desk_gaps import gap_report
    from bot.slack.gapsreport import gaps_blocks

    rig = curate_rig
    question = "MEDISOの相談は英語でもできますか？"
    weak = rig.store.record_answer(
        surface="mention",
        question=question,
        answer="（回答）",
        language="ja",
        confident=False,
        mode="extractive",
        citations=[],
        user_id="U0ASKER",
        channel_id="C0GENERAL",
    )
    private = rig.store.record_answer(
        surface="dm",
        question="内密の質問です",
        answer="（回答）",
        language="ja",
        confident=False,
        mode="extractive",
        citations=[],
        user_id="U0ASKER",
        channel_id="D0ASKER",
    )
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    report = gap_report(rig.settings, rig.store, index=live.index, now=now, days=7, knowledge=lambda: live.kb)
    blocks = gaps_blocks(report)
    offer = button({"blocks": blocks}, "kk_curate_gap")
    assert offer["value"] == weak.id and all(t.covered_by is None for t in report.topics)
    assert "内密の質問" not in json.dumps(blocks, ensure_ascii=False)
    message = {"ts": "1700000999.000100", "blocks": blocks}

    rig.driver.click(
        action_id="kk_curate_gap", value=offer["value"], user="U0SUPPORTER", channel=SUPPORTERS, message=message
    )
    rig.fake.wait_for("chat.postEphemeral", lambda c: c.args["user"] == "U0SUPPORTER")
    # An id of a question asked in a DM, forged into the button: no form, nothing shown.
    rig.driver.click(action_id="kk_curate_gap", value=private.id, user=STAFF, channel=SUPPORTERS, message=message)
    rig.fake.wait_for("chat.postEphemeral", lambda c: c.args["user"] == STAFF)
    assert not rig.fake.calls_to("views.open")
    rig.driver.click(action_id="kk_curate_gap", value=offer["value"], user=STAFF, channel=SUPPORTERS, message=message)
    form = rig.fake.wait_for("views.open")[0].args["view"]
    fields = {b["block_id"]: b["element"].get("initial_value", "") for b in form["blocks"] if b["type"] == "input"}
    assert fields["questions"] == question and fields["answer_ja"] == ""
    values = {
        name: {"value": {"type": "plain_text_input", "value": value}}
        for name, value in {
            "questions": question,
            "answer_ja": "はい、MEDISOには英語で相談できます。",
            "answer_en": "",
            "records": "",
            "author": "佐藤 花子",
        }.items()
    }
    assert rig.driver.submit(form, values, user=STAFF).status == 200
    rig.fake.wait_for("chat.update")
    rig.settle()
    assert "はい、MEDISOには英語で相談できます。" in _ask(
        rig, "MEDISOへの相談は英語でも大丈夫ですか？", user="U0FOUNDER2"
    )
    covered = gap_report(rig.settings, rig.store, index=live.index, now=now, days=7, knowledge=lambda: live.kb)
    assert next(t for t in covered.topics if t.label == question).covered_by is not None
    assert "kk_curate_gap" not in json.dumps(gaps_blocks(covered))


def test_the_form_takes_what_supporters_wrote_in_the_card_thread_not_the_bot_or_the_founder() -> None:
    from bot.slack.handoff.curate import supporter_replies

    thread = [
        {"ts": "1.0", "bot_id": "B0KAKE", "text": "相談 K-0001（対応済み）"},  # the card
        {"ts": "1.1", "bot_id": "B0KAKE", "text": "<@U0ASKER>: 追加で質問です"},  # a relay of the founder's message
        {"ts": "1.2", "user": "U0SUPPORTER", "text": "無料です。"},
        {"ts": "1.3", "user": "U0ASKER", "text": "ありがとうございます"},  # the founder, in the thread directly
        {"ts": "1.4", "user": "U0OTHER", "subtype": "channel_join", "text": "joined"},
        {"ts": "1.5", "user": "U0LATE", "text": "<@U0SUPPORTER> 予約も不要です。"},
    ]
    assert supporter_replies(thread, asker="U0ASKER") == ["無料です。", "予約も不要です。"]
