"""The partner routes served straight from the ASGI scope, ahead of FastAPI's per-request layers.

`POST /v1/models/{name}/score` and `POST /v1/lead/risk` are what partners call thousands of times a
second. Under load (py-spy, bench/README.md) the layers every request passes through before and after
the route (Starlette's error and exception middlewares, FastAPI's telemetry, body-limit and exit-stack
middlewares, the router, the route wrapper) took about a third of a single-record request: more than
scoring it. So `ServiceApp` sends POSTs to those paths down a short lane: the app's own middleware
(metrics and the access log, the same instances' settings), the route's endpoint, and the app's own
exception handlers. Every other request, and these paths with another method or a root path, go
through the full stack as before.

This is the service's one way around FastAPI's stack. The routes are ordinary APIRoutes declared on
the app, so FastAPI documents them from their declarations and the full stack serves them too; their
endpoints take the bare Request and read and check everything themselves, so both ways call the same
endpoint alike. tests/app/test_fast_lane.py checks that the answers agree, and that Starlette and
FastAPI still offer what the lane uses (`build_middleware_stack`, `user_middleware`,
`exception_handlers`, a route's `path_regex`, `param_convertors` and `endpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request, Exception], Any]


class RouteLane:
    """Calls the matched route's endpoint with the bare Request; what it raises goes to the app's
    exception handler for that type (or for Exception), as Starlette's exception middleware does."""

    def __init__(self, handlers: Mapping[Any, Handler]) -> None:
        self.handlers = dict(handlers)

    def _handler(self, error: Exception) -> Handler:
        for kind in type(error).__mro__:
            handler: Handler | None = self.handlers.get(kind)
            if handler is not None:
                return handler
        raise error  # no handler, not even for Exception: the server answers 500

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        endpoint: Callable[[Request], Any] = scope["route"].endpoint
        try:
            response: Response = await endpoint(request)
        except Exception as error:
            response = await self._handler(error)(request, error)
        await response(scope, receive, send)


class FastLane:
    """POSTs to `routes` go to `lane`; everything else to `full` (the app's usual stack)."""

    def __init__(self, full: ASGIApp, lane: ASGIApp, routes: Sequence[Route]) -> None:
        self.full = full
        self.lane = lane
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path = scope["path"]
            for route in self.routes:
                match = route.path_regex.match(path)
                if match is not None:
                    convert = route.param_convertors
                    scope["route"] = route
                    scope["path_params"] = {k: convert[k].convert(v) for k, v in match.groupdict().items()}
                    await self.lane(scope, receive, send)
                    return
        await self.full(scope, receive, send)


class ServiceApp(FastAPI):
    """FastAPI with a fast lane for the routes in `fast_routes` (set before the first request)."""

    fast_routes: tuple[Route, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        full = super().build_middleware_stack()
        if not self.fast_routes:
            return full
        lane: ASGIApp = RouteLane(self.exception_handlers)
        for middleware in reversed(self.user_middleware):  # the app's own middleware, same order
            cls, args, kwargs = middleware
            lane = cls(lane, *args, **kwargs)
        return FastLane(full, lane, self.fast_routes)
