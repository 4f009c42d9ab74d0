"""OAuth 2.0 clients of the Lead Safe drop-in and the access tokens issued to them.

`oauth_clients` holds each client's id, partner, scopes, the sha256 of its secret (or its public JWKS,
for SMART Backend Services) and created/revoked times; `oauth_tokens` the sha256 of each access token
with its client, scopes and expiry. Additive: a release before it never reads either table.

Revision ID: 0007_oauth_clients
Revises: 0006_daily_list_claims
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_oauth_clients"
down_revision: str | Sequence[str] | None = "0006_daily_list_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLIENTS, TOKENS = "oauth_clients", "oauth_tokens"


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if CLIENTS not in present:
        op.create_table(
            CLIENTS,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("partner", sa.String(200), nullable=False),
            sa.Column("scopes", sa.String(200), nullable=False),
            sa.Column("secret_sha256", sa.String(64), nullable=True),
            sa.Column("jwks", sa.JSON, nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        )
    if TOKENS not in present:
        op.create_table(
            TOKENS,
            sa.Column("token_sha256", sa.String(64), primary_key=True),
            sa.Column("client_id", sa.String(64), nullable=False),
            sa.Column("scopes", sa.String(200), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_oauth_tokens_client", TOKENS, ["client_id"])
        op.create_index("ix_oauth_tokens_expires", TOKENS, ["expires_at"])


def downgrade() -> None:
    op.drop_table(TOKENS)
    op.drop_table(CLIENTS)
