"""Score body formats: each module turns one kind of body into the model's input and declares a
`BodyFormat`; `app/scoring/formats.py` registers them by media type for the score route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.platform.registry import LoadedModel


@dataclass(frozen=True)
class BodyFormat:
    """One media type the score route accepts.

    `score(model, body, max_records)` validates the body (413 over `max_records`, 4xx naming what is
    wrong) and returns one answer per record, in order. `openapi` is the media type's entry in the
    route's OpenAPI request body. A format that is `inline` may be answered on the event loop when the
    body is small (app.platform.sizes.INLINE_SCORE_BYTES); any other always in a worker thread.
    """

    media_type: str
    score: Callable[[LoadedModel, bytes, int], list[dict[str, Any]]]
    openapi: dict[str, Any]
    inline: bool
