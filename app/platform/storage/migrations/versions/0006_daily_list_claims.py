"""Daily list claims: one process of all workers and replicas computes each daily list.

`daily_list_claims` holds one row per list key (sha256 of city, date, model, parameters and the
data's revision): who claimed it and when, and the stored list's id once it is stored. Additive: a
release before it never reads the table (its workers compute lists as before).

Revision ID: 0006_daily_list_claims
Revises: 0005_partner_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_daily_list_claims"
down_revision: str | Sequence[str] | None = "0005_partner_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "daily_list_claims"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("list_date", sa.Date, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("list_id", sa.Integer, nullable=True),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
