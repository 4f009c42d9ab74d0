"""Partner API keys: who is calling, and what they may call.

Managed keys live in the service's database (table `partner_keys`) as sha256 digests only, each with
an id, a partner name, scopes and created/revoked times; `civicrisk keys create|revoke|list` write
and read them there. A key is `ck_<id>_<secret>`: the id is printed in listings and used to revoke,
the secret is never stored.

Each process keeps a digest -> partner map, so a request costs one dictionary probe, and reads the
database again every second (`PartnerKeys.follow`): a cheap stamp first, the keys only when it
changed. A key revoked anywhere is refused by every worker and replica within about a second. While
the database cannot be read, the keys last read stay valid for CIVICRISK_KEYS_GRACE_SECONDS after the
last successful read (a revocation made meanwhile takes effect once it is back); past that, managed
keys are refused with 503: a key that cannot be checked is not let in. A service whose SQLite file
does not exist yet has no managed keys, and looking creates no database.

Keys from CIVICRISK_API_KEYS are the bootstrap and emergency keys: they need no database, are logged
at start-up, and hold the scopes `inspections` and `lead` (they predate scopes, and every partner
using them scored both kinds of model). The keys file of earlier releases is imported once
(app/platform/keys_file.py).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.platform.keys_file import KeysFileError, import_keys_file, import_message
from app.platform.settings import key_digest
from app.platform.stamped import StampedTable
from app.platform.storage.partner_keys import StoredKey
from app.platform.storage.repository import DatabaseUnavailable, Repository

log = logging.getLogger(__name__)

SCOPES = ("lead", "inspections", "admin")
LEGACY_SCOPES = frozenset({"inspections", "lead"})
KEY_PREFIX = "ck_"
REFRESH_SECONDS = 1.0  # with a read of ~1 ms, a revocation reaches every worker within ~1 s
# /health/ready reports the database unreachable when reads stop answering for this long (a read
# that hangs rather than fails).
STALE_SECONDS = 10.0


@dataclass(frozen=True)
class Partner:
    """The authenticated caller: a partner id for the access log, and the scopes it holds."""

    id: str
    scopes: frozenset[str]


def create_key(repository: Repository, partner: str, scopes: Iterable[str]) -> tuple[StoredKey, str]:
    """Store a new key for `partner` with `scopes`; return its record and the key itself, which
    exists nowhere else: it is shown once."""
    wanted = sorted(set(scopes))
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown or not wanted:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(wanted) or 'none'})")
    if not partner.strip():
        raise ValueError("the partner name is empty")
    for _ in range(3):  # a 48-bit id already taken: draw another
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        entry = StoredKey(key_id, partner.strip(), tuple(wanted), key_digest(key).hex(), datetime.now(UTC))
        if repository.add_partner_key(entry):
            return entry, key
    raise DatabaseUnavailable("could not store a new key (every id drawn was taken)")


class PartnerKeys:
    """Digest -> Partner for the bootstrap keys and the managed keys as last read from the database."""

    def __init__(
        self,
        repository: Callable[[], Repository],
        nothing_stored: Callable[[], bool],
        legacy_digests: tuple[bytes, ...],
        grace_seconds: float,
        keys_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.clock = clock
        self._legacy = {
            value: Partner(f"env-key-{value.hex()[:8]}", LEGACY_SCOPES) for value in legacy_digests
        }
        self._keys_file = keys_file  # None once imported, found ignored, or absent
        self._table: StampedTable[dict[bytes, Partner]] = StampedTable(
            "partner key",
            lambda: self.repository().partner_keys_stamp(),
            self._read_keys,
            {},
            nothing_stored,
            grace_seconds,
            "partner keys cannot be checked: the key store (the service's database) is unreachable;"
            " retry later",
            lambda: self.clock(),  # read through: tests replace the clock
            before_read=self._import_once,
            logger=log,
        )

    def start(self) -> None:
        """At start-up: name the bootstrap keys, import a keys file, read the keys."""
        if self._legacy:
            log.warning(
                "%d bootstrap key(s) from CIVICRISK_API_KEYS accepted (scopes inspections, lead), meant "
                "for start-up and emergencies; partner keys belong in the database (civicrisk keys create)",
                len(self._legacy),
                extra={"keys": sorted(partner.id for partner in self._legacy.values())},
            )
        self.refresh()

    async def follow(self, interval: float = REFRESH_SECONDS) -> None:
        """Read the keys every `interval` seconds until cancelled."""
        await self._table.follow(interval)

    def refresh(self) -> None:
        """Read the database's keys if they changed; on failure keep the last ones (see `find`)."""
        self._table.refresh()

    def _read_keys(self) -> dict[bytes, Partner]:
        active = self.repository().partner_keys(active_only=True)
        return {bytes.fromhex(key.sha256): Partner(key.partner, frozenset(key.scopes)) for key in active}

    def _import_once(self) -> None:
        """A keys file of an earlier release: imported once (a database it needs is created then)."""
        path = self._keys_file
        if path is None:
            return
        if not path.exists():
            self._keys_file = None
            return
        try:
            done = import_keys_file(self.repository(), path)  # a database error: tried again next read
        except KeysFileError as error:  # not retried: the file is no longer the source of keys
            log.error("keys file not imported", extra={"error": str(error)})
            self._keys_file = None
            return
        self._keys_file = None
        if done is not None:
            log.warning(import_message(done, path), extra={"path": str(path), "keys_added": done.keys_added})

    @property
    def configured(self) -> bool:
        return bool(self._legacy) or bool(self._table.current())

    def find(self, key: str | None) -> Partner | None:
        """The partner holding `key`, or None; KeyStoreUnavailable when the managed keys cannot be
        vouched for. A dictionary probe on the sha256 of a long random key reveals nothing through
        timing: an attacker cannot steer the digest toward a stored one."""
        if not key:
            return None
        presented = key_digest(key)
        bootstrap = self._legacy.get(presented)  # works without the database, by design
        return bootstrap if bootstrap is not None else self._table.current().get(presented)

    def database_status(self) -> str:
        """The database as the partner keys see it, for /health/ready: "ok" or "unreachable: <reason>"."""
        if self._table.down is not None:
            return f"unreachable: {self._table.down}"
        read_at = self._table.read_at
        if read_at is not None and self.clock() - read_at > STALE_SECONDS:
            return f"unreachable: no answer for {self.clock() - read_at:.0f} s"
        return "ok"
