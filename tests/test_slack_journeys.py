"""Whole journeys as founders and supporters live them, over signed HTTP against the fake Slack: the
Messages tab (agent messaging), a DM question, a hand-off from a DM that the supporter takes and answers
through the bot, and what any screen may never show (seed file names, YAML paths, record ids)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from bot.slack.sources import SourceCatalog
from core.settings import Settings
from knowledge.loader import KnowledgeBase
from retrieval.answer import Answerer
from retrieval.match import Matcher
from tests.fakeslack import FakeSlack
from tests.slack_fixtures import SUPPORTERS, Rig, button, make_rig, user_says
from tests.test_slack_handoff import _handoff_values

DM = "D0ASKER"
QUESTION = "非臨床段階の細胞治療スタートアップです。MEDISOではどのような相談ができますか？"
SEED_FILE = re.compile(r"\d{3}_[0-9a-f]{16}\.txt")
YAML_PATH = re.compile(r"[\w/-]+\.ya?ml\b")


def _shown(value: Any) -> list[str]:
    """Every string a person can read in a call: texts, titles, fallback text; not ids or values."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in (
                "action_id",
                "block_id",
                "value",
                "callback_id",
                "private_metadata",
                "url",
                "trigger_id",
                "channel",
                "ts",
                "thread_ts",
                "user",
                "path",
                "channel_id",
                "view_id",
                "user_id",
            ):
                continue
            found += [item] if isinstance(item, str) and key in ("text", "title", "message") else _shown(item)
    elif isinstance(value, list):
        for item in value:
            found += _shown(item)
    return found


def _dm_question(rig: Rig, text: str = QUESTION) -> tuple[str, dict[str, Any]]:
    ts, _ = user_says(rig, text, channel=DM, channel_type="im")
    stop = rig.fake.wait_for("chat.stopStream")[-1]
    rig.settle()
    return ts, rig.fake.message(DM, stop.args["ts"]).to_slack()


def test_messages_tab_greets_once_with_suggested_prompts(rig: Rig) -> None:
    opened = {
        "type": "app_home_opened",
        "user": "U0ASKER",
        "channel": DM,
        "tab": "messages",
        "event_ts": "1700000000.000001",
    }
    rig.driver.event(opened)
    prompts = rig.fake.wait_for("assistant.threads.setSuggestedPrompts")[0].args
    greeting = rig.fake.wait_for("chat.postMessage")[0].args
    rig.settle()
    assert prompts["channel_id"] == DM and "thread_ts" not in prompts  # agent messaging: no thread_ts
    assert len(prompts["prompts"]) == 4 and "MEDISO" in prompts["prompts"][0]["message"]
    assert greeting["channel"] == DM and "Kakehashi" in greeting["text"] and not greeting.get("thread_ts")
    assert rig.fake.calls_to("users.info")[0].args["include_locale"] in (True, "true", "1", 1)

    rig.driver.event({**opened, "event_ts": "1700000000.000002"})  # opened again: prompts, no second greeting
    rig.fake.wait_for("assistant.threads.setSuggestedPrompts", count=2)
    rig.settle()
    assert len(rig.fake.calls_to("chat.postMessage")) == 1


def test_messages_tab_speaks_the_users_slack_language(rig: Rig) -> None:
    rig.fake.locales["U0ENGLISH"] = "en-US"
    rig.driver.event(
        {
            "type": "app_home_opened",
            "user": "U0ENGLISH",
            "channel": "D0ENGLISH",
            "tab": "messages",
            "event_ts": "1700000000.000003",
        }
    )
    prompts = rig.fake.wait_for("assistant.threads.setSuggestedPrompts")[0].args
    greeting = rig.fake.wait_for("chat.postMessage")[0].args
    rig.settle()
    assert prompts["title"] == "Try asking" and prompts["prompts"][0]["title"] == "What is MEDISO?"
    assert greeting["text"].startswith(":wave: Hello")


def test_dm_hand_off_taken_by_a_supporter_lets_them_talk_through_the_bot(rig: Rig) -> None:
    root, answer = _dm_question(rig)
    rig.driver.click(
        action_id="kk_handoff", value=button(answer, "kk_handoff")["value"], user="U0ASKER", channel=DM, message=answer
    )
    view = rig.fake.wait_for("views.open")[0].args["view"]
    rig.driver.submit(view, _handoff_values("申請書の書き方を相談したい"), user="U0ASKER")
    card_call = rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)[0]
    rig.settle()
    card = json.dumps(card_call.args["blocks"], ensure_ascii=False)
    assert "archives/D0ASKER" not in card and "Kakehashi とのDM" in card  # no link supporters cannot open
    card_ts = rig.fake.messages[SUPPORTERS][0].ts

    rig.driver.click(
        action_id="kk_take",
        value="1",
        user="U0SUPPORTER",
        channel=SUPPORTERS,
        message=rig.fake.message(SUPPORTERS, card_ts).to_slack(),
    )
    rig.fake.wait_for("chat.update")
    rig.settle()
    taken = rig.fake.thread(DM, root)[-1]
    assert "<@U0SUPPORTER> さんが担当します" in taken.text and "担当者に届き" in taken.text

    # The supporter replies in the card's thread: it reaches the founder's DM thread.
    user_says(
        rig,
        "担当の山田です。<!channel> 申請書の下書きはありますか？",
        channel=SUPPORTERS,
        thread_ts=card_ts,
        user="U0SUPPORTER",
    )
    relayed = rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == DM and "下書き" in c.args["text"])[
        0
    ].args
    assert relayed["thread_ts"] == root and relayed["text"].startswith("*<@U0SUPPORTER>（相談員）*")
    assert "<!channel>" not in relayed["text"]  # relayed as text, nothing broadcast

    # The founder answers in their thread: it reaches the card's thread and pings the assignee.
    posts = len(rig.fake.calls_to("chat.postMessage"))
    ts = rig.fake.add_message(DM, text="はい、あります。", user="U0ASKER", thread_ts=root)
    rig.driver.event(
        {
            "type": "message",
            "user": "U0ASKER",
            "text": "はい、あります。",
            "ts": ts,
            "thread_ts": root,
            "channel": DM,
            "channel_type": "im",
            "event_ts": ts,
        }
    )
    back = rig.fake.wait_for(
        "chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS and "はい、あります" in c.args["text"]
    )[0].args
    rig.settle()
    assert back["thread_ts"] == card_ts and back["text"].startswith("<@U0SUPPORTER> ")
    assert len(rig.fake.calls_to("chat.postMessage")) == posts + 1  # relayed, not answered by the bot
    assert not rig.fake.calls_to("chat.startStream")[1:]

    # Someone else in the card's thread is not relayed to the founder.
    user_says(rig, "（内部メモ）来週対応", channel=SUPPORTERS, thread_ts=card_ts, user="U0OTHERSUP")
    rig.settle()
    assert not [c for c in rig.fake.calls_to("chat.postMessage") if "内部メモ" in c.args["text"]]


def test_a_founders_file_offers_a_supporter(rig: Rig) -> None:
    file = rig.fake.add_file("pitch.pdf", b"%PDF-1.4 not really", user="U0ASKER", mimetype="application/pdf")
    ts = rig.fake.add_message(DM, text="この資料を見てもらえますか？", user="U0ASKER")
    rig.driver.event(
        {
            "type": "message",
            "subtype": "file_share",
            "user": "U0ASKER",
            "text": "この資料を見てもらえますか？",
            "ts": ts,
            "channel": DM,
            "channel_type": "im",
            "event_ts": ts,
            "files": [file],
        }
    )
    offer = rig.fake.wait_for("chat.postMessage")[0].args
    rig.settle()
    assert offer["thread_ts"] == ts and "相談員" in offer["text"]
    assert button(offer, "kk_handoff")


def test_no_screen_shows_seed_files_yaml_paths_or_record_ids(rig: Rig, seed_kb: KnowledgeBase) -> None:
    _dm_question(rig)
    user_says(rig, "創薬ベンチャーエコシステム強化事業の補助率は？", mention=True)
    rig.fake.wait_for("chat.postMessage")
    rig.driver.command("match 非臨床段階の細胞治療スタートアップで、研究開発の資金と製造委託先を探しています")
    result = rig.fake.wait_for("response_url")[0].args
    rig.settle()
    rig.driver.click(
        action_id="kk_details",
        value=button(result, "kk_details")["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        ephemeral=True,
    )
    rig.driver.click(
        action_id="kk_sources",
        value=button(result, "kk_handoff")["value"],
        user="U0ASKER",
        channel="C0GENERAL",
        ephemeral=True,
    )
    rig.driver.event({"type": "app_home_opened", "user": "U0ASKER", "channel": DM, "tab": "home"})
    rig.fake.wait_for("views.publish")
    rig.fake.wait_for("views.open", count=2)
    rig.settle()
    for call in rig.fake.calls:  # Slack's limits, on every screen of the journey
        blocks = call.args.get("blocks") or (call.args.get("view") or {}).get("blocks") or []
        assert len(blocks) <= (100 if call.method.startswith("views.") else 50), call.method
        for block in blocks:
            assert len((block.get("text") or {}).get("text", "")) <= 3000
    ids = {r.id for r in seed_kb.records}
    texts = [t for call in rig.fake.calls for t in _shown(call.args)]
    assert len(texts) > 30
    for text in texts:
        assert not SEED_FILE.search(text), text
        assert not YAML_PATH.search(text), text
        words = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", text))
        assert not words & ids, (words & ids, text)


def test_manifest_declares_the_agent_view_and_its_events() -> None:
    manifest = yaml.safe_load((Path(__file__).parent.parent / "manifest.yaml").read_text(encoding="utf-8"))
    features = manifest["features"]
    assert "assistant_view" not in features and features["agent_view"]["agent_description"]
    assert 1 <= len(features["agent_view"]["suggested_prompts"]) <= 4
    assert features["app_home"]["messages_tab_enabled"] and not features["app_home"]["messages_tab_read_only_enabled"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_home_opened", "app_context_changed", "message.im"} <= set(events)
    assert "users:read" in manifest["oauth_config"]["scopes"]["bot"]


def test_which_support_fits_me_goes_to_matching_from_a_dm(
    seed_settings: Settings,
    fake_slack: FakeSlack,
    tmp_path: Path,
    slack_answerer: Answerer,
    slack_matcher: Matcher,
    slack_catalog: SourceCatalog,
) -> None:
    # The answerer's own understanding reads the intent; routing it to the matcher is the Slack side's job.
    rig = make_rig(
        base=seed_settings,
        fake=fake_slack,
        tmp_path=tmp_path,
        answerer=slack_answerer,
        matcher=slack_matcher,
        catalog=slack_catalog,
    )
    try:
        ts, _ = user_says(
            rig, "非臨床段階の細胞治療スタートアップです。自分に合う支援を探しています", channel=DM, channel_type="im"
        )
        post = rig.fake.wait_for("chat.postMessage")[0].args
        rig.settle()
        modes = [a.mode for a in rig.store.answers()]
    finally:
        rig.close()
    assert post["thread_ts"] == ts and button(post, "kk_details")  # recommendation cards, not an answer
    assert "条件に合う点" in json.dumps(post["blocks"], ensure_ascii=False)
    assert modes == ["match"]


def test_a_short_dm_is_met_in_the_users_slack_language(rig: Rig) -> None:
    rig.fake.locales["U0ENGLISH"] = "en-US"
    ts, _ = user_says(rig, "VC?", channel="D0ENGLISH", channel_type="im", user="U0ENGLISH")
    status = rig.fake.wait_for("assistant.threads.setStatus")[0].args
    rig.settle()
    assert status["thread_ts"] == ts and status["status"] == "Checking the sources…"  # "VC?" alone cannot tell
