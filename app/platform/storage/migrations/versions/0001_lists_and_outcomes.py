"""Issued lists and inspection outcomes (release 0.1.0's schema version 1).

Revision ID: 0001_lists_and_outcomes
Revises:
Create Date: 2026-12-06

Idempotent: a table that is already there is left as it is. Its columns are written out here, not
imported from tables.py, so this revision creates the same tables whatever tables.py says later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_lists_and_outcomes"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "issued_lists" not in present:
        op.create_table(
            "issued_lists",
            sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
            sa.Column("city", sa.String(64), nullable=False),
            sa.Column("list_date", sa.Date, nullable=False),
            sa.Column("model_name", sa.String(128), nullable=False),
            sa.Column("model_version", sa.String(128), nullable=False),
            sa.Column("parameters", sa.JSON, nullable=False),
            sa.Column("row_count", sa.Integer, nullable=False),
            sa.Column("rows", sa.JSON, nullable=False),
            sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
            # 0.1.0 created version 1 from its tables as they were then, this column included.
            sa.Column("content_sha256", sa.String(64), nullable=True),
        )
        op.create_index("ix_issued_lists_city_date", "issued_lists", ["city", "list_date"])
        op.create_index("ux_issued_lists_content", "issued_lists", ["content_sha256"], unique=True)
    if "inspection_outcomes" not in present:
        op.create_table(
            "inspection_outcomes",
            sa.Column("city", sa.String(64), primary_key=True),
            sa.Column("inspection_id", sa.String(64), primary_key=True),
            sa.Column("establishment_id", sa.String(64), nullable=False),
            sa.Column("inspection_date", sa.Date, nullable=False),
            sa.Column("inspection_type", sa.String(128), nullable=True),
            sa.Column("result", sa.String(128), nullable=False),
            sa.Column("violations", sa.Text, nullable=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_outcomes_city_date", "inspection_outcomes", ["city", "inspection_date"])


def downgrade() -> None:
    op.drop_table("inspection_outcomes")
    op.drop_table("issued_lists")
