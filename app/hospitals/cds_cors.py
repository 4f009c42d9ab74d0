"""CORS for the CDS Hooks routes (`/cds-services*`), so browser-based CDS clients (the CDS Hooks
sandbox, an EHR's web front end) can call them, following the OWASP HTML5 cheat sheet the CDS Hooks
spec refers to: only the exact origins configured (CIVICRISK_CDS_ALLOWED_ORIGINS), echoed one at a
time, never `*`, never `Access-Control-Allow-Credentials` (an EHR authenticates with its JWT in the
Authorization header, not with cookies). A preflight from any other origin is refused with 403 and
no CORS header; other routes get no CORS headers at all.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/cds-services"
METHODS = "GET, POST, OPTIONS"
HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


class CdsCors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX) or not self.origins:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin if allowed else None)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed and origin is not None:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, Retry-After"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _preflight(origin: str | None) -> Response:
        if origin is None:
            return Response(status_code=403, headers={"Vary": "Origin"})
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": HEADERS,
                "Access-Control-Max-Age": MAX_AGE,
                "Vary": "Origin",
            },
        )
