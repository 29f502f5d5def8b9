"""Settings grouped by concern, each read from the variables operators already set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import KakehashiError
from core.settings import FLAT_NAMES, Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_every_documented_variable_is_a_setting_and_every_setting_is_documented() -> None:
    documented = set()
    for page in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        text = page.read_text(encoding="utf-8")
        # Slack's own four are documented by the names Slack's tools use (SLACK_BOT_TOKEN, ...).
        documented |= set(re.findall(r"\bKAKEHASHI_([A-Z][A-Z0-9_]*[A-Z0-9])\b", text))
        documented |= set(re.findall(r"\b(SLACK_[A-Z_]*[A-Z])\b", text))
    documented = {name for name in documented if not name.startswith("TEST_")}  # the test harness's own
    names = {name.upper() for name in FLAT_NAMES}
    assert documented - names == set(), "documented but not read"
    assert names - documented == set(), "read but not documented"


def test_each_group_reads_its_own_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAKEHASHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KAKEHASHI_CHROMA_HOST", "chroma.internal")
    monkeypatch.setenv("KAKEHASHI_CHROMA_PORT", "8001")
    monkeypatch.setenv("KAKEHASHI_TOP_K", "5")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-slack-name")
    monkeypatch.setenv("KAKEHASHI_SUPPORTERS_CHANNEL", "C0123456789")
    monkeypatch.setenv("KAKEHASHI_SLACK_STREAM", "false")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-name")
    monkeypatch.setenv("KAKEHASHI_GAPS_WEEKLY", "true")
    monkeypatch.setenv("KAKEHASHI_KB_STALE_DAYS", "30")

    settings = load_settings()

    assert settings.storage.data_dir == tmp_path
    assert settings.storage.knowledge_dir == tmp_path / "knowledge"  # follows data_dir when not set
    assert (settings.chroma.host, settings.chroma.port) == ("chroma.internal", 8001)
    assert settings.search.top_k == 5
    assert (
        settings.slack.bot_token is not None and settings.slack.bot_token.get_secret_value() == "xoxb-from-slack-name"
    )
    assert settings.slack.supporters_channel == "C0123456789"
    assert settings.slack.stream is False
    assert settings.llm.api_key is not None and settings.llm.api_key.get_secret_value() == "sk-openai-name"
    assert settings.gaps.weekly is True
    assert settings.kb.stale_days == 30
    assert "xoxb-from-slack-name" not in repr(settings) and "sk-openai-name" not in repr(settings)


def test_plain_names_that_are_not_ours_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A group's field is not an environment variable of its own: BOT_TOKEN or HOST in a shell mean nothing here.
    monkeypatch.setenv("BOT_TOKEN", "xoxb-stray")
    monkeypatch.setenv("HOST", "stray-host")
    monkeypatch.setenv("SUPPORTERS_CHANNEL", "C999")
    settings = load_settings()
    assert settings.slack.bot_token is None
    assert settings.chroma.host is None
    assert settings.slack.supporters_channel is None


def test_keyword_names_are_the_variables_names_and_a_copy_changes_only_what_it_names(tmp_path: Path) -> None:
    settings = Settings(chroma_host="10.0.0.5", data_dir=tmp_path / "a", top_k=3)
    moved = settings.updated(data_dir=tmp_path / "b")

    assert moved.storage.data_dir == tmp_path / "b"
    assert moved.storage.knowledge_dir == tmp_path / "b" / "knowledge"
    assert (moved.chroma.host, moved.search.top_k) == ("10.0.0.5", 3)
    assert settings.storage.data_dir == tmp_path / "a"  # the original is left as it was

    own = Settings(knowledge_dir=tmp_path / "mine", data_dir=tmp_path / "a").updated(data_dir=tmp_path / "c")
    assert own.storage.knowledge_dir == tmp_path / "mine"


def test_unknown_and_bad_values_are_settings_errors_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'chroma_hots'"):
        Settings(chroma_hots="x")
    with pytest.raises(SettingsError, match="KAKEHASHI_CHROMA_PORT"):
        Settings(chroma_port=70000)
    with pytest.raises(SettingsError, match="KAKEHASHI_GAPS_HOUR"):
        Settings(data_dir=tmp_path).updated(gaps_hour=25)
    with pytest.raises(SettingsError, match="unknown setting 'hour'"):
        Settings(data_dir=tmp_path).updated(hour=3)
    assert issubclass(SettingsError, KakehashiError)


def test_defaults_are_read_by_the_variables_name() -> None:
    assert Settings.default("top_k") == 8
    assert Settings.default("llm_timeout_s") == 30.0
