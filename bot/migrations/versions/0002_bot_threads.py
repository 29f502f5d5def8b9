"""Threads the bot is answering in, recorded before the answer is posted.

Follow-ups in a thread need no new mention once the bot is in it. Knowing that only from recorded
answers left a gap: a reply sent while the first answer was still being written (or streamed) was
ignored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_threads",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "thread_ts"),
    )


def downgrade() -> None:
    op.drop_table("bot_threads")
