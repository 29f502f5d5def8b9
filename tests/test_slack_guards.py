"""What the red-team pass broke at the Slack edge: unsigned hostile bodies, replays of signed requests,
forged ids in buttons and forms, and clicks from people who are not supporters."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fakeslack import TEAM_ID
from tests.slack_fixtures import STAFF, SUPPORTERS, Rig, button, feedback_value, posted_text, user_says
from tests.slackdriver import sign

NESTED = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # 600 KB: under the body limit, far past the parser's stack


def _tracebacks(caplog: pytest.LogCaptureFixture, captured: str) -> list[str]:
    logged = [r.getMessage() for r in caplog.records if r.exc_info]
    return logged + (["stderr: " + captured[-500:]] if "Traceback" in captured else [])


def test_unsigned_deeply_nested_json_is_refused_before_parsing_without_a_traceback(
    rig: Rig, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    unsigned = rig.driver.post(NESTED, content_type="application/json", signature="v0=" + "0" * 64)
    no_headers = rig.driver.post(NESTED, content_type="application/json", headers={"X-Slack-Signature": ""})
    bad_time = rig.driver.post(
        NESTED, content_type="application/json", timestamp=0, headers={"X-Slack-Request-Timestamp": "soon"}
    )
    assert (unsigned.status, no_headers.status, bad_time.status) == (401, 401, 401)
    # Signed (someone holding the secret) and still unparsable: a 400, in one log line.
    stamp = str(int(time.time()))
    signed = rig.driver.post(
        NESTED, content_type="application/json", timestamp=int(stamp), signature=sign(rig.driver.secret, stamp, NESTED)
    )
    assert signed.status == 400
    rig.settle()
    assert _tracebacks(caplog, capfd.readouterr().err) == []
    assert not rig.fake.calls_to("chat.postMessage")


# --- shared steps ----------------------------------------------------------------------------------

QUESTION = "非臨床段階の細胞治療スタートアップです。MEDISOではどのような相談ができますか？"
OTHER_QUESTION = "AMEDの認定VCにはどのような会社がありますか？"


def _handoff_values(topic: str) -> dict[str, Any]:
    return {
        "topic": {"value": {"type": "plain_text_input", "value": topic}},
        "urgency": {"value": {"type": "radio_buttons", "selected_option": {"value": "normal"}}},
        "consent": {"value": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
    }


def _ask_in(rig: Rig, question: str, *, user: str, channel: str) -> tuple[str, dict[str, Any]]:
    """`user` mentions the bot in `channel`; (thread ts, the answer message as Slack shows it)."""
    before = len(rig.fake.calls_to("chat.postMessage"))
    root, _ = user_says(rig, question, mention=True, user=user, channel=channel)
    rig.fake.wait_for("chat.postMessage", count=before + 1)
    rig.settle()
    return root, next(m for m in rig.fake.thread(channel, root) if m.bot_id).to_slack()


def _open_handoff(rig: Rig, message: dict[str, Any], *, value: str, user: str, channel: str) -> dict[str, Any]:
    opened = len(rig.fake.calls_to("views.open"))
    rig.driver.click(action_id="kk_handoff", value=value, user=user, channel=channel, message=message)
    return rig.fake.wait_for("views.open", count=opened + 1)[opened].args["view"]


def _submission(rig: Rig, view: dict[str, Any], values: dict[str, Any], *, user: str) -> bytes:
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "kakehashi-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0KAKEHASHI",
        "trigger_id": f"trigger.{time.monotonic_ns()}",
        "view": {
            **view,
            "id": f"V{time.monotonic_ns()}",
            "state": {"values": values},
            "hash": "h1",
            "team_id": TEAM_ID,
        },
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _hand_off(rig: Rig) -> tuple[str, dict[str, Any]]:
    """U0ASKER's question handed off; (their thread, the card in the supporters' channel)."""
    root, message = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    view = _open_handoff(
        rig, message, value=button(message, "kk_handoff")["value"], user="U0ASKER", channel="C0GENERAL"
    )
    assert rig.driver.submit(view, _handoff_values("申請書の書き方"), user="U0ASKER").status == 200
    rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)
    rig.settle()
    return root, rig.fake.message(SUPPORTERS, rig.fake.messages[SUPPORTERS][0].ts).to_slack()


def _told_asker(rig: Rig, root: str) -> list[str]:
    return [
        str(c.args.get("text"))
        for c in rig.fake.calls_to("chat.postMessage")
        if c.args["channel"] == "C0GENERAL" and c.args.get("thread_ts") == root
    ]


# --- 2. take and resolve only by supporters -------------------------------------------------------


def test_only_supporters_may_take_or_resolve_and_only_from_the_card(rig: Rig) -> None:
    root, card = _hand_off(rig)
    told_before = _told_asker(rig, root)
    # Anyone else, from the card itself: refused, told privately; the asker hears nothing.
    for action in ("kk_take", "kk_resolve"):
        rig.driver.click(action_id=action, value="1", user="U0INTRUDER", channel=SUPPORTERS, message=card)
    # A supporter's click forged into another channel: refused too.
    rig.driver.click(action_id="kk_take", value="1", user="U0SUPPORTER", channel="C0GENERAL", message=card)
    rig.settle()
    refusals = [c.args for c in rig.fake.calls_to("chat.postEphemeral")]
    assert [r["user"] for r in refusals] == ["U0INTRUDER", "U0INTRUDER", "U0SUPPORTER"]
    assert all("相談員だけ" in r["text"] for r in refusals)
    row = rig.store.get_consultation(1)
    assert (row.status, row.assignee_user_id, row.resolved_by) == ("open", None, None)
    assert not rig.fake.calls_to("chat.update") and _told_asker(rig, root) == told_before
    # A member of the supporters' channel (not staff) takes it; staff resolve it from the App Home.
    rig.driver.click(action_id="kk_take", value="1", user="U0SUPPORTER", channel=SUPPORTERS, message=card)
    rig.fake.wait_for("chat.update")
    rig.driver.click(action_id="kk_resolve", value="1", user=STAFF, view={"id": "VHOME", "type": "home"})
    rig.fake.wait_for("chat.update", count=2)
    rig.settle()
    row = rig.store.get_consultation(1)
    assert (row.status, row.assignee_user_id, row.resolved_by) == ("resolved", "U0SUPPORTER", STAFF)


# --- 3. ids in payloads belong to the acting user and place ---------------------------------------


def test_a_handoff_naming_someone_elses_answer_does_not_carry_their_question_or_thread(rig: Rig) -> None:
    victim_root, victim_answer = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    other_root, other_answer = _ask_in(rig, OTHER_QUESTION, user="U0OTHER", channel="C0OTHER")
    victim_id = button(victim_answer, "kk_handoff")["value"]
    # U0OTHER's hand-off button in their own channel, carrying U0ASKER's answer id.
    view = _open_handoff(rig, other_answer, value=victim_id, user="U0OTHER", channel="C0OTHER")
    assert "MEDISO" not in json.dumps(view, ensure_ascii=False)  # the victim's question is not pre-filled
    assert rig.driver.submit(view, _handoff_values("自分の相談"), user="U0OTHER").status == 200
    rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)
    rig.settle()
    [row] = rig.store.consultations()
    assert row.asker_user_id == "U0OTHER" and row.answer_id is None and "MEDISO" not in row.question
    assert (row.asker_channel_id, row.asker_thread_ts) == ("C0OTHER", other_root)
    assert "MEDISO" not in posted_text(rig.fake.calls_to("chat.postMessage")[-2])  # the card
    assert _told_asker(rig, victim_root) == [] or all("K-0001" not in t for t in _told_asker(rig, victim_root))


def test_form_metadata_is_bound_to_the_user_who_opened_the_form(rig: Rig) -> None:
    root, answer = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    # 👎 by the asker opens the reasons form for their feedback row.
    rig.driver.click(
        action_id="kk_feedback",
        value=feedback_value(answer, "negative"),
        user="U0ASKER",
        channel="C0GENERAL",
        message=answer,
        element="feedback_buttons",
    )
    reasons_view = rig.fake.wait_for("views.open")[0].args["view"]
    rig.settle()
    values = {
        "reasons": {"value": {"type": "checkboxes", "selected_options": [{"value": "wrong"}]}},
        "comment": {"value": {"type": "plain_text_input", "value": "上書きした"}},
    }
    # Someone else submits the asker's form (its metadata names the asker's feedback row), and a forged form
    # with plain metadata: neither changes the asker's feedback.
    assert rig.driver.submit(reasons_view, values, user="U0OTHER").status == 200
    forged = {**reasons_view, "private_metadata": json.dumps({"f": 1, "c": "C0GENERAL", "t": root, "l": "ja"})}
    assert rig.driver.submit(forged, values, user="U0OTHER").status == 200
    # A hand-off form with forged metadata pointing into the asker's thread opens nothing.
    handoff = _open_handoff(
        rig, answer, value=button(answer, "kk_handoff")["value"], user="U0ASKER", channel="C0GENERAL"
    )
    forged_handoff = {
        **handoff,
        "private_metadata": json.dumps(
            {"a": button(answer, "kk_handoff")["value"], "c": "C0GENERAL", "t": root, "l": "ja"}
        ),
    }
    assert rig.driver.submit(forged_handoff, _handoff_values("横取り"), user="U0OTHER").status == 200
    rig.settle()
    [feedback] = rig.store.feedback()
    assert (feedback.user_id, feedback.reasons, feedback.comment) == ("U0ASKER", "", "")
    assert rig.store.consultations() == []
    assert all("K-0001" not in t for t in _told_asker(rig, root))
    # The asker's own submission still works.
    assert rig.driver.submit(reasons_view, values, user="U0ASKER").status == 200
    rig.settle()
    assert rig.store.feedback()[0].comment == "上書きした"


def test_a_rating_naming_an_answer_from_another_channel_is_refused(rig: Rig) -> None:
    _, victim_answer = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    _, other_answer = _ask_in(rig, OTHER_QUESTION, user="U0OTHER", channel="C0OTHER")
    rig.driver.click(
        action_id="kk_feedback",
        value=feedback_value(victim_answer, "positive"),
        user="U0OTHER",
        channel="C0OTHER",
        message=other_answer,
        element="feedback_buttons",
    )
    rig.settle()
    assert rig.store.feedback() == []


# --- 4. replays -------------------------------------------------------------------------------------


def _replay(rig: Rig, body: bytes, *, times: int) -> list[int]:
    """The same signed request (same bytes, timestamp and signature) sent `times` times."""
    stamp = str(int(time.time()))
    signature = sign(rig.driver.secret, stamp, body)
    return [
        rig.driver.post(
            body, content_type="application/x-www-form-urlencoded", timestamp=int(stamp), signature=signature
        ).status
        for _ in range(times)
    ]


def test_a_replayed_slash_command_is_answered_once(rig: Rig) -> None:
    form = {
        "token": "unused",
        "team_id": TEAM_ID,
        "team_domain": "kakehashi-test",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "user_id": "U0ASKER",
        "user_name": "u0asker",
        "command": "/kakehashi",
        "text": f"ask {QUESTION}",
        "api_app_id": "A0KAKEHASHI",
        "is_enterprise_install": "false",
        "response_url": rig.fake.response_url + "commands/replay",
        "trigger_id": "trigger.replay",
    }
    assert _replay(rig, urlencode(form).encode(), times=2) == [200, 200]
    rig.fake.wait_for("response_url")  # the answer, private to the asker
    rig.settle()
    time.sleep(0.5)
    rig.settle()
    assert len(rig.fake.calls_to("response_url")) == 1 and len(rig.store.answers()) == 1


def test_a_replayed_handoff_form_opens_one_consultation(rig: Rig) -> None:
    _, answer = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    view = _open_handoff(rig, answer, value=button(answer, "kk_handoff")["value"], user="U0ASKER", channel="C0GENERAL")
    body = _submission(rig, view, _handoff_values("申請書の書き方"), user="U0ASKER")
    assert _replay(rig, body, times=3) == [200, 200, 200]
    rig.fake.wait_for("chat.postMessage", lambda c: c.args["channel"] == SUPPORTERS)
    rig.settle()
    time.sleep(0.5)
    rig.settle()
    assert len(rig.store.consultations()) == 1 and len(rig.fake.messages[SUPPORTERS]) == 1


def test_a_match_form_with_forged_metadata_posts_nowhere(rig: Rig) -> None:
    """The match form's results go where its metadata says: only as sealed for the person who opened it."""
    root, _ = _ask_in(rig, QUESTION, user="U0ASKER", channel="C0GENERAL")
    assert rig.driver.command("match", user="U0OTHER", channel="C0OTHER").status == 200
    view = rig.fake.wait_for("views.open")[0].args["view"]
    values = {"free_text": {"value": {"type": "plain_text_input", "value": "細胞治療の非臨床スタートアップです"}}}
    forged = {**view, "private_metadata": json.dumps({"c": "C0GENERAL", "t": root})}
    before = len(rig.fake.calls_to("chat.postMessage"))
    assert rig.driver.submit(forged, values, user="U0OTHER").status == 200
    rig.settle()
    assert sum(1 for m in rig.fake.thread("C0GENERAL", root) if m.bot_id) == 1  # the asker's answer alone
    assert not [c for c in rig.fake.calls_to("chat.postMessage")[before:] if c.args["channel"] == "C0GENERAL"]
    # The form as opened, by the one who opened it, is answered where it was opened.
    assert rig.driver.submit(view, values, user="U0OTHER").status == 200
    rig.fake.wait_for("chat.postEphemeral", lambda c: c.args["channel"] == "C0OTHER" and c.args["user"] == "U0OTHER")
    rig.settle()
