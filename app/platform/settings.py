"""Service settings: the one place configuration is read, from `CIVICRISK_*` environment variables."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.platform.sizes import MAX_BODY_BYTES, MAX_RECORDS

REPO_ROOT = Path(__file__).resolve().parents[2]

LogLevel = Literal["debug", "info", "warning", "error"]


def is_loopback_http(url: str) -> bool:
    """http:// to this machine only (a local test server or a sidecar): the one case where an outbound
    call of the CDS Hooks options may skip TLS."""
    host = urlsplit(url).hostname if url.startswith("http://") else None
    return host in ("127.0.0.1", "localhost", "::1")


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
    # How long an idle client connection is kept open. Longer than the idle timeouts of the clients
    # and load balancers in front (httpx 5 s, AWS ALB 60 s, nginx 60 s): a client that reuses a
    # connection just as the server drops it sees it reset. At uvicorn's 5 s the soak lost a few
    # requests that way; at 75 s none (bench/README.md, "Tenth run" and "Eleventh run").
    keep_alive_seconds: int = Field(default=75, ge=1, le=3_600)
    log_level: LogLevel = "info"
    # One JSON line per request; it never holds bodies or keys, only route, status and timing.
    access_log: bool = True
    # FastAPI's native OpenTelemetry tracing, metrics and logs, for a deployment that configures
    # OpenTelemetry providers. Off by default: /metrics serves Prometheus metrics, and the check for
    # configured providers on every request cost more than the key check.
    opentelemetry: bool = False
    # Bootstrap and emergency partner keys (no database needed; logged at start-up), comma-separated in
    # the environment; the plain keys are dropped once hashed (see api_key_digests).
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    admin_key: str | None = None
    # The inspectors' routes (GET /inspector, the daily lists, issued lists). "open": anyone who can
    # reach the service, as inside a city network or behind the city's sign-on proxy. "key": a key
    # with the `inspections` scope (X-API-Key, Bearer, or the password of HTTP Basic for browsers).
    inspector_auth: Literal["open", "key"] = "open"
    # The city the inspectors' page opens on (GET /inspector without ?city=), by its config's
    # `[city].name`. Unset, or naming no city with a loaded inspection model: the city with the most
    # establishments in scope for its next list (never simply the alphabetical first).
    default_city: str | None = Field(default=None, max_length=64)
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024)
    max_records: int = Field(default=MAX_RECORDS, ge=1, le=MAX_RECORDS)
    # The keys file of releases up to 0.2.0: imported into the database once, then ignored
    # (app/platform/keys_file.py). Managed partner keys live in the database (app/platform/keys.py).
    keys_file: Path = REPO_ROOT / "var" / "partner-keys.json"
    # While the database cannot be read, partner keys are checked against the keys last read for this
    # long after the last successful read; then refused with 503 (fail closed) until it is back.
    keys_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Hospital endpoints. The lead model: by name, or the first loaded bundle whose task is lead_risk.
    lead_model: str | None = None
    # The lead engine's table of every known address's place and nearby tests (app/hospitals/known_homes.py):
    # faster answers for homes at those addresses, at a memory and start-up cost that grows with the
    # city's address table (~40 MB and ~1 s for Chicago's 56,000 sample points; 600,000 points measured
    # at ~260 MB and ~12 s per worker), and with it the earlier tests near each 40 m cell around those
    # addresses (app/hospitals/nearby_tests.py: ~9 MB and ~1 s for Chicago's sample), for homes off the
    # table. Off: every home is placed and counted per request.
    lead_known_homes: bool = True
    # Daily lists (app/inspections/daily.py): at most this many new dates ranked at once per worker;
    # each holds a city's features for a day (~100-200 MB while it runs).
    daily_concurrency: int = Field(default=1, ge=1, le=16)
    # A request waits this long for a free computation slot (or for another process's computation of
    # the same list), then gets 503 `daily_lists_busy` with Retry-After.
    daily_max_wait_seconds: float = Field(default=20.0, gt=0, le=600)
    # A claim on a list's computation older than this, with no list stored, belonged to a process
    # that died: another takes it over. Must exceed the wait plus a computation.
    daily_claim_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)
    # Ranked days kept per worker (every establishment's score and reasons for a date, ~14 MB for
    # Chicago each), so lists of the same day with other filters only filter: least recently used go.
    daily_cache_days: int = Field(default=8, ge=1, le=366)
    # Tomorrow's default lists computed in the background at start-up, after a reload and after new
    # outcomes, so the first inspector of the morning does not wait.
    daily_precompute: bool = True
    # Computations ahead start at least this far apart: outcomes posted all day each change tomorrow's
    # lists, and one re-ranking per interval keeps them current without a core spent re-ranking.
    daily_precompute_min_interval_seconds: float = Field(default=30.0, ge=0, le=3_600)
    # On: new dates are ranked in a long-lived list process forked from the worker, out of its GIL,
    # so scoring never waits behind a list. Off: in a thread of the worker. Unset (the default): on
    # where this process may run on two CPUs or more (the list process needs a core of its own),
    # which met every issue #19 target where the thread did not (bench/README.md, "Daily lists under
    # load").
    daily_child_process: bool | None = None
    # A daily list warns (JSON `staleness`, CSV headers X-Data-*, a banner on /inspector) when its
    # newest inspection outcome is older than this many days (app/inspections/staleness.py).
    outcomes_max_age_days: int = Field(default=14, ge=1, le=3650)
    # State every worker and replica must agree on, kept in the database: the model set generation
    # (app/platform/generation.py) and the EHR tokens already used (CDS Hooks replay cache). Off, each
    # process keeps its own, and only the list and outcome endpoints and the partner keys (always in the
    # database) use it: on its embedded SQLite file, a hospital's on-premises copy connects nowhere.
    # `civicrisk serve --workers N` turns it on.
    shared_state: bool = False
    # With shared_state: how often each worker checks the database for a new model set generation.
    model_set_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # CDS Hooks: trusted EHR issuers and their public keys (JSON), and this service's public URL, which
    # a token's `aud` must name (the base URL or the lead-risk service URL under it).
    cds_issuers_file: Path | None = None
    cds_service_url: str | None = None
    # The service's public base URL (https://risk.example.org): the Lead Safe drop-in's token endpoint
    # is this + /oauth/token, the `aud` a SMART backend client's assertion must name. Unset, the CDS
    # service URL stands in; with neither, SMART assertions are refused (client secrets still work).
    public_url: str | None = None
    # CDS Hooks in browsers (CORS): the exact origins (scheme://host[:port]) whose pages may call
    # /cds-services*, comma-separated; none by default. No wildcard, and never with credentials.
    cds_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # An EHR token's lifetime (exp - iat) may not exceed this; its clock may differ from ours by the skew.
    cds_token_max_lifetime_seconds: int = Field(default=300, ge=10, le=3600)
    cds_clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    # FHIR servers (base URLs, comma-separated) the service may call with a request's fhirAuthorization
    # token when the prefetch is absent; none by default, so no outbound connection is made.
    cds_fhir_servers: Annotated[tuple[str, ...], NoDecode] = ()
    # Signed bundles: the city's Ed25519 public key (PEM); with require_signed_bundles, a bundle
    # without a valid manifest.sig is refused and listed as a failure.
    bundle_public_key: Path | None = None
    require_signed_bundles: bool = False
    # The city configs the service serves, comma-separated paths (CIVICRISK_CITIES); empty (the
    # default): every `<data_dir>/*/city.toml`.
    cities: Annotated[tuple[Path, ...], NoDecode] = ()

    @field_validator("cities", mode="before")
    @classmethod
    def _split_cities(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
        return value

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

    @field_validator("cds_allowed_origins", "cds_fhir_servers", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cds_allowed_origins")
    @classmethod
    def _exact_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("https", "http") or not rest or "/" in rest or "*" in origin:
                raise ValueError(
                    f"cds_allowed_origins: {origin!r} is not an exact scheme://host[:port] origin"
                )
        return origins

    @field_validator("cds_fhir_servers")
    @classmethod
    def _fhir_servers(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            if not url.startswith("https://") and not is_loopback_http(url):
                raise ValueError(f"cds_fhir_servers: {url!r} must be https (plain http only on loopback)")
        return tuple(url.rstrip("/") for url in urls)

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, key: str | None) -> str | None:
        if key is not None and len(key) < 16:
            raise ValueError("the admin key must be at least 16 characters")
        return key or None

    @field_validator("cds_service_url", "public_url")
    @classmethod
    def _service_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError("cds_service_url and public_url must be the service's absolute http(s) URL")
        return url.rstrip("/") if url else None

    @model_validator(mode="after")
    def _claims_outlive_a_wait(self) -> Settings:
        # A claim declared stale while its holder still waits for a slot would be computed twice.
        if self.daily_claim_timeout_seconds <= self.daily_max_wait_seconds:
            raise ValueError("daily_claim_timeout_seconds must exceed daily_max_wait_seconds")
        return self

    @model_validator(mode="after")
    def _signing_key_present(self) -> Settings:
        # Refuse at start-up rather than serve nothing (or everything) because the key is missing.
        key = self.bundle_public_key
        if self.require_signed_bundles and (key is None or not key.is_file()):
            raise ValueError("require_signed_bundles needs bundle_public_key: a readable PEM public key file")
        return self

    @cached_property
    def api_key_digests(self) -> tuple[bytes, ...]:
        return tuple(key_digest(key) for key in self.api_keys)

    @cached_property
    def admin_key_digest(self) -> bytes | None:
        return None if self.admin_key is None else key_digest(self.admin_key)
