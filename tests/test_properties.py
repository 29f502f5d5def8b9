"""Property-based tests (hypothesis): tokenizers, profile extraction, record validation and the
Slack HTTP endpoint take whatever they are given without crashing, and keep their invariants."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.slack.server import MAX_BODY_BYTES
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.errors import RecordError
from knowledge.loader import parse_record
from knowledge.normalize import fold, fold_dashes
from knowledge.schema import CuratedAnswer, Record
from retrieval.profile import NEEDS, Profile, ProfileVocabulary, extract_profile
from retrieval.tokenize import BigramTokenizer, SudachiTokenizer
from tests.slack_fixtures import Rig, user_says
from tests.slackdriver import sign

FAST = settings(max_examples=300, deadline=None)
SLOW = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# Any Unicode (control characters, combining marks, astral planes, lone-surrogate-free), plus the
# scripts the desk actually sees, so the Japanese paths get exercised and not only random symbols.
JAPANESE = st.text(
    alphabet=st.sampled_from(
        "あいうえおかがきぎくけこさしすせそたちつてとなにぬねのはばぱまみむめもやゆよらりるれろわをんー"
        "アイウエオカガキクケコサシスセソタチツテトナニヌネノハバパマミムメモヤユヨラリルレロワヲンヴ々〆ヶ"
        "創薬支援事業開発段階治験製造細胞遺伝子医療機器再生抗体低分子臨床非前基礎応用認定投資補助金"
        "０１２３４５６７８９ＡＢＣａｂｃ　、。・（）「」％円億万㍿ｶﾞｷﾞ①②"
    ),
    max_size=60,
)
TEXT = st.one_of(
    st.text(max_size=200), JAPANESE, st.lists(st.one_of(st.text(max_size=20), JAPANESE), max_size=8).map("".join)
)


# --- tokenizers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sudachi() -> SudachiTokenizer:
    return SudachiTokenizer()


@FAST
@given(text=TEXT)
@example(text="\x00\x1b\u200b\ufeff\u3000\t\r\n")
@example(text="9.2億円 2025-2029 BINDS CiCLE の は")
def test_bigram_tokens_are_non_empty_pieces_of_the_normalized_text(text: str) -> None:
    tokenizer = BigramTokenizer()
    tokens = tokenizer.tokenize(text)
    assert tokens == tokenizer.tokenize(text)  # deterministic
    normalized = fold(text).replace(",", "")
    for token in tokens:
        assert isinstance(token, str) and token and not token.isspace()
        assert token in normalized  # tokens are cut from the text, never made up
        assert token == token.strip() and token == fold(token)


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
@example(text="\x00\x01\x7f\ud7ff\U0010fffd")
@example(text="創薬ベンチャーエコシステム強化事業は、ＡＭＥＤの基金事業です。" * 3)
def test_sudachi_tokens_are_non_empty_and_deterministic(sudachi: SudachiTokenizer, text: str) -> None:
    tokens = sudachi.tokenize(text)
    assert tokens == sudachi.tokenize(text)
    assert all(isinstance(t, str) and t.strip() for t in tokens)


@pytest.mark.parametrize("name", ["bigram", "sudachi"])
def test_huge_inputs_are_tokenized_in_bounded_time(name: str, sudachi: SudachiTokenizer) -> None:
    tokenizer = sudachi if name == "sudachi" else BigramTokenizer()
    huge = "創薬支援の対象は非臨床段階です。BINDS 9.2億円\x00\u200b" * 12_000  # ~400k characters, no newline
    started = time.monotonic()
    tokens = tokenizer.tokenize(huge)
    assert time.monotonic() - started < 30
    assert len(tokens) > 100_000 and all(tokens)
    assert tokenizer.tokenize("あ" * 300_000) == tokenizer.tokenize("あ" * 300_000)


# --- profile extraction -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocabulary() -> ProfileVocabulary:
    return ProfileVocabulary.default()


def _assert_valid(profile: Profile) -> None:
    assert Profile.model_validate(profile.model_dump()) == profile  # every value is in its vocabulary
    for values in (
        profile.who,
        profile.stages,
        profile.modalities,
        profile.disease_areas,
        profile.needs,
        profile.destinations,
    ):
        assert len(values) == len(set(values))
    assert "any" not in profile.who and "any" not in profile.modalities and "any" not in profile.disease_areas
    assert all(need in NEEDS for need in profile.needs)
    assert not profile.pre_founding or "academia" in profile.who


@FAST
@given(text=TEXT)
def test_vocabulary_extraction_of_any_text_is_a_valid_profile(vocabulary: ProfileVocabulary, text: str) -> None:
    profile = vocabulary.extract(text)
    _assert_valid(profile)
    assert profile.free_text == text
    assert extract_profile(text) == vocabulary.extract(text.strip()[:4000])
    matches = vocabulary.find(text)
    haystack = fold_dashes(text)
    assert [m.start for m in matches] == sorted(m.start for m in matches)
    for before, after in itertools.pairwise(matches):
        assert before.end <= after.start  # each character claimed by one term at most
    assert all(0 <= m.start < m.end <= len(haystack) for m in matches)


def _fields(profile: Profile) -> set[tuple[str, str]]:
    return {
        (name, str(value))
        for name in ("who", "stages", "modalities", "disease_areas", "needs", "destinations")
        for value in getattr(profile, name)
    } | ({("pre_founding", "yes")} if profile.pre_founding else set())


@FAST
@given(data=st.data(), before=TEXT, after=TEXT)
def test_text_around_a_sentence_never_takes_away_what_it_says(
    vocabulary: ProfileVocabulary, data: st.DataObject, before: str, after: str
) -> None:
    term = data.draw(st.sampled_from([t for t in vocabulary.terms if t.assignment.values]), label="term")
    sentence = term.text.rstrip("*")
    alone = vocabulary.extract(sentence)
    surrounded = vocabulary.extract(f"{before}\n。\n{sentence}\n。\n{after}")
    assert _fields(alone) <= _fields(surrounded)


# --- record validation --------------------------------------------------------------------------

RECORD_FILES = sorted(SEED_KNOWLEDGE_DIR.glob("*/*.yaml"))
RECORD_FILES = [p for p in RECORD_FILES if p.parent.name in ("programs", "vcs", "cdmos")]
KIND_OF = {"programs": "program", "vcs": "vc", "cdmos": "cdmo"}


def _check_parse(path: Path, kind: str, text: str) -> Record | CuratedAnswer | RecordError:
    try:
        return parse_record(path, kind, text)
    except RecordError as exc:  # anything else is the bug this test looks for
        assert exc.path == path and str(exc).startswith(str(path))
        assert exc.line is None or 1 <= exc.line <= text.count("\n") + 2
        return exc


YAMLISH = st.one_of(
    TEXT,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=12,
    ).map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
    st.lists(
        st.sampled_from(
            [
                "id: x",
                "kind: program",
                "- a",
                "  - b",
                "key: [",
                "? k",
                ": v",
                "&a [*a]",
                "*a",
                "!!python/object:os.system",
                "%YAML 1.1",
                "---",
                "...",
                "'",
                '"',
                "#",
                " # ",
                "\t",
                "name_ja: 名前",
                "aliases: [A, B]",
                "sources:",
                "  - document: x.txt",
            ]
        ),
        max_size=12,
    ).map("\n".join),
)


@FAST
@given(text=YAMLISH, kind=st.sampled_from(["program", "vc", "cdmo"]))
@example(text="[" * 5000, kind="program")
@example(text="a: &a [*a, *a]\nb: *a", kind="program")
def test_any_yaml_ish_text_is_a_record_or_a_record_error(text: str, kind: str) -> None:
    _check_parse(Path("knowledge/programs/fuzz.yaml"), kind, text)


def _mutations(text: str) -> st.SearchStrategy[str]:
    lines = text.splitlines()
    position = st.integers(0, max(0, len(text) - 1))
    line = st.integers(0, max(0, len(lines) - 1))
    return st.one_of(
        position.map(lambda i: text[:i]),  # cut short
        st.tuples(position, TEXT).map(lambda p: text[: p[0]] + p[1] + text[p[0] :]),  # something inserted
        line.map(lambda i: "\n".join(lines[:i] + lines[i + 1 :])),  # a line deleted
        st.tuples(line, line).map(
            lambda ij: "\n".join(
                [lines[ij[1]] if k == ij[0] else lines[ij[0]] if k == ij[1] else s for k, s in enumerate(lines)]
            )
        ),
        st.tuples(line, st.sampled_from(["", " ", "  ", "\t", "- "])).map(
            lambda p: "\n".join([p[1] + s.lstrip() if k == p[0] else s for k, s in enumerate(lines)])
        ),  # indentation changed
        st.tuples(line, TEXT).map(
            lambda p: "\n".join(
                [s.split(":", 1)[0] + ": " + p[1] if k == p[0] and ":" in s else s for k, s in enumerate(lines)]
            )
        ),
    )


@FAST
@given(data=st.data(), path=st.sampled_from(RECORD_FILES))
def test_mutated_real_records_are_records_or_record_errors(data: st.DataObject, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    kind = KIND_OF[path.parent.name]
    assert isinstance(_check_parse(path, kind, text), Record)  # the original is valid
    mutated = data.draw(_mutations(text), label="mutated")
    assume(mutated != text)
    _check_parse(path, kind, mutated)


# --- the Slack HTTP endpoint --------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
ENVELOPE_TYPES = st.sampled_from(
    [
        "event_callback",
        "url_verification",
        "block_actions",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "block_suggestion",
        "app_rate_limited",
        "nonsense",
    ]
)
EVENT_TYPES = st.sampled_from(
    [
        "app_mention",
        "message",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "reaction_added",
        "nonsense",
    ]
)


def _envelope(kind: str, event_type: str, junk: dict[str, Any], text: str) -> dict[str, Any]:
    """Payloads shaped like Slack's, with random holes and junk where the app reads fields."""
    event = {
        "type": event_type,
        "user": "U0FUZZ",
        "text": text,
        "channel": junk.get("c", "C0FUZZ"),
        "ts": junk.get("ts", "1700000000.000100"),
        **junk,
    }
    return {
        "type": kind,
        "team_id": "T0KAKEHASHI",
        "api_app_id": "A0KAKEHASHI",
        "event_id": f"EvFUZZ{len(text)}",
        "event": event,
        "challenge": text,
        "user": junk.get("user", {"id": "U0FUZZ"}),
        "actions": junk.get("actions", [{"action_id": junk.get("a", "kk_feedback_up"), "value": text}]),
        "view": junk.get(
            "view",
            {
                "type": "modal",
                "callback_id": junk.get("cb", "kk_feedback_view"),
                "private_metadata": text,
                "state": {"values": junk},
            },
        ),
        **junk,
    }


BODIES = st.one_of(
    st.binary(max_size=400).map(lambda b: (b, "application/json")),
    st.binary(max_size=400).map(lambda b: (b, "application/x-www-form-urlencoded")),
    JSON_VALUES.map(lambda v: (json.dumps(v).encode(), "application/json")),
    st.builds(
        _envelope,
        ENVELOPE_TYPES,
        EVENT_TYPES,
        st.dictionaries(
            st.sampled_from(
                [
                    "c",
                    "ts",
                    "a",
                    "cb",
                    "user",
                    "actions",
                    "view",
                    "thread_ts",
                    "subtype",
                    "bot_id",
                    "channel_type",
                    "tab",
                    "type",
                    "event",
                    "trigger_id",
                    "container",
                    "message",
                ]
            ),
            JSON_VALUES,
            max_size=4,
        ),
        TEXT,
    ).map(lambda v: (json.dumps(v).encode(), "application/json")),
    st.builds(_envelope, ENVELOPE_TYPES, EVENT_TYPES, st.just({}), TEXT).map(
        lambda v: (urlencode({"payload": json.dumps(v)}).encode(), "application/x-www-form-urlencoded")
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "command",
                "text",
                "user_id",
                "channel_id",
                "response_url",
                "trigger_id",
                "team_id",
                "payload",
                "ssl_check",
            ]
        ),
        TEXT,
        max_size=6,
    ).map(lambda form: (urlencode({"command": "/kakehashi", **form}).encode(), "application/x-www-form-urlencoded")),
)


@pytest.fixture
def seeded_rig(rig: Rig) -> Iterator[tuple[Rig, dict[str, Any]]]:
    """The app with one real answer, feedback and consultation stored, and their values as read back."""
    user_says(rig, "MEDISOではどのような相談ができますか？", mention=True)
    rig.fake.wait_for("chat.postMessage")
    rig.settle()
    [answer] = rig.store.answers()
    rig.store.add_feedback(answer_id=answer.id, user_id="U0ASKER", rating="up")
    rig.store.open_consultation(
        asker_user_id="U0ASKER", topic="治験", urgency="high", consent_to_share=True, answer_id=answer.id
    )
    yield rig, _snapshot(rig)


def _snapshot(rig: Rig) -> dict[str, Any]:
    answers = {a.id: (a.question, a.answer, a.citations_json, a.message_ts) for a in rig.store.answers()}
    feedback = {f.id: (f.answer_id, f.rating, f.reasons, f.comment) for f in rig.store.feedback()}
    consultations = {c.id: (c.status, c.topic, c.answer_id, c.assignee_user_id) for c in rig.store.consultations()}
    return {"answers": answers, "feedback": feedback, "consultations": consultations}


@SLOW
@given(body=BODIES, signed=st.booleans())
def test_the_slack_endpoint_never_fails_with_a_server_error(
    seeded_rig: tuple[Rig, dict[str, Any]], body: tuple[bytes, str], signed: bool
) -> None:
    rig, before = seeded_rig
    raw, content_type = body
    stamp = str(int(time.time()))
    signature = sign(rig.driver.secret, stamp, raw) if signed else sign("wrong-secret", stamp, raw)
    reply = rig.driver.post(raw, content_type=content_type, timestamp=int(stamp), signature=signature)
    assert reply.status < 500, reply.body
    if not signed:
        assert reply.status in (400, 401)  # malformed, or not from Slack: nothing is handled either way
    rig.settle()
    after = _snapshot(rig)
    for table, rows in before.items():  # rows stored before are untouched; new ones read back whole
        for key, row in rows.items():
            if table == "feedback" and key in after[table]:
                assert after[table][key][:2] == row[:2]
            elif table != "consultations":
                assert after[table][key] == row
    for question, _, citations, _ in after["answers"].values():
        assert isinstance(json.loads(citations), list) and isinstance(question, str)


@pytest.mark.parametrize("size", [1_000_000, 8_000_000])
@pytest.mark.parametrize("signed", [True, False])
def test_huge_bodies_are_refused_or_handled_without_a_server_error(
    seeded_rig: tuple[Rig, dict[str, Any]], size: int, signed: bool
) -> None:
    rig, before = seeded_rig
    text = "創薬" * (size // 6)
    raw = json.dumps(
        {
            "type": "event_callback",
            "event_id": f"EvHUGE{size}{signed}",
            "event": {
                "type": "app_mention",
                "user": "U0HUGE",
                "text": text,
                "channel": "C0GENERAL",
                "ts": "1700000999.000100",
            },
        }
    ).encode()
    stamp = str(int(time.time()))
    reply = rig.driver.post(
        raw,
        content_type="application/json",
        timestamp=int(stamp),
        signature=sign(rig.driver.secret if signed else "wrong", stamp, raw),
    )
    assert reply.status < 500 and (signed or reply.status in (401, 413))
    if size > MAX_BODY_BYTES:
        assert reply.status == 413  # refused before it is read, signed or not
    assert reply.seconds < 3  # Slack's acknowledgement deadline
    rig.settle()
    assert _snapshot(rig)["consultations"] == before["consultations"]
    assert all(len(q) <= rig.settings.slack.max_input_chars for q, *_ in _snapshot(rig)["answers"].values())
