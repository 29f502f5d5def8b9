"""Slack outages do not lose answers: the real app over HTTP against the fake Slack, whose chat.postMessage
fails (500s, 429s with a long Retry-After) for a while. Answers wait in the desk database's outbox and are
delivered once Slack is back, each once; no listener thread sleeps on a Retry-After."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.fakeslack import FakeSlack
from tests.slack_fixtures import Rig, user_event

QUESTIONS = ["MEDISOではどのような相談ができますか？", "創薬ベンチャーエコシステム強化事業の補助率は？",
             "AMEDの認定VCにはどのような会社がありますか？", "What does AMED's CiCLE program fund?",
             "再生・細胞医療・遺伝子治療の製造設備投資を支援する事業は？"]


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
