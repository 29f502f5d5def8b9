"""Block Kit builders and text handling, tested directly (pure functions, no Slack)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bot.slack.answers.answering import as_history, previous_turns
from bot.slack.answers.blocks import answer_blocks, answer_fallback_text, citation_label, sources_modal
from bot.slack.handoff.blocks import consultation_card, consultation_fallback_text, thread_summary
from bot.slack.home import home_view
from bot.slack.ids import CURATE, DETAILS, HANDOFF, MATCH_VIEW, OPEN_MATCH, RESOLVE, SHARE, SOURCES, TAKE
from bot.slack.listeners.commands import parse, unknown_text
from bot.slack.match.blocks import (
    match_blocks,
    match_cards,
    match_details_modal,
    match_form_text,
    match_form_values,
    match_modal,
    profile_summary,
)
from bot.slack.sources import SourceCatalog, SourceInfo
from bot.slack.text import cut, escape_mrkdwn, slack_to_plain, split_for_sections
from bot.store import AnswerRecord, Consultation
from retrieval.answer import Answer, Citation, Turn
from retrieval.match import MatchResult, Recommendation
from retrieval.match import SourceQuote as MatchCitation
from retrieval.profile import Profile

CATALOG = SourceCatalog(
    records={
        "mhlw-mediso": SourceInfo(
            ministry="MHLW", documents=("医療系ベンチャー振興のための取組",), url="https://mediso.mhlw.go.jp/"
        )
    },
    documents={"001_doc.txt": SourceInfo(ministry="MHLW", documents=("医療系ベンチャー振興のための取組",), url=None)},
)


def _answer(text: str = "MEDISOは相談窓口です [1]", *, confident: bool = True, language: str = "ja") -> Answer:
    citations = [
        Citation(
            n=1,
            id="mhlw-mediso#abc",
            kind="program",
            title="MEDISO <医療系ベンチャー>",
            source="programs/x.yaml",
            text="...",
            score=0.9,
        ),
        Citation(
            n=2,
            id="001_doc.txt#def",
            kind="document",
            title="資料の節",
            source="001_doc.txt（題）",
            text="...",
            score=0.5,
        ),
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


def test_answer_blocks_show_only_cited_sources_with_human_titles_and_native_feedback() -> None:
    blocks = answer_blocks(_answer(), answer_id="a1", catalog=CATALOG)
    _check_limits(blocks)
    text = _all_text(blocks)
    assert "MEDISOは相談窓口です [1]" in text
    sources = next(b for b in blocks if b["type"] == "context" and "出典" in b["elements"][0]["text"])
    line = sources["elements"][0]["text"]
    assert line == "*出典*: [1] MEDISO &lt;医療系ベンチャー&gt;"  # [2] is not cited by the text: not shown
    assert (
        "programs/x.yaml" not in text and "001_doc.txt" not in text and "mhlw-mediso" not in text.replace('"kk_', "")
    )  # no file names or record ids in what is shown
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [SOURCES, HANDOFF]
    assert actions[0]["text"]["text"] == "出典を見る" and {a["value"] for a in actions} == {"a1"}
    feedback = blocks[-1]
    assert feedback["type"] == "context_actions" and feedback["elements"][0]["type"] == "feedback_buttons"
    assert feedback["elements"][0]["positive_button"]["value"] == "up:a1"
    assert feedback["elements"][0]["negative_button"]["value"] == "down:a1"
    assert "根拠が弱い" not in text
    shared = answer_blocks(_answer(), answer_id="a1", catalog=CATALOG, share=True)
    assert next(b for b in shared if b["type"] == "actions")["elements"][0]["action_id"] == SHARE


def test_a_document_passage_is_labelled_with_its_deck_title_or_the_answers_own_label() -> None:
    cited = _answer("資料によれば [2]")
    line = next(b for b in answer_blocks(cited, answer_id="a", catalog=CATALOG) if b["type"] == "context")
    assert "[2] 医療系ベンチャー振興のための取組" in line["elements"][0]["text"]  # not 「資料の節」, not the file
    labelled = Citation(
        n=2,
        id="x#1",
        kind="document",
        title="2【既存】",
        source="004_x.txt（題）",
        text="…",
        score=0.5,
        label="骨太特集（2025年6月）p.4",
    )
    assert citation_label(labelled, CATALOG) == "骨太特集（2025年6月）p.4"
    unknown = Citation(
        n=3, id="y#1", kind="document", title="2【既存】", source="004_y.txt（政策の資料）", text="…", score=0.5
    )
    assert citation_label(unknown, CATALOG) == "政策の資料"


def test_sources_modal_quotes_the_cited_passages() -> None:
    record = AnswerRecord(
        question="MEDISOとは",
        answer="相談窓口です [2]",
        language="ja",
        citations_json=json.dumps(
            [
                {"n": 1, "label": "使われない", "text": "引用されない"},
                {"n": 2, "label": "医療系ベンチャー振興のための取組", "text": "MEDISOは <相談> 窓口"},
            ]
        ),
    )
    modal = sources_modal(record)
    text = _all_text(modal["blocks"])
    assert modal["type"] == "modal" and len(modal["blocks"]) <= 100
    assert "[2] 医療系ベンチャー振興のための取組" in text and "MEDISOは &lt;相談&gt; 窓口" in text
    assert "使われない" not in text


def test_weak_answer_carries_a_note_and_english_labels() -> None:
    blocks = answer_blocks(
        _answer("I could not find it [1].", confident=False, language="en"), answer_id="a2", catalog=CATALOG
    )
    text = _all_text(blocks)
    assert "evidence for this answer is weak" in text
    assert "Talk to a supporter" in text and "*Sources*" in text and "View sources" in text


def test_user_text_in_the_lead_is_escaped_by_the_caller_and_answer_text_is_escaped() -> None:
    blocks = answer_blocks(_answer("<!channel> & [1]"), answer_id="a3", catalog=CATALOG, lead="lead")
    assert blocks[0]["type"] == "context"
    assert "&lt;!channel&gt; &amp; [1]" in _all_text(blocks)
    assert answer_fallback_text(_answer("<!channel> & [1]")) == "&lt;!channel&gt; &amp; [1]"
    assert consultation_fallback_text(_consultation()) == "相談 K-0007（未対応）: 補助金 &lt;申請&gt;"


def _rec(kind: str, n: int, *, reasons: list[str] | None = None) -> Recommendation:
    return Recommendation(
        kind=kind,
        id=f"{kind}-{n}",
        name=f"{kind.upper()} {n} & Co",
        score=0.9 - n / 100,
        reasons=reasons
        or ["対象者: スタートアップ [1]", "ニーズに合う支援: <伴走支援> [2]", "注意（要件）: 要確認 [1]"],
        citations=[MatchCitation(source="004_34e0b65bd129f0b3.txt（経済産業省の取組）", text="MEDISOは…")],
    )


def test_match_cards_three_of_each_kind_fit_in_words_one_reason_one_source() -> None:
    recs = [_rec("program", i) for i in range(5)] + [_rec("vc", i) for i in range(4)]
    recs += [
        _rec(
            "vc",
            9,
            reasons=["AMED認定VC [1]", "注意: 資料には、出資先の開発内容がこのプロフィールに合うことを示す記載はない"],
        )
    ]
    recs += [_rec("cdmo", i) for i in range(4)]
    profile = Profile.model_validate(
        {"stages": ["non_clinical"], "modalities": ["cell_therapy"], "needs": ["non_dilutive_funding"]}
    )
    result = MatchResult(profile=profile, recommendations=recs, notes=["注意 <x>"], language="ja")
    cards = match_cards(result, catalog=CATALOG, language="ja")
    assert [c["kind"] for c in cards] == ["program"] * 3 + ["vc"] * 3  # no CDMO: manufacturing was not asked
    assert all(c["id"] != "vc-9" for c in cards)  # a VC the sources do not tie to the profile is left out
    assert cards[0]["fit"] == "条件に合う点 2・要確認 1" and cards[0]["reason"] == "ニーズに合う支援: <伴走支援>"
    assert cards[0]["source"] == "経済産業省の取組"
    titled = MatchResult(
        profile=Profile(),
        language="ja",
        recommendations=[
            Recommendation(
                kind="program",
                id="p",
                name="P",
                score=0.5,
                reasons=["ニーズに合う支援: 補助金"],
                citations=[MatchCitation(source="生物化学産業課の取組（2025年1月）", text="…")],
            )
        ],
    )
    assert match_cards(titled, catalog=CATALOG, language="ja")[0]["source"] == "生物化学産業課の取組（2025年1月）"
    blocks = match_blocks(
        cards, answer_id="m1", language="ja", summary=profile_summary(profile, "ja"), notes=result.notes
    )
    _check_limits(blocks)
    text = _all_text(blocks)
    assert (
        "0.8" not in text
        and "適合度" not in text
        and ".txt" not in text
        and "program-0" not in text.replace('"kk_', "")
    )
    assert "ご状況: 非臨床試験 · 細胞治療 · 非希釈的資金" in text or "ご状況: 非臨床" in text
    assert "PROGRAM 0 &amp; Co" in text and "注意 &lt;x&gt;" in text
    details = [b["accessory"] for b in blocks if b.get("accessory")]
    assert details[0]["action_id"] == DETAILS and details[0]["value"] == "m1:1"
    assert blocks[-1]["type"] == "context_actions"
    modal = match_details_modal(cards[0], "ja")
    assert "注意（要件）: 要確認" in _all_text(modal["blocks"]) and "MEDISOは…" in _all_text(modal["blocks"])

    manufacturing = profile.model_copy(update={"needs": [*profile.needs, "manufacturing"]})
    with_cdmo = match_cards(
        MatchResult(profile=manufacturing, recommendations=recs, language="ja"), catalog=CATALOG, language="ja"
    )
    assert [c["kind"] for c in with_cdmo].count("cdmo") == 3


def test_match_form_values_and_text() -> None:
    state = {
        "who": {"value": {"selected_option": {"value": "startup"}}},
        "pre_founding": {"value": {"selected_options": []}},
        "stage": {"value": {"selected_option": {"value": "non_clinical"}}},
        "modality": {"value": {"selected_options": [{"value": "cell_therapy"}]}},
        "needs": {"value": {"selected_options": [{"value": "manufacturing"}]}},
        "free_text": {"value": {"value": " iPS細胞 "}},
    }
    values = match_form_values(state)
    assert values == {
        "who": "startup",
        "pre_founding": False,
        "stage": "non_clinical",
        "modalities": ["cell_therapy"],
        "needs": ["manufacturing"],
        "free_text": "iPS細胞",
    }
    text = match_form_text(values)
    assert "非臨床試験" in text and "細胞治療" in text and "製造・プロセス開発" in text
    modal = match_modal(private_metadata={"c": "C1", "t": None})
    assert len(modal["title"]["text"]) <= 24 and modal["callback_id"] == MATCH_VIEW
    assert {b.get("block_id") for b in modal["blocks"]} >= {"who", "stage", "modality", "needs", "free_text"}


def _consultation(**changes: Any) -> Consultation:
    base = dict(
        id=7,
        status="open",
        asker_user_id="UASKER",
        urgency="high",
        topic="補助金 <申請>",
        consent_to_share=True,
        question="MEDISOとは",
        thread_summary="@UASKER: MEDISOとは",
        created_at=dt.datetime(2026, 1, 5, 9, 30),
        taken_at=None,
        resolved_at=None,
        assignee_user_id=None,
        resolved_by=None,
        asker_channel_id="C1",
    )
    return Consultation(**{**base, **changes})


def test_consultation_card_follows_its_state() -> None:
    answer = AnswerRecord(
        id="a9",
        answer="相談窓口です [1]",
        confident=False,
        citations_json=json.dumps([{"n": 1, "title": "MEDISO", "source": "programs/mhlw-mediso.yaml"}]),
    )
    open_card = consultation_card(
        _consultation(), answer=answer, profile_text="非臨床試験", permalink="https://x.slack.com/archives/C1/p1"
    )
    text = _all_text(open_card)
    assert "相談 K-0007（未対応）" in text and "補助金 &lt;申請&gt;" in text and "至急" in text
    assert "ボットの回答" in text and "<@UASKER>: MEDISOとは" in text and "非臨床" in text
    assert "programs/mhlw-mediso.yaml" not in text and "@UASKER:" not in text.replace("<@UASKER>:", "")
    assert text.count("MEDISOとは") == 2  # the question and the founder's message, each once
    buttons = [e for b in open_card if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["action_id"] == TAKE and buttons[0]["value"] == "7"
    assert buttons[1]["url"] == "https://x.slack.com/archives/C1/p1"
    answer_button = next(b["accessory"] for b in open_card if b.get("accessory"))
    assert answer_button["action_id"] == SOURCES and answer_button["value"] == "a9"

    from_dm = consultation_card(
        _consultation(asker_channel_id="D0ASKER"), answer=answer, permalink="https://x.slack.com/archives/D0ASKER/p1"
    )
    assert "archives/D0ASKER" not in _all_text(from_dm)  # supporters cannot open the founder's DM

    taken = consultation_card(
        _consultation(status="taken", assignee_user_id="USUP", taken_at=dt.datetime(2026, 1, 5, 10))
    )
    assert "担当: <@USUP>" in _all_text(taken)
    assert [e["action_id"] for b in taken if b["type"] == "actions" for e in b["elements"]] == [RESOLVE]

    done = consultation_card(
        _consultation(
            status="resolved", assignee_user_id="USUP", resolved_by="USUP", resolved_at=dt.datetime(2026, 1, 6)
        )
    )
    assert "対応済み: <@USUP>" in _all_text(done)
    # Nothing left to take or resolve; staff may save the supporters' answer as a curated answer (issue 15).
    assert [e["action_id"] for b in done if b["type"] == "actions" for e in b["elements"]] == [CURATE]


def test_consultation_card_without_consent_shares_only_the_topic() -> None:
    card = consultation_card(
        _consultation(consent_to_share=False),
        answer=AnswerRecord(id="a1", answer="秘密の回答", confident=True, citations_json="[]"),
        profile_text="非臨床",
    )
    text = _all_text(card)
    assert "同意していません" in text and "秘密の回答" not in text and "MEDISOとは" not in text and "非臨床" not in text


def test_thread_summary_keeps_the_opening_question() -> None:
    messages = [{"user": "UASKER", "text": "最初の質問"}, {"bot_id": "B1", "user": "UBOT", "text": "回答"}]
    messages += [{"user": "UASKER", "text": f"続き{i} " + "あ" * 200} for i in range(20)]
    summary = thread_summary(messages, bot_user_id="UBOT", limit=800)
    assert summary.startswith("@UASKER: 最初の質問") and len(summary) <= 800 and "続き19" in summary
    assert "回答" not in summary  # the bot's answer is on the card already
    assert thread_summary(messages[:2], bot_user_id="UBOT", skip=["最初の質問"]) == ""


def test_a_threads_turns_become_the_answerers_history() -> None:
    messages = [
        {"ts": "1", "user": "U1", "text": "MEDISOとは何ですか？"},
        {"ts": "2", "bot_id": "B", "text": "回答"},
        {"ts": "3", "user": "U1", "text": "Is it free?"},
        {"ts": "4", "user": "U1", "text": "相談は無料ですか？"},
    ]
    turns = previous_turns(messages, current_ts="4", bot_user_id="UB")
    assert turns[1] == {"role": "assistant", "text": "回答"} and len(turns) == 3
    assert as_history(turns) == [Turn("MEDISOとは何ですか？", "回答"), Turn("Is it free?", "")]
    assert as_history([{"role": "assistant", "text": "ようこそ"}]) == [Turn("", "ようこそ")]


def test_slash_command_parsing() -> None:
    assert parse("") == ("help", "")
    assert parse("help") == ("help", "")
    assert parse("ask  MEDISOとは") == ("ask", "MEDISOとは")
    assert parse("match") == ("match", "")
    assert parse("マッチング 細胞治療") == ("match", "細胞治療")
    assert parse("MEDISOとは") == ("ask", "MEDISOとは")
    assert parse("hepl") == ("unknown", "hepl") and parse("asdf") == ("unknown", "asdf")
    assert parse("ask") == ("ask", "") and parse("MEDISO") == ("ask", "MEDISO")
    assert "`/kakehashi help`" in unknown_text("hepl", "ja") and "help" not in unknown_text("asdf", "ja")


def test_home_view_shows_open_consultations_to_staff_only() -> None:
    consultation = _consultation()
    staff = home_view(
        is_staff=True,
        consultations=[consultation],
        counts={"total": 3, "open": 1, "taken": 1, "resolved": 1},
        month_label="2026年01月",
    )
    text = _all_text(staff["blocks"])
    assert "K-0007" in text and "受付 3 件" in text and TAKE in text and OPEN_MATCH in text
    public = home_view(is_staff=False, consultations=[consultation])
    assert "K-0007" not in _all_text(public["blocks"]) and "質問の例" in _all_text(public["blocks"])


def test_a_weak_answer_offers_a_person_first() -> None:
    blocks = answer_blocks(_answer("わかりませんでした [1]", confident=False), answer_id="w1", catalog=CATALOG)
    first = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert first["action_id"] == HANDOFF and first["style"] == "primary"


def test_an_answers_quote_lines_stay_blockquotes_and_nothing_else_acts() -> None:
    from bot.slack.text import escape_answer

    text = "BTEPの予算は91百万円です。 [3]\n> 「令和8年度概算要求額 91百万円 <!channel> & a>b」 [3]"
    shown = escape_answer(text)
    assert shown.splitlines()[1].startswith("> 「") and "&lt;!channel&gt;" in shown and "a&gt;b" in shown
    assert "&amp;" in shown and "<!channel>" not in shown
