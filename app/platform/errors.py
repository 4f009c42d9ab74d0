"""The errors every domain shares; each domain adds its own in its `errors.py`. Services raise them,
and `app.platform.handlers` turns each into the one HTTP error shape (by its `status` and `code`).

No FastAPI imports here, so services stay framework-free.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (`loc`, e.g. ["records", 3, "prev_critical"]) and what."""

    loc: tuple[str | int, ...]
    message: str


class ServiceError(Exception):
    """Base of every error a client may see; `status` and `code` pick the HTTP response."""

    status = 500
    code = "internal_error"
    retry_after: int | None = None  # seconds, sent as Retry-After: the condition is expected to pass

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class ModelNotFound(ServiceError):
    status = 404
    code = "model_not_found"


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but does not fit the schema (fields named in `problems`)."""

    status = 422
    code = "invalid_request"


class MalformedBody(ServiceError):
    status = 400
    code = "malformed_body"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    challenge = 'Bearer realm="civicrisk"'  # the WWW-Authenticate header of the answer


class InspectorUnauthorized(Unauthorized):
    """The inspectors' routes ask for HTTP Basic too, so a browser shows its sign-in prompt (the key
    is the password) and sends it again with every link on the page, the CSV download included."""

    challenge = 'Basic realm="civicrisk inspectors", charset="UTF-8"'


class AuthNotConfigured(ServiceError):
    """The service has no key configured for this endpoint, so it refuses everyone."""

    status = 503
    code = "auth_not_configured"


class KeyStoreUnavailable(ServiceError):
    """Partner keys cannot be checked: the database that holds them has been unreachable for longer
    than the grace period (CIVICRISK_KEYS_GRACE_SECONDS). Refused, never let in unchecked."""

    status = 503
    code = "key_store_unavailable"
    retry_after = 5


class ModelUnavailable(ServiceError):
    """No model can answer (e.g. none loaded for the city)."""

    status = 503
    code = "model_unavailable"


class Forbidden(ServiceError):
    """Authenticated, but the key's scopes do not cover this endpoint."""

    status = 403
    code = "forbidden"


class PreconditionFailed(ServiceError):
    """The request cannot be answered as sent (CDS Hooks: a missing prefetch)."""

    status = 412
    code = "precondition_failed"


class ModelSetRefused(ServiceError):
    """A reload's new model set has a bundle that fails verification; the last good set keeps serving."""

    status = 409
    code = "model_set_refused"
