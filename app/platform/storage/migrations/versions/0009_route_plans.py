"""Routes for a team: a daily list split into one route per inspector, stored with its list.

`route_plans` holds one row per (list, inspectors, stops per inspector, method) with the routes as
one JSON document. Additive: a release before it never reads the table.

Revision ID: 0009_route_plans
Revises: 0008_cds_feedback
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_route_plans"
down_revision: str | Sequence[str] | None = "0008_cds_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "route_plans"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("list_id", sa.Integer, sa.ForeignKey("issued_lists.id"), nullable=False),
        sa.Column("city", sa.String(64), nullable=False),
        sa.Column("list_date", sa.Date, nullable=False),
        sa.Column("inspectors", sa.Integer, nullable=False),
        sa.Column("per_inspector", sa.Integer, nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ux_route_plans_content", TABLE, ["content_sha256"], unique=True)
    op.create_index("ix_route_plans_list", TABLE, ["list_id"])


def downgrade() -> None:
    op.drop_table(TABLE)
