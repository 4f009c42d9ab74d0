"""Service settings: the one place configuration is read, from `CIVICRISK_*` environment variables."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_RECORDS = 10_000

LogLevel = Literal["debug", "info", "warning", "error"]


def key_digest(key: str) -> bytes:
    """sha256 of an API key: keys are kept and compared only as digests."""
    return hashlib.sha256(key.encode("utf-8")).digest()


class Settings(BaseSettings):
    """Settings read from the environment (`CIVICRISK_MODELS_DIR`, `CIVICRISK_API_KEYS`, ...)."""

    model_config = SettingsConfigDict(env_prefix="CIVICRISK_", frozen=True, extra="ignore")

    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = REPO_ROOT / "data" / "sample"
    # Issued lists and recorded outcomes. SQLite file by default; PostgreSQL by URL.
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'civicrisk.sqlite3'}"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: LogLevel = "info"
    # One JSON line per request; it never holds bodies or keys, only route, status and timing.
    access_log: bool = True
    # Comma-separated in the environment; the plain keys are dropped once hashed (see key_digests).
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    admin_key: str | None = None
    # 10,000 records of ~60 features is ~20 MB of JSON; anything much larger is refused unread.
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_records: int = Field(default=MAX_RECORDS, ge=1, le=MAX_RECORDS)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _strong_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            if len(key) < 16:
                raise ValueError("every API key must be at least 16 characters")
        return keys

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, key: str | None) -> str | None:
        if key is not None and len(key) < 16:
            raise ValueError("the admin key must be at least 16 characters")
        return key or None

    @cached_property
    def api_key_digests(self) -> tuple[bytes, ...]:
        return tuple(key_digest(key) for key in self.api_keys)

    @cached_property
    def admin_key_digest(self) -> bytes | None:
        return None if self.admin_key is None else key_digest(self.admin_key)
