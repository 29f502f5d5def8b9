"""A deadline for a whole chat-model call: an HTTP client's timeout bounds each read, not the whole
reply, so a provider that trickles bytes would otherwise hold a question (or a profile) forever."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from core.settings import Settings
from retrieval.errors import LLMError

T = TypeVar("T")


def chat_timeout(chat_model: Any) -> float:
    """The chat model's own request timeout (make_chat_model sets it from settings), else the default."""
    configured = getattr(chat_model, "request_timeout", None)
    if isinstance(configured, int | float) and configured > 0:
        return float(configured)
    return float(Settings.default("llm_timeout_s"))


def within(seconds: float, call: Callable[[], T]) -> T:
    """`call()`, given up after `seconds`: it runs on its own thread, which is abandoned (and ends when
    the server lets it) when time is up."""
    outcome: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(call)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="kakehashi-llm", daemon=True).start()
    if not done.wait(seconds):
        raise LLMError(f"chat model gave no complete answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
