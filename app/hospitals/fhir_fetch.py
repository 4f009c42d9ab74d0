"""Fetching what the EHR did not prefetch from its own FHIR server, with the access token it sent
(CDS Hooks 2.0, "FHIR Resource Access"). Off by default: only FHIR servers whose base URL is in
CIVICRISK_CDS_FHIR_SERVERS are ever called, so with the defaults the service connects nowhere.

Nothing fetched is kept; the token is used for these reads only and never logged.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from app.hospitals.fhir_labs import SEARCH
from app.platform.errors import PreconditionFailed

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
MAX_BYTES = 512 * 1024
FHIR_JSON = "application/fhir+json"


class FhirFetcher:
    """Reads from allowlisted FHIR servers; the HTTP client is made at the first read."""

    def __init__(self, servers: tuple[str, ...]) -> None:
        self.servers = frozenset(servers)
        self._client: httpx.AsyncClient | None = None

    def usable(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """(base URL, access token) when the request names an allowlisted server and a bearer token."""
        server, authorization = body.get("fhirServer"), body.get("fhirAuthorization")
        if not self.servers or not isinstance(server, str) or not isinstance(authorization, dict):
            return None
        token = authorization.get("access_token")
        if server.rstrip("/") not in self.servers or not isinstance(token, str) or not token:
            return None
        if str(authorization.get("token_type", "Bearer")).lower() != "bearer":
            return None
        return server.rstrip("/"), token

    async def _get(self, url: str, token: str) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False)
        try:
            response = await self._client.get(
                url, headers={"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
            )
        except httpx.HTTPError as error:
            log.warning("FHIR server read failed", extra={"error": type(error).__name__})
            raise PreconditionFailed("the EHR's FHIR server could not be read") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200 or len(response.content) > MAX_BYTES:
            log.warning("FHIR server read refused", extra={"status": response.status_code})
            raise PreconditionFailed(f"the EHR's FHIR server answered {response.status_code}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise PreconditionFailed("the EHR's FHIR server did not answer JSON") from None

    async def patient(self, server: str, token: str, patient_id: str) -> Any:
        return await self._get(f"{server}/Patient/{quote(patient_id, safe='')}", token)

    async def blood_lead(self, server: str, token: str, patient_id: str) -> Any:
        query = SEARCH.format(patient=quote(patient_id, safe="")).replace("|", "%7C")
        return await self._get(f"{server}/{query}&_count=100", token)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
