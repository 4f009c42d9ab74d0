"""OAuth clients and access tokens as stored (tables `oauth_clients` and `oauth_tokens`): the records
and the statements run for them, on the service's `Repository`. Only sha256 digests of secrets and
tokens are stored, never a secret or a token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.platform.storage.partner_keys import dialect_insert, utc
from app.platform.storage.repository import Repository
from app.platform.storage.tables import oauth_clients, oauth_tokens


@dataclass(frozen=True)
class StoredClient:
    """One OAuth client: its id, who holds it, what it may call, and how it proves itself."""

    id: str
    partner: str
    scopes: tuple[str, ...]
    secret_sha256: str | None  # hex; None for a SMART backend client (it signs with its keys)
    jwks: dict[str, Any] | None
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class StoredToken:
    client_id: str
    scopes: tuple[str, ...]
    expires_at: datetime


def _scopes(text: str) -> tuple[str, ...]:
    return tuple(scope for scope in text.split(",") if scope)


def _client(row: sa.Row[Any]) -> StoredClient:
    return StoredClient(
        id=row.id,
        partner=row.partner,
        scopes=_scopes(row.scopes),
        secret_sha256=row.secret_sha256,
        jwks=row.jwks,
        created_at=utc(row.created_at),
        revoked_at=None if row.revoked_at is None else utc(row.revoked_at),
    )


class OAuthStore:
    """The statements, on a repository's engine; database failures become DatabaseUnavailable."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.engine = repository.engine

    def add_client(self, client: StoredClient) -> bool:
        """Store a new client; False (nothing stored) when its id is taken."""
        with self.repository._translate_errors(), self.engine.begin() as connection:
            inserted = connection.execute(
                dialect_insert(connection, oauth_clients)
                .values(
                    id=client.id,
                    partner=client.partner,
                    scopes=",".join(client.scopes),
                    secret_sha256=client.secret_sha256,
                    jwks=client.jwks,
                    created_at=client.created_at,
                    revoked_at=client.revoked_at,
                )
                .on_conflict_do_nothing()
                .returning(oauth_clients.c.id)
            ).first()
            return inserted is not None

    def revoke_client(self, client_id: str) -> StoredClient | None:
        """Revoke a client (kept, as a record) and delete its access tokens; None for an unknown id.
        A client revoked before keeps its first revocation time."""
        with self.repository._translate_errors(), self.engine.begin() as connection:
            active = (oauth_clients.c.id == client_id) & oauth_clients.c.revoked_at.is_(None)
            connection.execute(oauth_clients.update().where(active).values(revoked_at=datetime.now(UTC)))
            connection.execute(oauth_tokens.delete().where(oauth_tokens.c.client_id == client_id))
            found = connection.execute(
                sa.select(oauth_clients).where(oauth_clients.c.id == client_id)
            ).first()
            return None if found is None else _client(found)

    def clients(self, active_only: bool = False) -> list[StoredClient]:
        """Every client (revoked ones too, unless `active_only`), oldest first."""
        query = sa.select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.id)
        if active_only:
            query = query.where(oauth_clients.c.revoked_at.is_(None))
        with self.repository._translate_errors(), self.engine.connect() as connection:
            return [_client(row) for row in connection.execute(query)]

    def clients_stamp(self) -> tuple[int, int]:
        """(clients, revoked clients): changes with every create and revoke (rows are never deleted)."""
        with self.repository._translate_errors(), self.engine.connect() as connection:
            counted = sa.select(sa.func.count(), sa.func.count(oauth_clients.c.revoked_at))
            total, revoked = connection.execute(counted).one()
            return int(total), int(revoked)

    def add_token(self, token_sha256: str, token: StoredToken) -> None:
        """Store an issued token; tokens past their expiry are deleted in the same transaction."""
        now = datetime.now(UTC)
        with self.repository._translate_errors(), self.engine.begin() as connection:
            connection.execute(oauth_tokens.delete().where(oauth_tokens.c.expires_at < now))
            connection.execute(
                oauth_tokens.insert().values(
                    token_sha256=token_sha256,
                    client_id=token.client_id,
                    scopes=",".join(token.scopes),
                    expires_at=token.expires_at,
                )
            )

    def token(self, token_sha256: str) -> StoredToken | None:
        """The unexpired token with this digest, if one was issued (by any worker or replica)."""
        query = sa.select(oauth_tokens).where(
            (oauth_tokens.c.token_sha256 == token_sha256) & (oauth_tokens.c.expires_at > datetime.now(UTC))
        )
        with self.repository._translate_errors(), self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredToken(row.client_id, _scopes(row.scopes), utc(row.expires_at))
