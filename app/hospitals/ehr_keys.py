"""The EHRs this service trusts and their public keys (CDS Hooks 2.0, "Trusting CDS Clients").

Trust is configuration: the issuers file (CIVICRISK_CDS_ISSUERS_FILE) lists every allowed issuer:

    {"issuers": {"https://ehr.example.org": {"keys": [<JWK>, ...],
                                             "jwks_urls": ["https://ehr.example.org/jwks"]}}}

`keys` are the issuer's public keys as agreed out of band. The file is read again whenever it
changes, so a key is added or rotated without a restart; a file that no longer reads is logged and
the keys last read stay in force. `jwks_urls` is optional and empty by default: with it, the issuer's
JWK Set is also fetched from the first URL (or from a token's `jku`, honoured only when it is in this
list), cached, and fetched again when a token names a `kid` the cache lacks. Only then does the
service connect out, so with the defaults it never does. A JWKS URL must be https (plain http only to
this machine, for a local test server).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt

from app.platform.settings import is_loopback_http

log = logging.getLogger(__name__)

# Algorithm families by key type: a key is used only with an algorithm of its own kind.
_FAMILIES = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
FILE_CHECK_SECONDS = 1.0  # how often the issuers file's stat is looked at, at most
JWKS_TTL_SECONDS = (300.0, 86_400.0)  # a fetched JWKS is kept its max-age, within these bounds
JWKS_DEFAULT_TTL = 3600.0
JWKS_REFRESH_SECONDS = 30.0  # an unknown kid fetches the JWKS again at most this often per URL
JWKS_MAX_BYTES = 64 * 1024
JWKS_TIMEOUT_SECONDS = 3.0


class IssuersFileError(Exception):
    """The trusted-issuers file cannot be read or holds something unusable."""


class Jwk:
    """One public JWK; `for_algorithm` gives the PyJWK to verify a token of that `alg` with, or None
    when the key is of another kind (an EC key with RS384, a P-256 key with ES384)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        kty = entry.get("kty")
        if kty not in _FAMILIES:
            raise ValueError("a public RSA, EC or OKP key is required (no symmetric key)")
        if "d" in entry:
            raise ValueError("a private key was listed; list only public keys")
        self.entry = entry
        self.kid = entry.get("kid")
        self._verifiers: dict[str, jwt.PyJWK] = {}
        jwt.PyJWK(entry)  # refuses a malformed key now, not at the first token

    def for_algorithm(self, algorithm: str) -> jwt.PyJWK | None:
        verifier = self._verifiers.get(algorithm)
        if verifier is not None:
            return verifier
        declared = self.entry.get("alg")
        if declared is not None and declared != algorithm:
            return None
        if algorithm not in _FAMILIES[self.entry["kty"]]:
            return None
        if algorithm in _CURVES and self.entry.get("crv") != _CURVES[algorithm]:
            return None
        verifier = self._verifiers[algorithm] = jwt.PyJWK(self.entry, algorithm)
        return verifier


def parse_jwks(document: Any, where: str) -> dict[str, Jwk]:
    """The keys of a JWK Set by `kid`; a key without `kid` cannot be chosen, so it is refused."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise IssuersFileError(f"{where}: expected a JWK Set (an object with a 'keys' list)")
    keys: dict[str, Jwk] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise IssuersFileError(f"{where}: every key needs a 'kid'")
        if entry.get("use", "sig") != "sig":
            continue  # an encryption key in the same set is not for signatures
        try:
            keys[entry["kid"]] = Jwk(entry)
        except (ValueError, jwt.PyJWTError) as error:
            raise IssuersFileError(f"{where}: key {entry['kid']!r} is unusable ({error})") from None
    return keys


@dataclass(frozen=True)
class Issuer:
    iss: str
    keys: dict[str, Jwk]
    jwks_urls: tuple[str, ...] = ()  # empty: nothing fetched for this issuer


def _issuer(iss: str, entry: Any, path: Path) -> Issuer:
    where = f"{path}: issuer {iss!r}"
    if not isinstance(entry, dict):
        raise IssuersFileError(f"{where}: expected an object with 'keys' and optional 'jwks_urls'")
    urls = entry.get("jwks_urls", [])
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise IssuersFileError(f"{where}: 'jwks_urls' must be a list of URLs")
    for url in urls:
        if not url.startswith("https://") and not is_loopback_http(url):
            raise IssuersFileError(f"{where}: JWKS URL {url!r} must be https")
    keys = parse_jwks(entry, where) if "keys" in entry or not urls else {}
    return Issuer(iss, keys, tuple(urls))


def read_issuers(path: Path) -> dict[str, Issuer]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IssuersFileError(f"{path}: unreadable ({error})") from None
    issuers = document.get("issuers") if isinstance(document, dict) else None
    if not isinstance(issuers, dict) or not issuers:
        raise IssuersFileError(f'{path}: expected {{"issuers": {{"<iss>": {{"keys": [<JWK>]}}}}}}')
    return {str(iss): _issuer(str(iss), entry, path) for iss, entry in issuers.items()}


class IssuersFile:
    """The issuers as the file says now: read at start (an unusable file stops the start), then read
    again when its size or modification time changes (looked at once a second at most)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self._issuers = read_issuers(self.path)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_size, found.st_mtime_ns

    def current(self) -> dict[str, Issuer]:
        now = time.monotonic()
        if now - self._checked < FILE_CHECK_SECONDS:
            return self._issuers
        with self._lock:
            if now - self._checked >= FILE_CHECK_SECONDS:
                self._checked = now
                stamp = self._stat()
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self._issuers = read_issuers(self.path)
                        log.info("trusted EHR issuers read again", extra={"issuers": len(self._issuers)})
                    except IssuersFileError as error:
                        log.error(
                            "issuers file unusable; the keys last read stay", extra={"error": str(error)}
                        )
        return self._issuers


@dataclass
class _Fetched:
    keys: dict[str, Jwk] = field(default_factory=dict)
    expires: float = 0.0  # monotonic
    fetched: float = -JWKS_REFRESH_SECONDS  # monotonic, of the last attempt
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class JwksCache:
    """JWK Sets fetched for the issuers that list `jwks_urls`; no client exists until the first fetch."""

    def __init__(self) -> None:
        self._sets: dict[str, _Fetched] = {}
        self._client: httpx.AsyncClient | None = None

    async def key(self, url: str, kid: str) -> Jwk | None:
        entry = self._sets.get(url)
        if entry is None:
            entry = self._sets[url] = _Fetched()
        now = time.monotonic()
        if kid in entry.keys and now < entry.expires:
            return entry.keys[kid]
        async with entry.lock:  # one fetch per URL at a time; the others wait for its keys
            now = time.monotonic()
            stale = now >= entry.expires or kid not in entry.keys
            if stale and now - entry.fetched >= JWKS_REFRESH_SECONDS:
                entry.fetched = now
                await self._fetch(url, entry)
        return entry.keys.get(kid)

    async def _fetch(self, url: str, entry: _Fetched) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False)
        try:
            response = await self._client.get(url, headers={"Accept": "application/json"})
            if response.status_code != 200 or len(response.content) > JWKS_MAX_BYTES:
                raise IssuersFileError(f"answered {response.status_code} ({len(response.content)} bytes)")
            keys = parse_jwks(response.json(), url)
        except (httpx.HTTPError, ValueError, IssuersFileError) as error:
            # The keys fetched before stay (until a fetch succeeds): a JWKS host's outage is not a
            # reason to refuse every token it signed with a key we already hold.
            log.warning("JWKS fetch failed", extra={"url": url, "error": type(error).__name__})
            return
        entry.keys = keys
        entry.expires = time.monotonic() + _max_age(response.headers.get("cache-control"))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _max_age(cache_control: str | None) -> float:
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            low, high = JWKS_TTL_SECONDS
            return min(max(float(value), low), high)
    return JWKS_DEFAULT_TTL
