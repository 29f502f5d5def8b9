"""Prompt templates, kept as text files beside this module and exposed as constants.

Templates use LangChain's `{name}` placeholders.
"""

from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent


def load_prompt(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8")


ANSWER_SYSTEM_JA = load_prompt("answer_system_ja")
ANSWER_HUMAN_JA = load_prompt("answer_human_ja")
ANSWER_SYSTEM_EN = load_prompt("answer_system_en")
ANSWER_HUMAN_EN = load_prompt("answer_human_en")
