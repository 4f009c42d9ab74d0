"""Build the FastAPI app: settings, registry, routes, error handlers, metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from app.hospitals import cds_routes, lead_routes, lead_safe_routes, oauth_routes
from app.hospitals.cds_cors import CdsCors
from app.hospitals.cds_feedback import ModelTags
from app.hospitals.ehr_keys import IssuersFile
from app.hospitals.ehr_tokens import EhrTokenVerifier
from app.hospitals.fhir_fetch import FhirFetcher
from app.hospitals.lead_risk import LeadService
from app.hospitals.oauth_clients import OAuthClients
from app.hospitals.replay import SpentTokens
from app.inspections import establishments, performance_routes, route_pages, team_routes_api
from app.inspections import page as inspector_page
from app.inspections import routes as inspection_routes
from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyOptions
from app.inspections.staleness import refresh_metrics
from app.platform.cpus import usable_cpus
from app.platform.docs_pages import install_offline_docs
from app.platform.fast_lane import ServiceApp
from app.platform.generation import ModelSetWatcher
from app.platform.handlers import JSONBytes, install_error_handlers
from app.platform.heap import release_free_memory, reuse_freed_memory, settle_heap
from app.platform.keys import PartnerKeys
from app.platform.logs import configure_logging
from app.platform.metrics import ServiceMetrics
from app.platform.middleware import ObserveRequests
from app.platform.partner_context import install_partner_filter
from app.platform.registry import ModelRegistry, SignatureCheck, Snapshot
from app.platform.routes import admin, health, metrics, models
from app.platform.settings import Settings
from app.platform.storage.repository import Repository, nothing_stored
from app.scoring import routes as scoring
from training.serving import load_public_key, verify_signature

log = logging.getLogger(__name__)

DESCRIPTION = """Risk scores from verified model bundles, with the reasons for every score.

Partner endpoints (scoring) need an API key: `X-API-Key: <key>` or `Authorization: Bearer <key>`.
Every error has the same shape: `{"error": {"code", "message", "details": [{"loc", "message"}]}}`.
"""


def _version() -> str:
    try:
        return metadata.version("civicrisk")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def create_app(
    settings: Settings | None = None, *, load_models: bool = True, freeze_heap: bool = False
) -> FastAPI:
    """The service app. Models are loaded at start-up (lifespan) unless `load_models` is False;
    with `freeze_heap` (the server process, not tests that build many apps) what start-up loaded is
    then frozen out of the garbage collector's sight (see `settle_heap`)."""
    settings = settings or Settings()
    registry = ModelRegistry(settings.models_dir, _signature_check(settings))
    lead = LeadService(registry, settings.data_dir, settings.lead_model, settings.lead_known_homes)
    service_metrics = ServiceMetrics()
    repository = RepositoryOpener(settings.database_url)
    partner_keys = PartnerKeys(
        repository,
        lambda: nothing_stored(settings.database_url),
        settings.api_key_digests,
        settings.keys_grace_seconds,
        settings.keys_file,
    )
    # The Lead Safe drop-in's OAuth clients: in the database, read again every second like the keys.
    oauth_clients = OAuthClients(
        repository, lambda: nothing_stored(settings.database_url), settings.keys_grace_seconds
    )
    watcher = ModelSetWatcher(
        registry,
        repository if settings.shared_state else None,
        settings.model_set_poll_seconds,
        lambda loaded: _loaded(loaded, app),
    )

    @asynccontextmanager
    async def models_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not load_models:
            yield
            return
        forked_at: Preloaded | None = app.state.preloaded
        if settings.shared_state:
            await watcher.before_loading()
        if forked_at is not None and forked_at.generation == watcher.generation:
            # Forked from a master that loaded this generation's set: a reload would read the same
            # bundles again, and the copies it throws away would cost this worker private memory.
            snapshot = registry.snapshot
        else:
            snapshot = await anyio.to_thread.run_sync(registry.reload)
        service_metrics.models_loaded.set(snapshot.count)
        service_metrics.bundles_failed.set(len(snapshot.failures))
        if freeze_heap:
            settle_heap()
        # The lead engine (city test history, address index) takes seconds to build; build it
        # off the event loop now so the first hospital request does not wait for it. Not a daemon:
        # a process that exits during the build waits for it (seconds) rather than finalising the
        # interpreter under a thread still inside numpy and shapely, which can crash at exit.
        threading.Thread(target=_warm_up, args=(lead, freeze_heap), name="lead-warm-up").start()
        # Daily lists: tomorrow's default lists computed ahead, in the background (issue #19).
        app.state.daily_lists.ahead.soon()
        if not settings.shared_state:
            yield
            return
        async with anyio.create_task_group() as background:
            background.start_soon(watcher.follow)
            yield
            background.cancel_scope.cancel()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Partner keys first (the bootstrap keys named, a keys file imported, the keys read), then
        # read again every second, whether or not models are loaded.
        await anyio.to_thread.run_sync(partner_keys.start)
        await anyio.to_thread.run_sync(oauth_clients.refresh)
        async with models_lifespan(app), anyio.create_task_group() as background:
            background.start_soon(partner_keys.follow)
            background.start_soon(oauth_clients.follow)
            yield
            background.cancel_scope.cancel()
        app.state.daily_lists.close()  # daily lists: no more computed ahead, list processes stopped
        await _close_clients(app)

    app = ServiceApp(
        title="civicrisk",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONBytes,
        docs_url=None,  # /docs and /redoc with their assets served here (app/platform/docs_pages.py)
        redoc_url=None,
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.cities = CityStore(settings.data_dir, settings.cities)
    app.state.metrics = service_metrics
    app.state.daily_lists = DailyLists(app.state.cities, registry, repository, _daily_options(settings))
    staleness = partial(refresh_metrics, app.state.daily_lists, settings, service_metrics)
    service_metrics.on_scrape.append(staleness)  # each city's outcome age, before every scrape
    app.state.repository = repository
    app.state.spent_tokens = SpentTokens(repository if settings.shared_state else None)
    app.state.model_set = watcher
    app.state.partner_keys = partner_keys
    app.state.oauth_clients = oauth_clients
    app.state.lead = lead
    app.state.freeze_heap = freeze_heap
    app.state.preloaded = None  # a Preloaded once `load_before_fork` has run
    app.state.ehr_tokens = _ehr_tokens(settings)
    app.state.fhir = FhirFetcher(settings.cds_fhir_servers)  # CDS Hooks: allowlisted FHIR servers only
    app.state.model_tags = ModelTags()
    install_partner_filter()
    install_error_handlers(app)
    # The partner scoring routes are the hot ones: POSTs to them take the fast lane
    # (app/platform/fast_lane.py).
    # They are declared on the app too, first, for OpenAPI and for any request the lane passes on.
    app.fast_routes = (
        scoring.score_route,
        lead_routes.lead_route,
        lead_safe_routes.insert_route,
        cds_routes.hook_route,
    )
    app.router.routes[0:0] = list(app.fast_routes)
    for router in (
        establishments.router,
        health.router,
        models.router,
        admin.router,
        metrics.router,
        inspection_routes.router,
        team_routes_api.router,
        inspector_page.router,
        route_pages.router,
        cds_routes.router,
        oauth_routes.router,  # the Lead Safe drop-in: /oauth/token, /get/ (insert is a fast route)
        lead_safe_routes.router,
        cds_routes.summary_router,
        performance_routes.router,  # GET /v1/models/{name}/performance
    ):
        app.include_router(router)
    install_offline_docs(app)
    _document_security(app)
    app.add_middleware(CdsCors, origins=settings.cds_allowed_origins)  # inside the metrics and access log
    app.add_middleware(
        ObserveRequests, metrics=service_metrics, registry=registry, log_requests=settings.access_log
    )
    return app


def _loaded(snapshot: Snapshot, app: FastAPI) -> None:
    """After a reload (an operator's, or a new generation seen): the metrics, and the new models out
    of the collector's sight as start-up's were (app.platform.heap.settle_heap)."""
    app.state.metrics.models_loaded.set(snapshot.count)
    app.state.metrics.bundles_failed.set(len(snapshot.failures))
    if app.state.freeze_heap:
        settle_heap()
    app.state.daily_lists.ahead.soon()  # daily lists: the new models' lists, computed ahead


def _daily_options(settings: Settings) -> DailyOptions:
    """Daily lists: how they are computed (the CIVICRISK_DAILY_* settings; issue #19)."""
    return DailyOptions(
        concurrency=settings.daily_concurrency,
        max_wait_seconds=settings.daily_max_wait_seconds,
        claim_timeout_seconds=settings.daily_claim_timeout_seconds,
        cache_days=settings.daily_cache_days,
        child_process=(
            settings.daily_child_process
            if settings.daily_child_process is not None
            else usable_cpus() >= 2  # the affinity, capped by a container's CPU quota
        ),
        precompute=settings.daily_precompute,
        precompute_min_interval_seconds=settings.daily_precompute_min_interval_seconds,
    )


def _warm_up(lead: LeadService, freeze_heap: bool) -> None:
    lead.warm_up()
    if freeze_heap:
        settle_heap()


def _signature_check(settings: Settings) -> SignatureCheck | None:
    """With require_signed_bundles, every bundle needs a manifest.sig by the configured key."""
    if not settings.require_signed_bundles or settings.bundle_public_key is None:
        return None
    key = load_public_key(settings.bundle_public_key)
    return lambda path: verify_signature(path, key)


def _ehr_tokens(settings: Settings) -> EhrTokenVerifier | None:
    if settings.cds_issuers_file is None:
        return None
    base = settings.cds_service_url
    if base is None:
        raise ValueError("cds_issuers_file needs cds_service_url (the `aud` EHR tokens must carry)")
    return EhrTokenVerifier(
        IssuersFile(settings.cds_issuers_file),
        settings.cds_token_max_lifetime_seconds,
        settings.cds_clock_skew_seconds,
    )


async def _close_clients(app: FastAPI) -> None:
    """The HTTP clients of the opt-in CDS Hooks fetches (JWKS, FHIR), if one was ever made."""
    verifier: EhrTokenVerifier | None = app.state.ehr_tokens
    if verifier is not None:
        await verifier.jwks.aclose()
    await app.state.fhir.aclose()


class RepositoryOpener:
    """Open (and migrate) the database on first use, so a database that is down costs only the
    endpoints that need it (503 there), not the whole service; retried on the next request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: list[Repository] = []
        self._lock = threading.Lock()

    def __call__(self) -> Repository:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._opened.append(Repository.open(self.url))
        return self._opened[0]

    def close_connections(self) -> None:
        """Close the pooled connections, if the database was opened: before a fork, so no worker
        inherits a connection another process also uses (each opens its own on first use)."""
        for repository in self._opened:
            repository.engine.dispose()


def _document_security(app: FastAPI) -> None:
    """Declare the key schemes in OpenAPI; routes list them in `security` (see app.platform.deps.SECURITY)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
                "Basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The inspectors' routes, with CIVICRISK_INSPECTOR_AUTH=key: "
                    "the key as the password",
                },
                "OAuthClient": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "/oauth/token: the OAuth client id and secret",
                },
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory` (what `civicrisk serve` runs)."""
    settings = Settings()
    configure_logging(settings.log_level)
    reuse_freed_memory()
    return create_app(settings, freeze_heap=True)


def preloaded_app() -> FastAPI:
    """Entry point for the master of `civicrisk serve --workers N` (civicrisk/prefork.py): the app
    with what every worker reads already loaded, so the workers forked from it share those pages."""
    app = app_factory()
    load_before_fork(app)
    return app


@dataclass(frozen=True)
class Preloaded:
    """What the master loaded before forking: the model set of this generation (None: not known)."""

    generation: int | None


def load_before_fork(app: FastAPI) -> None:
    """Load the models, the lead engine, every city's data and its next day's ranked roster (the
    daily list inspectors ask for first), then freeze them out of the garbage collector's sight (a
    collection writes into each object it visits, which would copy its page into every worker) and
    give start-up's freed memory back (a worker writing into it would copy it too). Leaves no thread
    running and no database connection open: neither survives a fork.

    A worker whose start finds the same model set generation keeps these models (the app's
    lifespan); one that finds a newer one reloads, and a reload keeps every bundle whose bytes are
    unchanged (ModelRegistry.reload). The lead engine and the cities are kept per config, never
    rebuilt by a reload, so what is loaded here stays shared."""
    settings: Settings = app.state.settings
    watcher: ModelSetWatcher = app.state.model_set
    if settings.shared_state:
        anyio.run(watcher.before_loading)  # the generation to compare with, read before loading
    app.state.registry.reload()
    app.state.lead.warm_up()
    cities: CityStore = app.state.cities
    lists: DailyLists = app.state.daily_lists
    for name in cities.configs():
        cities.city(name)
        try:  # the next day's ranked roster, the list inspectors ask for first: ranked once, shared
            lists.ranked_day(name, None, here=True)
        except Exception as error:  # no model for the city, the database down: each worker ranks it
            reason = type(error).__name__
            log.info("daily list not ranked before the fork", extra={"city": name, "error": reason})
    app.state.repository.close_connections()
    app.state.preloaded = Preloaded(watcher.generation)
    others = [thread.name for thread in threading.enumerate() if thread is not threading.current_thread()]
    if others:  # a thread is not copied into the workers: whatever it was doing stops there
        log.warning("threads running before the workers are forked", extra={"threads": others})
    settle_heap()
    release_free_memory()
