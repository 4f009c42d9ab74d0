"""OAuth 2.0 clients of the Lead Safe drop-in, and the access tokens `/oauth/token` issues them.

A client is created by `civicrisk keys create --partner NAME --scope lead --client` (a secret, shown
once, of which only the sha256 is stored) or with `--jwks FILE` (a SMART backend client: no secret,
it signs a JWT with a key of that public JWKS). Clients live in the service's database; each process
keeps them in memory and reads them again every second when their stamp changes, exactly as the
partner keys (app/platform/keys.py): a client revoked anywhere is refused by every worker and replica
within about a second, and with it every token it holds. While the database cannot be read, the
clients last read serve for CIVICRISK_KEYS_GRACE_SECONDS, then the token routes answer 503.

Access tokens are random (`ct_...`), valid for an hour; only their sha256 is stored, with the client
and scopes. A process knows the tokens it issued; one issued by another worker or replica is read
from the database on its first use here, then kept in memory until it expires.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import jwt

from app.platform.stamped import StampedTable
from app.platform.storage.oauth import OAuthStore, StoredClient, StoredToken
from app.platform.storage.repository import DatabaseUnavailable, Repository

log = logging.getLogger(__name__)

CLIENT_SCOPES = ("lead",)  # the drop-in's routes are the lead ones; no client holds another scope
CLIENT_PREFIX, TOKEN_PREFIX = "cc_", "ct_"
TOKEN_SECONDS = 3600  # the Lead Safe contract's "expires_in": 3600
REFRESH_SECONDS = 1.0
# Tokens a process keeps in memory; past it, expired ones are dropped, then the whole cache (each
# token is then read from the database again on its next use).
MAX_CACHED_TOKENS = 100_000
# Algorithms SMART Backend Services asks servers to support; no other is accepted.
ASSERTION_ALGORITHMS = ("RS384", "ES384")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Client:
    id: str
    partner: str
    scopes: frozenset[str]
    secret_sha256: str | None
    keys: dict[str, jwt.PyJWK]  # by kid: the public keys a SMART client signs its assertions with


@dataclass(frozen=True)
class TokenHolder:
    """Who presented an access token, and the scopes the token carries."""

    client: Client
    scopes: frozenset[str]


class JwksError(ValueError):
    """A client's JWKS is not one this service can use (the message says why)."""


def public_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable public keys of a JWKS, by kid: RSA or EC (P-384) keys with a kid, no private part."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise JwksError('a JWKS is {"keys": [<JWK>, ...]} with at least one key')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC"):
            raise JwksError("every key must be an RSA or EC public key (kty RSA or EC)")
        if not isinstance(entry.get("kid"), str) or not entry["kid"]:
            raise JwksError("every key needs a kid (SMART assertions name their key by kid)")
        if "d" in entry:
            raise JwksError(f"key {entry['kid']!r} holds a private key: register the public JWKS only")
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError as error:
            raise JwksError(f"key {entry['kid']!r} is unusable ({error})") from None
    return keys


def create_client(
    repository: Repository, partner: str, scopes: Iterable[str], jwks: dict[str, Any] | None = None
) -> tuple[StoredClient, str | None]:
    """Store a new client; return its record and its secret (None for a JWKS client), which exists
    nowhere else: it is shown once."""
    wanted = sorted(set(scopes))
    if not wanted or not set(wanted) <= set(CLIENT_SCOPES):
        raise ValueError(f"an OAuth client holds the scope {', '.join(CLIENT_SCOPES)} only")
    if not partner.strip():
        raise ValueError("the partner name is empty")
    if jwks is not None:
        public_keys(jwks)  # refused here, not at the client's first token request
    store = OAuthStore(repository)
    for _ in range(3):  # an id already taken: draw another
        client_id = f"{CLIENT_PREFIX}{secrets.token_hex(8)}"
        secret = None if jwks is not None else secrets.token_urlsafe(32)
        entry = StoredClient(
            client_id,
            partner.strip(),
            tuple(wanted),
            None if secret is None else digest(secret),
            jwks,
            datetime.now(UTC),
        )
        if store.add_client(entry):
            return entry, secret
    raise DatabaseUnavailable("could not store a new client (every id drawn was taken)")


class OAuthClients:
    """The active clients as last read from the database, and the access tokens known here."""

    def __init__(
        self,
        repository: Callable[[], Repository],
        nothing_stored: Callable[[], bool],
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.clock = clock
        self._tokens: dict[str, tuple[str, frozenset[str], float]] = {}  # digest -> client, scopes, expiry
        self._table: StampedTable[dict[str, Client]] = StampedTable(
            "OAuth client",
            lambda: self.store().clients_stamp(),
            self._read_clients,
            {},
            nothing_stored,
            grace_seconds,
            "OAuth clients cannot be checked: the service's database is unreachable; retry later",
            lambda: self.clock(),
            on_change=self._forget_tokens_of_others,
            logger=log,
        )

    def store(self) -> OAuthStore:
        return OAuthStore(self.repository())

    async def follow(self, interval: float = REFRESH_SECONDS) -> None:
        """Read the clients every `interval` seconds until cancelled."""
        await self._table.follow(interval)

    def refresh(self) -> None:
        """Read the clients if they changed; on failure keep the last ones for the grace period."""
        self._table.refresh()

    def _forget_tokens_of_others(self, clients: dict[str, Client]) -> None:
        """A revoked client's tokens go with it (kept ones would be refused anyway). This runs in a
        thread while the event loop adds tokens: filter a copy (copied atomically)."""
        known = self._tokens.copy()
        self._tokens = {k: v for k, v in known.items() if v[0] in clients}

    def _read_clients(self) -> dict[str, Client]:
        clients = {}
        for stored in self.store().clients(active_only=True):
            try:
                keys = public_keys(stored.jwks) if stored.jwks is not None else {}
            except JwksError:
                keys = {}  # stored by hand, not by `keys create`: the client cannot sign
            clients[stored.id] = Client(
                stored.id, stored.partner, frozenset(stored.scopes), stored.secret_sha256, keys
            )
        return clients

    def _active(self) -> dict[str, Client]:
        return self._table.current()

    def client(self, client_id: str) -> Client | None:
        return self._active().get(client_id)

    async def client_now(self, client_id: str) -> Client | None:
        """The client, reading the database again if it is not known here yet (one created less than
        a second ago): for the token endpoint, which clients call rarely."""
        client = self.client(client_id)
        if client is None:
            await anyio.to_thread.run_sync(self.refresh)
            client = self.client(client_id)
        return client

    async def issue(self, client: Client, scopes: frozenset[str]) -> str:
        """A new access token for `client` with `scopes`, stored (as its sha256) before it is given."""
        token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        expires = datetime.now(UTC) + timedelta(seconds=TOKEN_SECONDS)
        stored = StoredToken(client.id, tuple(sorted(scopes)), expires)
        store = self.store
        await anyio.to_thread.run_sync(lambda: store().add_token(digest(token), stored))
        self._remember(digest(token), client.id, scopes, expires.timestamp())
        return token

    def _remember(self, key: str, client_id: str, scopes: frozenset[str], expires: float) -> None:
        tokens = self._tokens
        if len(tokens) >= MAX_CACHED_TOKENS:
            now = time.time()
            tokens = {k: v for k, v in tokens.items() if v[2] > now}
            if len(tokens) >= MAX_CACHED_TOKENS:
                tokens = {}
        tokens[key] = (client_id, scopes, expires)
        self._tokens = tokens

    async def holder(self, token: str) -> TokenHolder | None:
        """The client holding an unexpired access token of an active client, or None."""
        clients = self._active()
        key = digest(token)
        known = self._tokens.get(key)
        if known is None:
            store = self.store
            stored = await anyio.to_thread.run_sync(lambda: store().token(key))
            if stored is None:
                return None
            known = (stored.client_id, frozenset(stored.scopes), stored.expires_at.timestamp())
            if stored.client_id in clients:
                self._remember(key, *known)
        client_id, scopes, expires = known
        client = clients.get(client_id)
        if client is None or expires <= time.time():
            return None
        return TokenHolder(client, scopes & client.scopes)
