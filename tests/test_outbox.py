"""Slack outages do not lose answers: the real app over HTTP against the fake Slack, whose chat.postMessage
fails (500s, 429s with a long Retry-After) for a while. Answers wait in the desk database's outbox and are
delivered once Slack is back, each once; no listener thread sleeps on a Retry-After."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.fakeslack import FakeSlack
from tests.slack_fixtures import Rig, user_event

QUESTIONS = [
    "MEDISOではどのような相談ができますか？",
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "AMEDの認定VCにはどのような会社がありますか？",
    "What does AMED's CiCLE program fund?",
    "再生・細胞医療・遺伝子治療の製造設備投資を支援する事業は？",
]


def _answers_in(fake: FakeSlack, roots: list[str], channel: str = "C0GENERAL") -> dict[str, int]:
    return {root: sum(1 for m in fake.thread(channel, root) if m.bot_id) for root in roots}


def _wait_all_answered(fake: FakeSlack, roots: list[str], *, timeout: float) -> float:
    started = time.monotonic()
    while any(n == 0 for n in _answers_in(fake, roots).values()):
        assert time.monotonic() - started < timeout, _answers_in(fake, roots)
        time.sleep(0.1)
    return time.monotonic() - started


def _ask_all(rig: Rig, questions: list[str]) -> list[str]:
    events = [user_event(rig.fake, q, mention=True) for q in questions]
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        replies = list(pool.map(lambda e: rig.driver.event(e).status, events))
    assert replies == [200] * len(events)
    return [e["ts"] for e in events]


def test_answers_asked_while_slack_fails_are_delivered_once_when_it_is_back(rig: Rig) -> None:
    rig.fake.fail("chat.postMessage", status=500, times=10**6)
    roots = _ask_all(rig, QUESTIONS)
    rig.settle()
    time.sleep(1.5)  # the worker retries meanwhile, and fails
    assert _answers_in(rig.fake, roots) == {root: 0 for root in roots}
    assert len(rig.store.deliveries(statuses=("pending", "sending"))) == len(QUESTIONS)
    rig.fake.recover("chat.postMessage")
    took = _wait_all_answered(rig.fake, roots, timeout=30)
    time.sleep(1.5)  # time for a second copy, were there one
    assert _answers_in(rig.fake, roots) == {root: 1 for root in roots}
    print(f"{len(roots)} answers delivered {took:.1f}s after Slack came back")
    rows = rig.store.deliveries()
    assert [r.status for r in rows] == ["sent"] * len(QUESTIONS) and all(r.attempts >= 2 for r in rows)
    recorded = {a.thread_ts: a for a in rig.store.answers()}
    assert set(recorded) == set(roots) and all(a.message_ts for a in recorded.values())


def test_a_long_retry_after_holds_no_listener_thread(rig: Rig) -> None:
    rig.fake.fail("chat.postMessage", status=429, retry_after=30, times=10**6)
    roots = _ask_all(rig, QUESTIONS * 2)
    started = time.monotonic()
    rig.settle()  # before, every listener slept 3 x 30 s on the Retry-After: this timed out
    assert time.monotonic() - started < 10
    rig.fake.recover("chat.postMessage")
    # A question asked once Slack is back is answered at once, and the waiting answers follow it.
    [late] = _ask_all(rig, ["MEDISOとはどのような相談窓口ですか？"])
    took = _wait_all_answered(rig.fake, [late], timeout=10)
    assert took < 5, took
    waited = _wait_all_answered(rig.fake, roots, timeout=20)
    time.sleep(1.0)
    assert _answers_in(rig.fake, [*roots, late]) == {root: 1 for root in [*roots, late]}
    print(f"question after recovery answered in {took:.1f}s; the {len(roots)} waiting ones within {waited:.1f}s more")


def test_a_row_whose_process_died_mid_post_is_taken_over_and_not_posted_twice(rig: Rig) -> None:
    """A process that posted an answer and died before marking it sent leaves a lease that runs out; the
    worker that takes the row over finds the answer in the thread (its buttons carry its id) and records
    it rather than posting it again. A row whose post never reached Slack is posted once."""
    root = rig.fake.add_message("C0GENERAL", text="質問です", user="U0ASKER")
    record = {
        "surface": "mention",
        "question": "質問です",
        "answer": "回答です",
        "language": "ja",
        "confident": True,
        "mode": "extractive",
        "citations": [],
        "user_id": "U0ASKER",
        "team_id": "T0KAKEHASHI",
    }

    def payload(answer_id: str) -> dict[str, Any]:
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": "回答です"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "kk_feedback_up",
                        "value": answer_id,
                        "text": {"type": "plain_text", "text": "👍"},
                    }
                ],
            },
        ]
        return {
            "place": {"channel": "C0GENERAL", "thread_ts": root, "user_id": "U0ASKER", "team_id": "T0KAKEHASHI"},
            "text": "回答です",
            "blocks": blocks,
            "record": record,
        }

    posted = payload("a0000000dead")
    rig.outbox.client.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="回答です", blocks=posted["blocks"])
    dead = dt.timedelta(seconds=-1)  # the lease of a process that is gone
    rig.store.enqueue(answer_id="a0000000dead", payload=posted, claimed_by="gone:1:x", lease=dead)
    rig.store.enqueue(answer_id="a0000000lost", payload=payload("a0000000lost"), claimed_by="gone:1:x", lease=dead)
    deadline = time.monotonic() + 15
    while {r.status for r in rig.store.deliveries()} != {"sent"}:
        assert time.monotonic() < deadline, [(r.answer_id, r.status, r.last_error) for r in rig.store.deliveries()]
        time.sleep(0.1)
    bot_messages = [m for m in rig.fake.thread("C0GENERAL", root) if m.bot_id]
    values = [e["value"] for m in bot_messages for b in m.blocks if b["type"] == "actions" for e in b["elements"]]
    assert sorted(values) == ["a0000000dead", "a0000000lost"]  # each once
    assert sorted(a.id for a in rig.store.answers()) == ["a0000000dead", "a0000000lost"]
