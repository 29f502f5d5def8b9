"""What the red-team pass broke at the Slack edge: unsigned hostile bodies, replays of signed requests,
forged ids in buttons and forms, and clicks from people who are not supporters."""

from __future__ import annotations

import logging
import time

import pytest

from tests.slack_fixtures import Rig
from tests.slackdriver import sign

NESTED = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # 600 KB: under the body limit, far past the parser's stack


def _tracebacks(caplog: pytest.LogCaptureFixture, captured: str) -> list[str]:
    logged = [r.getMessage() for r in caplog.records if r.exc_info]
    return logged + (["stderr: " + captured[-500:]] if "Traceback" in captured else [])


def test_unsigned_deeply_nested_json_is_refused_before_parsing_without_a_traceback(
        rig: Rig, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    unsigned = rig.driver.post(NESTED, content_type="application/json", signature="v0=" + "0" * 64)
    no_headers = rig.driver.post(NESTED, content_type="application/json", headers={"X-Slack-Signature": ""})
    bad_time = rig.driver.post(NESTED, content_type="application/json", timestamp=0,
                               headers={"X-Slack-Request-Timestamp": "soon"})
    assert (unsigned.status, no_headers.status, bad_time.status) == (401, 401, 401)
    # Signed (someone holding the secret) and still unparsable: a 400, in one log line.
    stamp = str(int(time.time()))
    signed = rig.driver.post(NESTED, content_type="application/json", timestamp=int(stamp),
                             signature=sign(rig.driver.secret, stamp, NESTED))
    assert signed.status == 400
    rig.settle()
    assert _tracebacks(caplog, capfd.readouterr().err) == []
    assert not rig.fake.calls_to("chat.postMessage")
