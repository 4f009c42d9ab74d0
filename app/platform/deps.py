"""The platform's dependencies: settings, registry and metrics from the app's state, who the caller is
(partner, inspector and admin keys, with their scopes), and validated models. Body reading is in
`app.platform.bodies`."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Query, Request

from app.platform.errors import AuthNotConfigured, Forbidden, InspectorUnauthorized, Unauthorized
from app.platform.keys import Partner, PartnerKeys
from app.platform.metrics import ServiceMetrics
from app.platform.partner_context import CURRENT_PARTNER
from app.platform.registry import LoadedModel, ModelRegistry
from app.platform.settings import Settings, key_digest

ADMIN, INSPECTIONS, LEAD = "admin", "inspections", "lead"

# Every dependency below is `async def` on purpose: FastAPI runs a plain `def` dependency in the
# thread pool, and a thread hop per dependency cost more than the whole scoring of a record.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]

# Documented in OpenAPI as security schemes (see app.main); read straight from the headers here,
# because FastAPI's security dependencies add two dependency resolutions to every scored request.
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
# The inspectors' routes: no key by default (the empty requirement), or any of these with
# CIVICRISK_INSPECTOR_AUTH=key (see require_inspector).
INSPECTOR_SECURITY: list[dict[str, list[str]]] = [{}, *SECURITY, {"Basic": []}]


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


def _model_scope(request: Request) -> str | None:
    """The scope a model route needs: `lead` for a lead-risk model, `inspections` for the others;
    None (any partner scope) for a name that is not loaded, which then answers 404."""
    name = request.path_params.get("name")
    if name is None:
        return INSPECTIONS
    versions = request.app.state.registry.snapshot.models.get(name)
    if not versions:
        return None
    task = next(iter(versions.values())).manifest.get("task")
    return LEAD if task == "lead_risk" else INSPECTIONS


def check_partner(request: Request, scope: str | None = None) -> Partner:
    """Partner endpoints: a managed key (in the database) or one from CIVICRISK_API_KEYS, as X-API-Key
    or Authorization: Bearer; 401 without a valid key, 403 when its scopes lack `scope` (by default the
    scope of the model named in the path), 503 when the key store has been unreachable for longer than
    the grace period. The partner id is kept for the access log."""
    partner = _key_holder(request, _presented_key(request), "scoring is disabled")
    if partner is None:
        raise Unauthorized("missing or invalid API key (send X-API-Key or Authorization: Bearer)")
    return _in_scope(partner, scope if scope is not None else _model_scope(request))


def _key_holder(request: Request, key: str | None, closed: str) -> Partner | None:
    """The partner holding `key`, or None; 503 when no key is configured at all (`closed` says what
    that shuts) or the managed keys cannot be checked (KeyStoreUnavailable)."""
    keys: PartnerKeys = request.app.state.partner_keys
    partner = keys.find(key)
    # Asked only when no key matched: a key that matched proves some are configured.
    if partner is None and not keys.configured:
        raise AuthNotConfigured(
            f"no API keys are configured (civicrisk keys create, or set CIVICRISK_API_KEYS); {closed}"
        )
    return partner


def _in_scope(partner: Partner, needed: str | None) -> Partner:
    if needed is not None and needed not in partner.scopes:
        raise Forbidden(f"this API key does not have the {needed!r} scope")
    CURRENT_PARTNER.set(partner.id)
    return partner


def _basic_password(request: Request) -> str | None:
    """The password of `Authorization: Basic` (the user name is not checked: the key says who)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


async def require_inspector(request: Request) -> None:
    """The inspectors' routes (the page, daily lists, issued lists): open to anyone who can reach the
    service by default, as inside a city network or behind the city's own sign-on proxy; with
    CIVICRISK_INSPECTOR_AUTH=key, a key with the `inspections` scope, which a browser sends as the
    password of HTTP Basic after its sign-in prompt."""
    settings: Settings = request.app.state.settings
    if settings.inspector_auth == "open":
        return
    key = _presented_key(request) or _basic_password(request)
    partner = _key_holder(request, key, "the inspectors' routes are closed")
    if partner is None:
        raise InspectorUnauthorized(
            "missing or invalid API key (send X-API-Key, Authorization: Bearer, or the key as the "
            "password of HTTP Basic)"
        )
    _in_scope(partner, INSPECTIONS)


async def require_partner(request: Request) -> None:
    """Inspection partner endpoints (scope `inspections`)."""
    check_partner(request, INSPECTIONS)


async def require_lead_partner(request: Request) -> Partner:
    return check_partner(request, LEAD)


async def require_admin(request: Request) -> None:
    """Admin endpoints: the CIVICRISK_ADMIN_KEY, or a managed key with the `admin` scope."""
    settings: Settings = request.app.state.settings
    keys: PartnerKeys = request.app.state.partner_keys
    if settings.admin_key_digest is None and not keys.configured:
        raise AuthNotConfigured("no admin key is configured (set CIVICRISK_ADMIN_KEY); admin is disabled")
    presented = _presented_key(request)
    if settings.admin_key_digest is not None and _matches(presented, (settings.admin_key_digest,)):
        return
    partner = keys.find(presented)
    if partner is None:
        raise Unauthorized("missing or invalid admin key")
    if ADMIN not in partner.scopes:
        raise Forbidden("this API key does not have the 'admin' scope")
    CURRENT_PARTNER.set(partner.id)


PartnerDep = Annotated[None, Depends(require_partner)]
InspectorDep = Annotated[None, Depends(require_inspector)]
AdminDep = Annotated[None, Depends(require_admin)]


async def valid_model(
    name: str,
    registry: RegistryDep,
    version: Annotated[str | None, Query(description="A loaded version; default: the newest")] = None,
) -> LoadedModel:
    """The named model from the current snapshot, or ModelNotFound (404)."""
    return registry.snapshot.get(name, version)


ModelDep = Annotated[LoadedModel, Depends(valid_model)]


