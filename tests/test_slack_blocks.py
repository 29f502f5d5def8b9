"""Block Kit builders and text handling, tested directly (pure functions, no Slack)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

from bot.slack import blocks as kit
from bot.slack.answering import with_thread_context
from bot.slack.listeners.commands import parse
from bot.slack.sources import SourceCatalog, SourceInfo
from bot.slack.text import cut, escape_mrkdwn, slack_to_plain, split_for_sections
from retrieval.answer import Answer, Citation
from retrieval.match import Citation as MatchCitation
from retrieval.match import MatchResult, Recommendation
from retrieval.profile import Profile

CATALOG = SourceCatalog(
    records={"mhlw-mediso": SourceInfo(ministry="MHLW", documents=("医療系ベンチャー振興のための取組",),
                                       url="https://mediso.mhlw.go.jp/")},
    documents={"001_doc.txt": SourceInfo(ministry="MHLW", documents=("医療系ベンチャー振興のための取組",), url=None)},
)


def _answer(text: str = "MEDISOは相談窓口です [1]", *, confident: bool = True, language: str = "ja") -> Answer:
    citations = [
        Citation(n=1, id="mhlw-mediso#abc", kind="program", title="MEDISO <医療系ベンチャー>", source="programs/x.yaml",
                 text="...", score=0.9),
        Citation(n=2, id="001_doc.txt#def", kind="document", title="資料の節", source="001_doc.txt（題）", text="...",
                 score=0.5),
    ]
    return Answer(question="q", answer=text, confident=confident, citations=citations, language=language)  # type: ignore[arg-type]


def _all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def _check_limits(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= 50
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
                assert len(element["value"]) <= 2000


def test_escape_and_plain_text_round_trip() -> None:
    assert escape_mrkdwn("a & b <!channel> <https://x|y>") == "a &amp; b &lt;!channel&gt; &lt;https://x|y&gt;"
    raw = "<@U0BOT> AMEDの&lt;補助&gt; &amp; <@U123|taro> <#C1|general> <https://example.org|site> <!here>"
    assert slack_to_plain(raw, bot_user_id="U0BOT") == "AMEDの<補助> & @taro #general site (https://example.org) @here"


def test_cut_marks_truncation_and_sections_stay_under_the_limit() -> None:
    assert cut("短い", 10).truncated is False
    long = cut("あ" * 50, 10)
    assert long.truncated and long.text == "あ" * 10 and long.original_chars == 50
    pieces = split_for_sections(("行" * 100 + "\n") * 80)
    assert all(len(p) <= 2900 for p in pieces) and len(pieces) > 1


def test_answer_blocks_show_answer_numbered_sources_and_buttons() -> None:
    blocks = kit.answer_blocks(_answer(), answer_id="a1", catalog=CATALOG)
    _check_limits(blocks)
    text = _all_text(blocks)
    assert "MEDISOは相談窓口です [1]" in text
    sources = next(b for b in blocks if b["type"] == "section" and "出典" in b["text"]["text"])["text"]["text"]
    assert "*[1]* <https://mediso.mhlw.go.jp/|MEDISO &lt;医療系ベンチャー&gt;>" in sources
    assert "厚生労働省" in sources and "資料: 医療系ベンチャー振興のための取組" in sources
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [kit.FEEDBACK_UP, kit.FEEDBACK_DOWN, kit.HANDOFF]
    assert {a["value"] for a in actions} == {"a1"}
    assert "相談員につなぐ" in actions[2]["text"]["text"] and "👍" in actions[0]["text"]["text"]
    assert "根拠が弱い" not in text


def test_weak_answer_carries_a_note_and_english_labels() -> None:
    blocks = kit.answer_blocks(_answer("I could not find it.", confident=False, language="en"), answer_id="a2",
                               catalog=CATALOG)
    text = _all_text(blocks)
    assert "evidence for this answer is weak" in text
    assert "Talk to a supporter" in text and "Sources" in text
    assert "Ministry of Health, Labour and Welfare (MHLW)" in text


def test_user_text_in_the_lead_is_escaped_by_the_caller_and_answer_text_is_escaped() -> None:
    blocks = kit.answer_blocks(_answer("<!channel> & [1]"), answer_id="a3", catalog=CATALOG, lead="lead")
    assert blocks[0]["type"] == "context"
    assert "&lt;!channel&gt; &amp; [1]" in _all_text(blocks)
    assert kit.answer_fallback_text(_answer("<!channel> & [1]")) == "&lt;!channel&gt; &amp; [1]"
    assert kit.consultation_fallback_text(_consultation()) == "相談 K-0007（未対応）: 補助金 &lt;申請&gt;"


def test_match_blocks_cards_with_reasons_sources_and_link_out() -> None:
    rec = Recommendation(kind="program", id="mhlw-mediso", name="MEDISO", score=0.8123,
                         reasons=["対象者: スタートアップ", "ニーズに合う支援: <伴走支援>"],
                         citations=[MatchCitation(source="001.txt（資料）", text="MEDISOは…")])
    vc = Recommendation(kind="vc", id="some-vc", name="VC & Co", score=0.5, reasons=["出資実績"], citations=[])
    result = MatchResult(profile=Profile(), recommendations=[rec, vc], notes=["注意 <x>"], language="ja")
    blocks = kit.match_blocks(result, answer_id="m1", catalog=CATALOG, language="ja", profile_text="- 段階: 非臨床")
    _check_limits(blocks)
    text = _all_text(blocks)
    assert "*1. MEDISO*" in text and "`支援制度`" in text and "適合度 0.81" in text
    assert "ニーズに合う支援: &lt;伴走支援&gt;" in text and "VC &amp; Co" in text and "`認定VC`" in text
    assert "001.txt（資料）" in text and "注意 &lt;x&gt;" in text
    card = next(b for b in blocks if b.get("accessory"))
    assert card["accessory"]["url"] == "https://mediso.mhlw.go.jp/"
    assert any(e["action_id"] == kit.HANDOFF for b in blocks if b["type"] == "actions" for e in b["elements"])


def test_match_form_values_and_text() -> None:
    state = {
        "who": {"value": {"selected_option": {"value": "startup"}}},
        "pre_founding": {"value": {"selected_options": []}},
        "stage": {"value": {"selected_option": {"value": "non_clinical"}}},
        "modality": {"value": {"selected_options": [{"value": "cell_therapy"}]}},
        "needs": {"value": {"selected_options": [{"value": "manufacturing"}]}},
        "free_text": {"value": {"value": " iPS細胞 "}},
    }
    values = kit.match_form_values(state)
    assert values == {"who": "startup", "pre_founding": False, "stage": "non_clinical",
                      "modalities": ["cell_therapy"], "needs": ["manufacturing"], "free_text": "iPS細胞"}
    text = kit.match_form_text(values)
    assert "非臨床試験" in text and "細胞治療" in text and "製造・プロセス開発" in text
    modal = kit.match_modal(private_metadata={"c": "C1", "t": None})
    assert len(modal["title"]["text"]) <= 24 and modal["callback_id"] == kit.MATCH_VIEW
    assert {b.get("block_id") for b in modal["blocks"]} >= {"who", "stage", "modality", "needs", "free_text"}


def _consultation(**changes: Any) -> SimpleNamespace:
    base = dict(id=7, ref="K-0007", status="open", asker_user_id="UASKER", urgency="high", topic="補助金 <申請>",
                consent_to_share=True, question="MEDISOとは", thread_summary="@UASKER: MEDISOとは",
                created_at=dt.datetime(2026, 1, 5, 9, 30), taken_at=None, resolved_at=None, assignee_user_id=None,
                resolved_by=None)
    return SimpleNamespace(**{**base, **changes})


def test_consultation_card_follows_its_state() -> None:
    answer = SimpleNamespace(answer="相談窓口です [1]", confident=False,
                             citations=[{"n": 1, "title": "MEDISO", "source": "programs/mhlw-mediso.yaml"}])
    open_card = kit.consultation_card(_consultation(), answer=answer, profile_text="- 段階: 非臨床",
                                      permalink="https://x.slack.com/archives/C1/p1")
    text = _all_text(open_card)
    assert "相談 K-0007（未対応）" in text and "補助金 &lt;申請&gt;" in text and "至急" in text
    assert "ボットの回答" in text and "[1] MEDISO" in text and "スレッドの要約" in text and "非臨床" in text
    buttons = [e for b in open_card if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["action_id"] == kit.TAKE and buttons[0]["value"] == "7"
    assert buttons[1]["url"] == "https://x.slack.com/archives/C1/p1"

    taken = kit.consultation_card(_consultation(status="taken", assignee_user_id="USUP",
                                                taken_at=dt.datetime(2026, 1, 5, 10)))
    assert "担当: <@USUP>" in _all_text(taken)
    assert [e["action_id"] for b in taken if b["type"] == "actions" for e in b["elements"]] == [kit.RESOLVE]

    done = kit.consultation_card(_consultation(status="resolved", assignee_user_id="USUP", resolved_by="USUP",
                                               resolved_at=dt.datetime(2026, 1, 6)))
    assert "対応済み: <@USUP>" in _all_text(done)
    assert not [b for b in done if b["type"] == "actions"]


def test_consultation_card_without_consent_shares_only_the_topic() -> None:
    card = kit.consultation_card(_consultation(consent_to_share=False), answer=SimpleNamespace(
        answer="秘密の回答", confident=True, citations=[]), profile_text="- 段階: 非臨床")
    text = _all_text(card)
    assert "同意していません" in text and "秘密の回答" not in text and "MEDISOとは" not in text and "非臨床" not in text


def test_thread_summary_keeps_the_opening_question() -> None:
    messages = [{"user": "UASKER", "text": "最初の質問"}, {"bot_id": "B1", "user": "UBOT", "text": "回答"}]
    messages += [{"user": "UASKER", "text": f"続き{i} " + "あ" * 200} for i in range(20)]
    summary = kit.thread_summary(messages, bot_user_id="UBOT", limit=800)
    assert summary.startswith("@UASKER: 最初の質問") and len(summary) <= 800 and "続き19" in summary


def test_follow_up_gets_the_thread_as_context_in_its_own_language() -> None:
    messages = [{"ts": "1", "user": "U1", "text": "MEDISOとは何ですか？"}, {"ts": "2", "bot_id": "B", "text": "回答"},
                {"ts": "3", "user": "U1", "text": "Is it free?"},
                {"ts": "4", "user": "U1", "text": "相談は無料ですか？"}]
    query, used = with_thread_context("相談は無料ですか？", messages, current_ts="4", bot_user_id="UB", limit=2000)
    assert used and query == "MEDISOとは何ですか？\n相談は無料ですか？"
    query, used = with_thread_context("Is it free?", messages[:3], current_ts="3", bot_user_id="UB", limit=2000)
    assert not used and query == "Is it free?"


def test_slash_command_parsing() -> None:
    assert parse("") == ("help", "")
    assert parse("help") == ("help", "")
    assert parse("ask  MEDISOとは") == ("ask", "MEDISOとは")
    assert parse("match") == ("match", "")
    assert parse("マッチング 細胞治療") == ("match", "細胞治療")
    assert parse("MEDISOとは") == ("ask", "MEDISOとは")


def test_home_view_shows_open_consultations_to_staff_only() -> None:
    consultation = _consultation()
    staff = kit.home_view(is_staff=True, consultations=[consultation], counts={"total": 3, "open": 1, "taken": 1,
                                                                               "resolved": 1}, month_label="2026年01月")
    text = _all_text(staff["blocks"])
    assert "K-0007" in text and "受付 3 件" in text and kit.TAKE in text and kit.OPEN_MATCH in text
    public = kit.home_view(is_staff=False, consultations=[consultation])
    assert "K-0007" not in _all_text(public["blocks"]) and "質問の例" in _all_text(public["blocks"])
