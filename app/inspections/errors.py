"""The inspections domain's errors (HTTP shape: app.platform.handlers)."""

from __future__ import annotations

from app.platform.errors import InvalidRequest, ServiceError


class CityNotFound(ServiceError):
    status = 404
    code = "city_not_found"


class EstablishmentNotFound(ServiceError):
    status = 404
    code = "establishment_not_found"


class ListNotFound(ServiceError):
    status = 404
    code = "list_not_found"


class ListsBusy(ServiceError):
    """Every daily list computation slot stayed taken past the configured wait."""

    status = 503
    code = "daily_lists_busy"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ListComputationFailed(ServiceError):
    """The child process computing a list ended without one (killed, out of memory, or an error)."""

    status = 500
    code = "list_computation_failed"


class RoutePlanNotFound(ServiceError):
    status = 404
    code = "route_plan_not_found"


class RouteNotFound(ServiceError):
    status = 404
    code = "route_not_found"


class NoCoordinates(InvalidRequest):
    """The city's data places no establishment on a map, so nothing can be grouped by distance."""

    code = "city_has_no_coordinates"
