"""Kakehashi's knowledge base: validated records (programs, VCs, CDMOs) and source documents."""

from pathlib import Path

SEED_KNOWLEDGE_DIR = Path(__file__).resolve().parent / "seed"
"""The knowledge shipped with the code (package data, read only): a deployment's own knowledge folder is
seeded from it on first use (knowledge.seeding); nothing ever writes here."""
