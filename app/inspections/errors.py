"""The inspections domain's errors (HTTP shape: app.platform.handlers)."""

from __future__ import annotations

from app.platform.errors import ServiceError


class CityNotFound(ServiceError):
    status = 404
    code = "city_not_found"


class EstablishmentNotFound(ServiceError):
    status = 404
    code = "establishment_not_found"


class ListNotFound(ServiceError):
    status = 404
    code = "list_not_found"
