"""The keys file of earlier releases (`CIVICRISK_KEYS_FILE`, by default var/partner-keys.json):
imported into the database once, then ignored.

Releases up to 0.2.0 kept managed partner keys in this JSON file. The first service start or
`civicrisk keys` command that finds it imports its entries (ids, partners, scopes, digests, created
and revoked times) into the database and records the import by the file's sha256; from then on the
file is ignored, with a warning while it is still there. A file whose content changed since (an
earlier release's `civicrisk keys` wrote to it during a rolling upgrade) is imported the same way:
keys not yet in the database are added and its revocations applied. A key revoked in the database is
never made active again by a file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from app.platform.storage.partner_keys import KeysFileImport, StoredKey
from app.platform.storage.repository import Repository


class KeysFileError(Exception):
    """The keys file cannot be read."""


def read_entries(path: Path) -> list[StoredKey]:
    """Every entry in the keys file (revoked ones too); an absent file has none."""
    content = _content(path)
    return [] if content is None else _entries(content, path)


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeysFileError(f"{path}: unreadable keys file ({error})") from None


def _entries(content: bytes, path: Path) -> list[StoredKey]:
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeysFileError(f"{path}: unreadable keys file ({error})") from None
    try:
        return [
            StoredKey(
                id=str(item["id"]),
                partner=str(item["partner"]),
                scopes=tuple(sorted({str(scope) for scope in item["scopes"]})),
                sha256=str(item["sha256"]).lower(),
                created_at=_moment(item["created"]),
                revoked_at=None if item.get("revoked") is None else _moment(item["revoked"]),
            )
            for item in document["keys"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise KeysFileError(f"{path}: malformed keys file ({type(error).__name__}: {error})") from None


def _moment(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def import_keys_file(repository: Repository, path: Path) -> KeysFileImport | None:
    """Import the file's keys unless this content was imported before; None when there is no file.
    Safe when several workers start at once: one imports, the others find its record."""
    content = _content(path)
    if content is None:
        return None
    entries = _entries(content, path)  # the bytes hashed are the bytes read: no second read to race
    return repository.import_keys_file(hashlib.sha256(content).hexdigest(), str(path), entries)


def import_message(done: KeysFileImport, path: Path) -> str:
    """What to tell the operator: how many keys were imported, or that the file is ignored."""
    if done.keys_added is not None:
        return (
            f"imported {done.keys_added} partner key(s) from {path} into the database; that file is "
            "ignored from now on (manage keys with `civicrisk keys`): remove it"
        )
    when = done.imported_at.isoformat(timespec="seconds")
    return (
        f"{path} is ignored: its keys were imported into the database at {when}; partner keys are "
        "managed with `civicrisk keys`: remove the file"
    )
