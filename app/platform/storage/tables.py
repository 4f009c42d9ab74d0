"""The database schema as the code uses it. Changing it means adding an Alembic revision that makes the
database match (`migrations/versions/`; the rules are in `schema.py`)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
CONTENT_INDEX = "ux_issued_lists_content"  # issued lists' unique content hash (revision 0002)

issued_lists = sa.Table(
    "issued_lists",
    metadata,
    # Ids come from the database, so every worker sharing it issues distinct, increasing ids.
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("city", sa.String(64), nullable=False),
    sa.Column("list_date", sa.Date, nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    # The rows exactly as issued (rank, id, name, address, coordinates, score, tier, reasons, last
    # inspection), as one JSON document: a list is always read and written whole.
    sa.Column("rows", sa.JSON, nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    # sha256 of what the list says (city, date, model, parameters, rows): the same list asked for again
    # is the one stored, not another copy. NULL for lists stored before revision 0002.
    sa.Column("content_sha256", sa.String(64), nullable=True),
    sa.Index("ix_issued_lists_city_date", "city", "list_date"),
    sa.Index(CONTENT_INDEX, "content_sha256", unique=True),
)

outcomes = sa.Table(
    "inspection_outcomes",
    metadata,
    sa.Column("city", sa.String(64), primary_key=True),
    sa.Column("inspection_id", sa.String(64), primary_key=True),
    sa.Column("establishment_id", sa.String(64), nullable=False),
    sa.Column("inspection_date", sa.Date, nullable=False),
    sa.Column("inspection_type", sa.String(128), nullable=True),
    sa.Column("result", sa.String(128), nullable=False),
    sa.Column("violations", sa.Text, nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_outcomes_city_date", "city", "inspection_date"),
)

# One row (id 1): the generation of the model set every worker and replica should serve. An operator's
# reload bumps it; each worker sees the change and reloads (app/platform/generation.py).
model_set = sa.Table(
    "model_set_generation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# EHR tokens already used (CDS Hooks `jti`): sha256 of issuer and jti, kept until the token expires.
seen_tokens = sa.Table(
    "seen_ehr_tokens",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_seen_ehr_tokens_expires", "expires_at"),
)

# Partner API keys (app/platform/keys.py): the sha256 of each key, never the key. Rows are never
# deleted and a revocation is never undone, so (rows, revoked rows) changes with every create and
# revoke: the stamp each worker polls before it reads the keys again.
partner_keys = sa.Table(
    "partner_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("partner", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),  # comma-separated, sorted
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ux_partner_keys_sha256", "sha256", unique=True),
)

# Keys files of earlier releases imported into partner_keys (app/platform/keys_file.py): one row per
# file content, so a file is imported once however many workers and replicas start with it.
keys_file_imports = sa.Table(
    "partner_keys_file_imports",
    metadata,
    sa.Column("file_sha256", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("keys_added", sa.Integer, nullable=False),
)

# Daily list computations claimed (app/inspections/daily.py): one row per list key (sha256 of city,
# date, model, parameters and the data's revision), taken before computing so that one process of
# all the workers and replicas computes a list; `list_id` is set once it is stored, and then names
# that list for every later request with the same key. A claim older than the configured timeout
# with no list is its dead holder's, and is taken over.
list_claims = sa.Table(
    "daily_list_claims",
    metadata,
    sa.Column("key_sha256", sa.String(64), primary_key=True),
    sa.Column("city", sa.String(64), nullable=False),
    sa.Column("list_date", sa.Date, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("list_id", sa.Integer, nullable=True),
)

# OAuth 2.0 clients of the Lead Safe drop-in (app/hospitals/oauth_clients.py): who may ask
# `/oauth/token` for an access token. A client proves itself with a secret (only its sha256 is kept)
# or, for SMART Backend Services, with a JWT signed by a key of its registered public JWKS. Rows are
# never deleted and a revocation is never undone: (rows, revoked rows) is the stamp workers poll.
oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the client_id
    sa.Column("partner", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),  # comma-separated, sorted
    sa.Column("secret_sha256", sa.String(64), nullable=True),  # None: a JWKS client
    sa.Column("jwks", sa.JSON, nullable=True),  # the public keys of a SMART backend client
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

# Access tokens issued by `/oauth/token`: the sha256 of each token (never the token), its client and
# scopes, until it expires. Revoking a client deletes its tokens; expired ones are deleted as new
# ones are issued.
oauth_tokens = sa.Table(
    "oauth_tokens",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_oauth_tokens_client", "client_id"),
    sa.Index("ix_oauth_tokens_expires", "expires_at"),
)

# CDS Hooks feedback (app/hospitals/cds_feedback.py): what clinicians did with lead-risk cards, by the
# card's model and tier, for the city's model team. Nothing of the patient: no patient id, no time
# (a time of care is a date of the patient's), no free-text comment; the override reason only when
# it is one of the codes the card offered. A card's outcome is counted once however often it is sent.
cds_feedback = sa.Table(
    "cds_feedback",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("card_uuid", sa.String(36), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=True),  # NULL: the card's model is not loaded
    sa.Column("model_version", sa.String(128), nullable=True),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # accepted | overridden
    sa.Column("override_reason", sa.String(64), nullable=True),
    sa.Index("ux_cds_feedback_card_outcome", "card_uuid", "outcome", unique=True),
    sa.Index("ix_cds_feedback_model", "model_name"),
)

# Routes for a team (app/inspections/team_routes.py): a daily list split into one route per inspector,
# stored with the list it came from. One row per (list, inspectors, stops per inspector, method): the
# same split asked for again is the one stored. Revision 0009.
ROUTE_PLAN_INDEX = "ux_route_plans_content"
route_plans = sa.Table(
    "route_plans",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("list_id", sa.Integer, sa.ForeignKey("issued_lists.id"), nullable=False),
    sa.Column("city", sa.String(64), nullable=False),
    sa.Column("list_date", sa.Date, nullable=False),
    sa.Column("inspectors", sa.Integer, nullable=False),
    sa.Column("per_inspector", sa.Integer, nullable=False),
    sa.Column("method", sa.String(128), nullable=False),
    # The routes exactly as issued (stops in visiting order, each with its list rank, and lengths).
    sa.Column("routes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Index(ROUTE_PLAN_INDEX, "content_sha256", unique=True),
    sa.Index("ix_route_plans_list", "list_id"),
)
