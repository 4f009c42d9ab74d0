"""CDS Hooks feedback: what clinicians did with the lead-risk cards, by model and tier.

`cds_feedback` holds one row per card and outcome (accepted / overridden): the card's uuid, its
model and tier, and the override reason when it is one the card offered; no patient data and no
time. Additive: a release before it never reads the table.

Revision ID: 0008_cds_feedback
Revises: 0007_oauth_clients
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_cds_feedback"
down_revision: str | Sequence[str] | None = "0007_oauth_clients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "cds_feedback"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("card_uuid", sa.String(36), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("override_reason", sa.String(64), nullable=True),
    )
    op.create_index("ux_cds_feedback_card_outcome", TABLE, ["card_uuid", "outcome"], unique=True)
    op.create_index("ix_cds_feedback_model", TABLE, ["model_name"])


def downgrade() -> None:
    op.drop_table(TABLE)
