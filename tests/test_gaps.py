"""The gaps report: low-confidence answers, 👎 with reasons and hand-offs, grouped by topic, in the
CLI and as a weekly post to the supporters' channel. Real desk database, real embedder and index;
only Slack is faked."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.cli import main
from bot.cli_report import format_gap_report
from bot.desk_gaps import collect_gap_items, gap_report
from bot.slack.app import make_client
from bot.slack.deps import Deps
from bot.slack.gapsreport import (
    MAX_BLOCKS,
    GapsScheduler,
    gaps_blocks,
    gaps_fallback_text,
    is_due,
    post_weekly_gaps,
    week_key,
)
from bot.slack.sources import SourceCatalog
from bot.store import AnswerRecord, DeskStore
from core.settings import Settings, SettingsError, load_settings
from retrieval.answer import Answerer
from retrieval.embeddings import Embedder
from retrieval.engine import embedded_store_lock
from retrieval.gaps import (
    GapItem,
    GapReport,
    GapTopic,
    average_linkage,
    build_gap_report,
    candidate_terms,
)
from retrieval.index import SearchIndex
from tests.clirun import run_main
from tests.conftest import kakehashi_env, run_kakehashi
from tests.fakeslack import FakeSlack
from tests.slack_fixtures import SUPPORTERS, slack_settings

# One topic the knowledge base lacks, asked three ways (two in Japanese, one in English) ...
REGEN_TAX = (
    "再生医療の治験費用は税制優遇の対象になりますか？",
    "細胞治療の治験にかかった費用で税額控除は受けられますか",
    "Are clinical trial costs for regenerative medicine eligible for tax incentives?",
)
# ... and an unrelated one.
VISA = "外国人研究者を雇うときのビザ申請はどうすればいいですか"
NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 10:00 JST, ISO week 48


def _ask(store: DeskStore, question: str, *, confident: bool = False, language: str = "ja") -> AnswerRecord:
    return store.record_answer(
        surface="mention",
        question=question,
        answer="（回答）",
        language=language,
        confident=confident,
        mode="extractive",
        citations=[],
        user_id="U0ASKER",
        channel_id="C0GENERAL",
        thread_ts="1700000000.000100",
    )


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[DeskStore]:
    """A desk database with a week of gaps: the regenerative-trial tax topic asked three ways, one
    of them rated 👎 with reasons and another handed off; an unrelated visa question; and a
    confident answer and a 👍 that are not gaps."""
    store = DeskStore(url=f"sqlite:///{tmp_path / 'desk.sqlite3'}")
    first = _ask(store, REGEN_TAX[0])
    second = _ask(store, REGEN_TAX[1])
    _ask(store, REGEN_TAX[2], language="en")
    _ask(store, VISA)
    fine = _ask(store, "創薬ベンチャーエコシステム強化事業の補助率は？", confident=True)
    store.add_feedback(answer_id=fine.id, user_id="U0OTHER", rating="up")
    down = store.add_feedback(answer_id=second.id, user_id="U0ASKER", rating="down")
    store.explain_feedback(down.id, reasons=["wrong", "outdated"], comment="税額控除の率が2026年度から変わったはず")
    store.open_consultation(
        asker_user_id="U0ASKER",
        topic="再生医療の治験費用の税制優遇について相談したい",
        urgency="normal",
        consent_to_share=True,
        question=REGEN_TAX[0],
        answer_id=first.id,
    )
    yield store
    store.close()


def _topic_of(report: GapReport, text: str) -> GapTopic:
    return next(t for t in report.topics if any(i.text == text for i in t.items))


# --- grouping -----------------------------------------------------------------------------------


def test_differently_worded_questions_on_one_missing_topic_form_one_topic(
    desk: DeskStore, embedder: Embedder, seed_index: SearchIndex
) -> None:
    items = collect_gap_items(desk, since=NOW - dt.timedelta(days=3650))
    report = build_gap_report(items, embedder=embedder, index=seed_index)

    regen = _topic_of(report, REGEN_TAX[0])
    assert {i.text for i in regen.items} >= set(REGEN_TAX)
    visa = _topic_of(report, VISA)
    assert visa is not regen and {i.text for i in visa.items} == {VISA}
    # Not gaps: the confident answer, and the 👍.
    assert all("補助率" not in i.text for t in report.topics for i in t.items)

    assert report.topics[0] is regen  # the largest topic first
    # Three answers, one rated 👎 and one handed off: three questions, five signs.
    assert regen.questions == 3
    assert regen.counts == {"low_confidence": 3, "thumbs_down": 1, "handoff": 1}
    assert regen.reasons == {"wrong": 1, "outdated": 1}
    assert regen.comments == ("税額控除の率が2026年度から変わったはず",)
    assert report.counts == {"low_confidence": 4, "thumbs_down": 1, "handoff": 1}
    # Named by one of its own Japanese questions, with key terms that are words, not bigrams.
    assert regen.label in {i.text for i in regen.items} and re.search(r"[ぁ-ん]", regen.label)
    assert any("治験" in term for term in regen.terms), regen.terms
    assert all(len(term) >= 2 and term not in ("の", "は", "ます") for term in regen.terms)


def test_threshold_decides_how_fine_topics_are(desk: DeskStore, embedder: Embedder) -> None:
    items = collect_gap_items(desk, since=NOW - dt.timedelta(days=3650))
    distinct = len({" ".join(i.text.split()) for i in items})
    assert len(build_gap_report(items, embedder=embedder, threshold=0.999).topics) == distinct
    assert len(build_gap_report(items, embedder=embedder, threshold=-1.0).topics) == 1


def test_average_linkage_does_not_chain() -> None:
    # a~b and b~c are close, a and c are not: single linkage would chain all three.
    similarity = [[1.0, 0.6, 0.0], [0.6, 1.0, 0.6], [0.0, 0.6, 1.0]]
    import numpy as np

    clusters = average_linkage(np.array(similarity), 0.5)
    assert sorted(map(len, clusters)) == [1, 2]


def test_candidate_terms_are_content_words() -> None:
    terms = candidate_terms("再生医療等製品の治験費用で税額控除は受けられる? PMDA and the IND")
    assert terms[:3] == ["再生医療等製品", "治験費用", "税額控除"]
    assert "PMDA" in terms and "IND" in terms
    assert "the" not in terms and "and" not in terms


def test_nearest_record_is_named_and_new_topics_are_flagged(
    tmp_path: Path, embedder: Embedder, seed_index: SearchIndex
) -> None:
    at = NOW
    items = [
        GapItem(kind="low_confidence", text="税制適格ストックオプションの要件を知りたい", at=at),
        GapItem(kind="handoff", text="社名を変更したいのですが登記の手続きは？", at=at, ref="K-0001"),
    ]
    report = build_gap_report(items, embedder=embedder, index=seed_index)
    stock = _topic_of(report, items[0].text)
    assert stock.nearest is not None and stock.nearest.close and not stock.new_topic
    assert "ストックオプション" in stock.nearest.title
    rename = _topic_of(report, items[1].text)
    assert rename.nearest is not None and rename.new_topic


def test_window_leaves_out_older_signs(desk: DeskStore, embedder: Embedder, seed_index: SearchIndex) -> None:
    # Eight days ago, the visa question: outside a 7-day window, inside a 10-day one.
    with desk.engine.begin() as connection:
        connection.execute(
            update(AnswerRecord)
            .where(AnswerRecord.question == VISA)
            .values(created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=8))
        )
    settings = Settings()
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    week = gap_report(settings, desk, index=seed_index, now=now, days=7)
    assert all(i.text != VISA for t in week.topics for i in t.items)
    ten = gap_report(settings, desk, index=seed_index, now=now, days=10)
    assert any(i.text == VISA for t in ten.topics for i in t.items)


# --- the command --------------------------------------------------------------------------------


def _cli_env(monkeypatch: pytest.MonkeyPatch, seed_settings: Settings, database: Path) -> None:
    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(seed_settings.storage.data_dir))
    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", f"sqlite:///{database}")


def test_cli_prints_topics(
    desk: DeskStore,
    tmp_path: Path,
    seed_settings: Settings,
    seed_index: SearchIndex,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, seed_settings, tmp_path / "desk.sqlite3")
    assert main(["report", "gaps", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert "トピック / topic" in out and "👎の理由 / reasons" in out
    assert "内容が間違っている" in out and "情報が古い" in out
    for question in (*REGEN_TAX, VISA):
        assert question in out
    # The two topics are printed as two numbered entries, the larger first.
    first, second = out.index("\n1. トピック"), out.index("\n2. トピック")
    assert first < second
    assert out.index(REGEN_TAX[2]) < second < out.index(VISA)

    assert main(["report", "gaps", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["days"] == 7 and data["counts"]["thumbs_down"] == 1
    texts = [{i["text"] for i in topic["items"]} for topic in data["topics"]]
    assert any(set(REGEN_TAX) <= group and VISA not in group for group in texts)


def test_cli_leaves_the_index_a_bot_serves_alone_and_still_groups(
    desk: DeskStore,
    tmp_path: Path,
    seed_settings: Settings,
    seed_index: SearchIndex,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _cli_env(monkeypatch, seed_settings, tmp_path / "desk.sqlite3")
    lock = embedded_store_lock(seed_settings)  # what `serve` holds while it runs
    assert lock is not None
    with lock:
        assert main(["report", "gaps", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any("a running bot holds the embedded search index" in note for note in data["notes"])
    assert all(topic["nearest"] is None for topic in data["topics"])
    texts = [{i["text"] for i in topic["items"]} for topic in data["topics"]]
    assert any(set(REGEN_TAX) <= group and VISA not in group for group in texts)


def test_cli_says_when_there_are_no_gaps(tmp_path: Path, seed_settings: Settings, standin_embedder: Embedder) -> None:
    """The report group's smoke test: a real `kakehashi report gaps` process; then a missing database,
    in this process (tests/clirun.py)."""
    DeskStore(url=f"sqlite:///{tmp_path / 'empty.sqlite3'}").close()
    env = {"KAKEHASHI_DATA_DIR": str(tmp_path), "KAKEHASHI_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    done = run_kakehashi("report", "gaps", "--days", "3", env=kakehashi_env(**env), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no gaps in the last 3 days" in done.stdout

    env["KAKEHASHI_DATABASE_URL"] = f"sqlite:///{tmp_path / 'missing' / 'desk.sqlite3'}"
    missing = run_main("report", "gaps", env=env, embedder=lambda settings: standin_embedder)
    assert missing.returncode == 2 and "no desk database at" in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_text_report_of_nothing() -> None:
    assert "no gaps in the last 7 days" in format_gap_report(GapReport(topics=()), days=7)


# --- Slack --------------------------------------------------------------------------------------


def _topic(n: int, label: str) -> GapTopic:
    at = NOW - dt.timedelta(minutes=n)
    item = GapItem(kind="thumbs_down", text=label, at=at, reasons=("wrong",), comment="<!here> " + "長" * 400)
    return GapTopic(
        label=label,
        terms=("治験費用", "<b>"),
        items=(item,) * 5,
        questions=5,
        counts={"low_confidence": 0, "thumbs_down": 5, "handoff": 0},
        reasons={"wrong": 5},
        comments=(item.comment,),
        first_at=at,
        latest_at=at,
    )


def test_blocks_stay_within_slack_limits_and_escape_user_text() -> None:
    topics = tuple(_topic(n, f"<!channel> 質問{n} " + "あ" * 4000) for n in range(40))
    report = GapReport(
        topics=topics,
        since=NOW - dt.timedelta(days=7),
        until=NOW,
        counts={"low_confidence": 0, "thumbs_down": 200, "handoff": 0},
    )
    for language in ("ja", "en"):
        blocks = gaps_blocks(report, language)
        assert len(blocks) <= MAX_BLOCKS
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
            if block["type"] == "context":
                assert len(block["elements"]) <= 10
        text = json.dumps(blocks, ensure_ascii=False)
        assert "<!channel>" not in text and "<!here>" not in text and "<b>" not in text
        assert "&lt;!channel&gt;" in text
        # Topics that did not fit are counted, not dropped silently.
        shown = sum(1 for b in blocks if b["type"] == "section")
        assert f"{40 - shown}" in blocks[-1]["elements"][0]["text"]
    assert "過去7日" in gaps_fallback_text(report, "ja")


def _deps(settings: Settings, store: DeskStore, answerer: Answerer) -> Deps:
    return Deps(
        settings=settings,
        answerer=answerer,
        matcher=None,
        store=store,
        catalog=SourceCatalog.empty(),
        logger=logging.getLogger("kakehashi.test.gaps"),
    )


def test_weekly_post_goes_out_once_a_week(
    desk: DeskStore, tmp_path: Path, seed_settings: Settings, fake_slack: FakeSlack, slack_answerer: Answerer
) -> None:
    settings = slack_settings(seed_settings, api_url=fake_slack.url, database=tmp_path / "desk.sqlite3")
    client = make_client(settings)
    # Two bot processes: each its own connection to the shared database.
    other = DeskStore(url=settings.storage.effective_database_url)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    try:
        assert post_weekly_gaps(_deps(settings, desk, slack_answerer), client, now) is True
        assert post_weekly_gaps(_deps(settings, other, slack_answerer), client, now) is False
        assert post_weekly_gaps(_deps(settings, desk, slack_answerer), client, now + dt.timedelta(hours=3)) is False
    finally:
        other.close()
    posts = fake_slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].args["channel"] == SUPPORTERS
    posted = json.dumps(posts[0].args["blocks"], ensure_ascii=False)
    assert "ナレッジベースの不足" in posted and "内容が間違っている" in posted
    assert any(q in posted for q in REGEN_TAX) and VISA in posted

    # The next week is a new report.
    assert post_weekly_gaps(_deps(settings, desk, slack_answerer), client, now + dt.timedelta(days=7)) is True
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_questions_asked_in_dms_are_counted_but_not_quoted_in_the_channel(
    desk: DeskStore,
    tmp_path: Path,
    seed_settings: Settings,
    fake_slack: FakeSlack,
    slack_answerer: Answerer,
    seed_index: SearchIndex,
) -> None:
    secret = "弊社ACME-Bioの未公開の抗体データを治験の税制優遇の申請に使えますか"
    only_in_dms = "外国人研究者を雇うとき在留資格の手続きはどのくらいかかりますか"
    for question, channel in ((secret, "D0ASKER"), (only_in_dms, "D0OTHER")):
        desk.record_answer(
            surface="dm",
            question=question,
            answer="（回答）",
            language="ja",
            confident=False,
            mode="extractive",
            citations=[],
            user_id="U0ASKER",
            channel_id=channel,
            thread_ts="1700000000.000200",
        )
    settings = slack_settings(seed_settings, api_url=fake_slack.url, database=tmp_path / "desk.sqlite3")
    assert post_weekly_gaps(
        _deps(settings, desk, slack_answerer),
        make_client(settings),
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
        index=seed_index,
    )
    posted = json.dumps(fake_slack.calls_to("chat.postMessage")[0].args["blocks"], ensure_ascii=False)
    assert "ACME" not in posted and "未公開" not in posted and "在留資格" not in posted
    assert any(q in posted for q in REGEN_TAX)  # asked in a channel: quoted as before
    assert "DMでの質問" in posted  # ... and the private ones are counted, not hidden

    report = gap_report(seed_settings, desk, index=seed_index, now=dt.datetime.now(dt.UTC), days=7)
    private = [i for t in report.topics for i in t.items if i.private]
    assert {i.text for i in private} == {secret, only_in_dms}
    assert "[DM]" in format_gap_report(report, days=7)  # staff running the CLI see everything


def test_week_key_and_due_time_are_japan_time() -> None:
    settings = Settings(gaps_weekday=0, gaps_hour=9)
    sunday_night_utc = dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)  # Monday 08:30 JST
    assert week_key(sunday_night_utc) == "gaps-report-2026-W48"
    assert not is_due(sunday_night_utc, settings)
    assert is_due(sunday_night_utc + dt.timedelta(hours=1), settings)
    assert not is_due(sunday_night_utc + dt.timedelta(days=1, hours=1), settings)  # Tuesday


def test_scheduler_posts_when_due_and_stops(
    desk: DeskStore, tmp_path: Path, seed_settings: Settings, fake_slack: FakeSlack, slack_answerer: Answerer
) -> None:
    settings = slack_settings(
        seed_settings,
        api_url=fake_slack.url,
        database=tmp_path / "desk.sqlite3",
        gaps_weekly=True,
        gaps_weekday=0,
        gaps_hour=9,
    )
    clock = {"now": NOW - dt.timedelta(hours=2)}  # Monday 08:00 JST: not yet
    scheduler = GapsScheduler(
        deps=_deps(settings, desk, slack_answerer),
        client=make_client(settings),
        interval_s=0.05,
        clock=lambda: clock["now"],
    )
    assert scheduler.tick() is False
    scheduler.start()
    try:
        time.sleep(0.3)
        assert fake_slack.calls_to("chat.postMessage") == []
        clock["now"] = NOW  # 10:00 JST
        fake_slack.wait_for("chat.postMessage", timeout=60)
        time.sleep(0.3)  # several more checks
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_gaps_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAKEHASHI_GAPS_WEEKDAY", "7")
    with pytest.raises(SettingsError, match="KAKEHASHI_GAPS_WEEKDAY"):
        load_settings()


def test_serve_starts_the_scheduler_only_when_enabled(
    desk: DeskStore, tmp_path: Path, seed_settings: Settings, fake_slack: FakeSlack, slack_answerer: Answerer
) -> None:
    from bot.slack.gapsreport import start_weekly_gaps

    settings = slack_settings(seed_settings, api_url=fake_slack.url, database=tmp_path / "desk.sqlite3")
    client = make_client(settings)
    assert start_weekly_gaps(settings=settings, store=desk, answerer=slack_answerer, client=client) is None
    on = settings.updated(**{"gaps_weekly": True})
    scheduler = start_weekly_gaps(settings=on, store=desk, answerer=slack_answerer, client=client, interval_s=0.05)
    assert scheduler is not None and scheduler.running
    scheduler.stop()
    assert not scheduler.running


def test_topics_say_whether_a_curated_answer_now_covers_them_and_curated_answers_served_are_counted(
    desk: DeskStore,
    seed_index: SearchIndex,
    tmp_path: Path,
    seed_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import dataclasses

    from knowledge.loader import load_knowledge
    from knowledge.schema import CuratedAnswer

    for question in ("MEDISOへの相談は無料ですか？", "Is consulting MEDISO free?"):
        desk.record_answer(
            surface="mention",
            question=question,
            answer="無料です",
            language="ja",
            confident=True,
            mode="curated",
            citations=[],
            user_id="U0ASKER",
            channel_id="C0GENERAL",
        )
    old = desk.record_answer(
        surface="mention",
        question="MEDISOは無料？",
        answer="無料です",
        language="ja",
        confident=True,
        mode="curated",
        citations=[],
        user_id="U0ASKER",
        channel_id="C0GENERAL",
    )
    with desk.engine.begin() as connection:
        connection.execute(
            update(AnswerRecord)
            .where(AnswerRecord.id == old.id)
            .values(created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=9))
        )
    visa = CuratedAnswer.model_validate(
        {
            "id": "gaikokujin-kenkyusha-visa",
            "questions": [VISA],
            "author": "佐藤 花子",
            "as_of": dt.date.today(),
            "answer_ja": "在留資格の申請は出入国在留管理庁が扱います。MEDISOのサポーターが手続きの相談にのります。",
        }
    )
    kb = dataclasses.replace(load_knowledge(seed_settings.storage.knowledge_dir), answers=[visa])
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    report = gap_report(Settings(), desk, index=seed_index, now=now, days=7, knowledge=lambda: kb)
    assert report.curated_served == 2
    covered = _topic_of(report, VISA).covered_by
    assert covered is not None and covered.answer_id == "gaikokujin-kenkyusha-visa"
    assert _topic_of(report, REGEN_TAX[0]).covered_by is None

    text = format_gap_report(report, days=7)
    assert "questions answered by curated answers: 2" in text
    assert "now answered by curated answer: gaikokujin-kenkyusha-visa" in text
    assert "no curated answer yet — write one" in text
    blocks = json.dumps(gaps_blocks(report), ensure_ascii=False)
    assert "サポーター確認済みの回答で答えた質問 2件" in blocks
    assert "確認済みの回答で答えるようになりました" in blocks and "まだ確認済みの回答はありません" in blocks
