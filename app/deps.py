"""Every dependency in one place: settings, registry, cities, keys, and validated models."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import Depends, Query, Request

from app.config import Settings, key_digest
from app.exceptions import (
    AuthNotConfigured,
    InvalidRequest,
    MalformedBody,
    PayloadTooLarge,
    Problem,
    Unauthorized,
    UnsupportedMediaType,
)
from app.services.cities import CityStore
from app.services.metrics import ServiceMetrics
from app.services.registry import LoadedModel, ModelRegistry

# Bodies above this are parsed in a worker thread: orjson needs ~1 ms per 30 KB here, and a
# 20 MB batch must not hold up every other request on the event loop.
INLINE_PARSE_BYTES = 64 * 1024

# Every dependency below is `async def` on purpose: FastAPI runs a plain `def` dependency in the
# thread pool, and a thread hop per dependency cost more than the whole scoring of a record.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_cities(request: Request) -> CityStore:
    cities: CityStore = request.app.state.cities
    return cities


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
CitiesDep = Annotated[CityStore, Depends(get_cities)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]

# Documented in OpenAPI as security schemes (see app.main); read straight from the headers here,
# because FastAPI's security dependencies add two dependency resolutions to every scored request.
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("x-api-key")
    if header:
        return header
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _matches(key: str | None, digests: tuple[bytes, ...]) -> bool:
    if key is None:
        return False
    presented = key_digest(key)
    # Compare with every configured key, without stopping early, in constant time per key.
    found = False
    for digest in digests:
        found |= hmac.compare_digest(presented, digest)
    return found


def check_partner(request: Request) -> None:
    """Partner endpoints: a key from CIVICRISK_API_KEYS, as X-API-Key or Authorization: Bearer."""
    settings: Settings = request.app.state.settings
    if not settings.api_key_digests:
        raise AuthNotConfigured("no API keys are configured (set CIVICRISK_API_KEYS); scoring is disabled")
    if not _matches(_presented_key(request), settings.api_key_digests):
        raise Unauthorized("missing or invalid API key (send X-API-Key or Authorization: Bearer)")


async def require_partner(request: Request) -> None:
    check_partner(request)


async def require_admin(request: Request) -> None:
    """Admin endpoints: the CIVICRISK_ADMIN_KEY."""
    settings: Settings = request.app.state.settings
    if settings.admin_key_digest is None:
        raise AuthNotConfigured("no admin key is configured (set CIVICRISK_ADMIN_KEY); admin is disabled")
    if not _matches(_presented_key(request), (settings.admin_key_digest,)):
        raise Unauthorized("missing or invalid admin key")


PartnerDep = Annotated[None, Depends(require_partner)]
AdminDep = Annotated[None, Depends(require_admin)]


async def valid_model(
    name: str,
    registry: RegistryDep,
    version: Annotated[str | None, Query(description="A loaded version; default: the newest")] = None,
) -> LoadedModel:
    """The named model from the current snapshot, or ModelNotFound (404)."""
    return registry.snapshot.get(name, version)


ModelDep = Annotated[LoadedModel, Depends(valid_model)]


async def read_json(request: Request, settings: Settings) -> Any:
    """The request body as JSON: 415 unless JSON, 413 when over the size limit, 400 when not JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"send Content-Type: application/json (got {media_type or 'none'!r})")
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # also bounds bodies sent without a Content-Length
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        if size > INLINE_PARSE_BYTES:
            return await anyio.to_thread.run_sync(orjson.loads, body)
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedBody(f"body is not valid JSON ({error.msg} at byte {error.pos})") from None


def records_of(body: Any, max_records: int) -> list[Any]:
    """The `records` list of a score request; 413 over the record limit, 422 for any other shape."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "body must be a JSON object", (Problem(("body",), 'expected {"records": [...]}'),)
        )
    extra = sorted(set(body) - {"records"})
    if extra:
        raise InvalidRequest(
            "unknown field(s) in body", tuple(Problem(("body", k), "unknown field") for k in extra)
        )
    records = body.get("records")
    if not isinstance(records, list):
        raise InvalidRequest(
            "records must be a list", (Problem(("body", "records"), "must be a list of objects"),)
        )
    if not records:
        raise InvalidRequest("records is empty", (Problem(("body", "records"), "send 1 or more records"),))
    if len(records) > max_records:
        raise PayloadTooLarge(f"{len(records)} records is over the limit of {max_records} per request")
    return records
