"""Build the FastAPI app: settings, registry, routes, error handlers, metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from app.config import Settings
from app.handlers import JSONBytes, install_error_handlers
from app.logs import configure_logging
from app.middleware import ObserveRequests
from app.routes import admin, health, inspections, inspector, metrics, models, scoring
from app.services.cities import CityStore
from app.services.daily import DailyLists
from app.services.metrics import ServiceMetrics
from app.services.registry import ModelRegistry
from app.storage.repository import Repository

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


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    """The service app. Models are loaded at start-up (lifespan) unless `load_models` is False."""
    settings = settings or Settings()
    registry = ModelRegistry(settings.models_dir)
    service_metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_models:
            snapshot = await anyio.to_thread.run_sync(registry.reload)
            service_metrics.models_loaded.set(snapshot.count)
            service_metrics.bundles_failed.set(len(snapshot.failures))
        yield

    app = FastAPI(
        title="civicrisk",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONBytes,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.cities = CityStore(settings.data_dir)
    app.state.metrics = service_metrics
    app.state.daily_lists = DailyLists(app.state.cities, registry, _repository_opener(settings.database_url))
    install_error_handlers(app)
    # Scoring first: routes are matched in order, and the score route is the hot one.
    for router in (
        scoring.router,
        health.router,
        models.router,
        admin.router,
        metrics.router,
        inspections.router,
        inspector.router,
    ):
        app.include_router(router)
    _document_security(app)
    app.add_middleware(
        ObserveRequests, metrics=service_metrics, registry=registry, log_requests=settings.access_log
    )
    return app


def _repository_opener(url: str) -> Callable[[], Repository]:
    """Open (and migrate) the database on first use, so a database that is down costs only the
    endpoints that need it (503 there), not the whole service; retried on the next request."""
    opened: list[Repository] = []
    lock = threading.Lock()

    def repository() -> Repository:
        if not opened:
            with lock:
                if not opened:
                    opened.append(Repository.open(url))
        return opened[0]

    return repository


def _document_security(app: FastAPI) -> None:
    """Declare the key schemes in OpenAPI; routes list them in `security` (see app.deps.SECURITY)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory` (what `civicrisk serve` runs)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
