"""The model set generation every worker and replica serves (app/platform/generation.py).

One row, id 1: an operator's reload bumps `generation`; each worker sees the change and reloads.
Additive: a release before it never reads the table.

Revision ID: 0003_model_set_generation
Revises: 0002_content_sha256
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_model_set_generation"
down_revision: str | Sequence[str] | None = "0002_content_sha256"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "model_set_generation"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
