"""Partner API keys in the database (app/platform/keys.py), and the keys files imported into it.

`partner_keys` holds each key's id, partner, scopes, sha256 (unique) and created/revoked times;
`partner_keys_file_imports` records each keys file imported (its content's sha256, path, time and how
many keys it added), so a file is imported once. Additive: a release before it never reads either
table (it keeps reading its keys file).

Revision ID: 0005_partner_keys
Revises: 0004_seen_ehr_tokens
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_partner_keys"
down_revision: str | Sequence[str] | None = "0004_seen_ehr_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS, IMPORTS = "partner_keys", "partner_keys_file_imports"


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if KEYS not in present:
        op.create_table(
            KEYS,
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("partner", sa.String(200), nullable=False),
            sa.Column("scopes", sa.String(200), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        )
        op.create_index("ux_partner_keys_sha256", KEYS, ["sha256"], unique=True)
    if IMPORTS not in present:
        op.create_table(
            IMPORTS,
            sa.Column("file_sha256", sa.String(64), primary_key=True),
            sa.Column("path", sa.String(1024), nullable=False),
            sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("keys_added", sa.Integer, nullable=False),
        )


def downgrade() -> None:
    op.drop_table(IMPORTS)
    op.drop_table(KEYS)
