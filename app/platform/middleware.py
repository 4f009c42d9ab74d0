"""Per-request metrics and the structured access log, as plain ASGI (no BaseHTTPMiddleware, whose
task-per-request design costs more than scoring a record)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.platform.logs import ACCESS_MESSAGE, FACTS, direct_access_handler
from app.platform.metrics import ServiceMetrics
from app.platform.partner_context import ACCESS_LOGGER
from app.platform.registry import ModelRegistry

access_log = logging.getLogger(ACCESS_LOGGER)


class ObserveRequests:
    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, registry: ModelRegistry, log_requests: bool
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.registry = registry
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app dies before answering, the server answers 500

        async def observe_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe_send)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            # The route template, not the raw path, keeps label cardinality bounded.
            template = getattr(route, "path", None) or "unmatched"
            model = str(scope.get("path_params", {}).get("name", "")) if route is not None else ""
            if model and model not in self.registry.snapshot.models:
                model = "unknown"  # a client-chosen name must not create a new metric series
            self.metrics.observe(template, scope["method"], status, model, seconds)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                facts = {
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "model": model or None,
                    "duration_ms": round(seconds * 1000, 3),
                }
                direct = direct_access_handler(access_log)
                if direct is not None:  # the server's own configuration (app.platform.logs)
                    direct.write(facts)
                else:
                    # What access_log.info() does, minus its search of the stack for the caller
                    # (always this line, and not in the JSON), which cost more than scoring a record.
                    access_log.handle(
                        access_log.makeRecord(
                            access_log.name, logging.INFO, __file__, 0, ACCESS_MESSAGE, (), None, None,
                            {FACTS: facts},
                        )
                    )  # fmt: skip
