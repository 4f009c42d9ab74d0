"""EHR tokens already used (CDS Hooks `jti`), so a captured token cannot be replayed on any replica.

Keyed by sha256 of issuer and `jti` (no token content is stored); a row is kept until the token's
`exp` (plus leeway) has passed. Additive: a release before it never reads the table.

Revision ID: 0004_seen_ehr_tokens
Revises: 0003_model_set_generation
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_seen_ehr_tokens"
down_revision: str | Sequence[str] | None = "0003_model_set_generation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "seen_ehr_tokens"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_seen_ehr_tokens_expires", TABLE, ["expires_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
