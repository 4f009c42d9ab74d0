"""Partner API keys: who is calling, and what they may call.

Managed keys live in a JSON keys file (`CIVICRISK_KEYS_FILE`) as sha256 digests only, each with an id,
a partner name, scopes, and created/revoked times; `civicrisk keys create|revoke|list` edit it. A key
is `ck_<id>_<secret>`: the id is printed in listings and used to revoke, the secret is never stored.
Keys from `CIVICRISK_API_KEYS` keep working with the scopes `inspections` and `lead` (they predate
scopes, and every partner using them scored both kinds of model).

The service re-reads the file when its modification time changes (checked at most once a second),
so a revoked key stops working within a second without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCOPES = ("lead", "inspections", "admin")
LEGACY_SCOPES = frozenset({"inspections", "lead"})
KEY_PREFIX = "ck_"
RECHECK_SECONDS = 1.0


class KeysFileError(Exception):
    """The keys file cannot be read or written, or a command names an unknown key or scope."""


@dataclass(frozen=True)
class Partner:
    """The authenticated caller: a partner id for the access log, and the scopes it holds."""

    id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyEntry:
    id: str
    partner: str
    scopes: tuple[str, ...]
    sha256: str
    created: str
    revoked: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner": self.partner,
            "scopes": list(self.scopes),
            "sha256": self.sha256,
            "created": self.created,
            "revoked": self.revoked,
        }


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def read_entries(path: Path) -> list[KeyEntry]:
    """Every entry in the keys file (revoked ones too); an absent file has none."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeysFileError(f"{path}: unreadable keys file ({error})") from None
    try:
        return [
            KeyEntry(
                id=str(item["id"]),
                partner=str(item["partner"]),
                scopes=tuple(str(scope) for scope in item["scopes"]),
                sha256=str(item["sha256"]),
                created=str(item["created"]),
                revoked=None if item.get("revoked") is None else str(item["revoked"]),
            )
            for item in document["keys"]
        ]
    except (KeyError, TypeError) as error:
        raise KeysFileError(f"{path}: malformed keys file (missing {error})") from None


def _write_entries(path: Path, entries: list[KeyEntry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [entry.as_json() for entry in entries]}, indent=2) + "\n"
    staging = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(staging, path)  # the service reads the old file or the new one, never a partial one


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_key(path: Path, partner: str, scopes: list[str]) -> tuple[KeyEntry, str]:
    """Add a key for `partner` with `scopes`; return its entry and the key itself (shown once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeysFileError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    if not partner.strip():
        raise KeysFileError("the partner name is empty")
    entries = read_entries(path)
    taken = {entry.id for entry in entries}
    key_id = secrets.token_hex(6)
    while key_id in taken:
        key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = KeyEntry(
        id=key_id,
        partner=partner.strip(),
        scopes=tuple(sorted(set(scopes))),
        sha256=digest(key).hex(),
        created=_now(),
    )
    _write_entries(path, [*entries, entry])
    return entry, key


def revoke_key(path: Path, key_id: str) -> KeyEntry:
    """Mark a key revoked (the entry is kept, as a record of who held which key when)."""
    entries = read_entries(path)
    for index, entry in enumerate(entries):
        if entry.id == key_id:
            if entry.revoked is None:
                entry = KeyEntry(**(entry.as_json() | {"scopes": entry.scopes, "revoked": _now()}))
                entries[index] = entry
                _write_entries(path, entries)
            return entry
    raise KeysFileError(f"no key with id {key_id!r} in {path}")


class PartnerKeys:
    """Digest -> Partner for the managed keys (revoked ones left out) and the legacy keys."""

    def __init__(self, path: Path | None, legacy_digests: tuple[bytes, ...]) -> None:
        self.path = path
        self._legacy = {
            value: Partner(f"env-key-{value.hex()[:8]}", LEGACY_SCOPES) for value in legacy_digests
        }
        self._managed: dict[bytes, Partner] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < RECHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
                stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp == self._stamp:
                return
            try:
                entries = read_entries(self.path) if stamp is not None else []
            except KeysFileError:
                # A broken file must not let in a key it revoked: refuse every managed key until fixed.
                entries = []
            self._managed = {
                bytes.fromhex(entry.sha256): Partner(entry.partner, frozenset(entry.scopes))
                for entry in entries
                if entry.revoked is None
            }
            self._stamp = stamp

    @property
    def configured(self) -> bool:
        self._refresh()
        return bool(self._legacy or self._managed)

    def find(self, key: str | None) -> Partner | None:
        """The partner holding `key`, or None. A dictionary probe on the sha256 of a long random key
        reveals nothing through timing: an attacker cannot steer the digest toward a stored one."""
        if not key:
            return None
        self._refresh()
        presented = digest(key)
        return self._managed.get(presented) or self._legacy.get(presented)
