"""Kakehashi's knowledge base: validated records (programs, VCs, CDMOs) and source documents."""

from pathlib import Path

DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent
