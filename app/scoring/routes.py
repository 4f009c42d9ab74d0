"""Partner scoring, `POST /v1/models/{name}/score`: records in the model's schema, in any registered
body format (app/scoring/formats.py), scored with their tiers and reasons."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.platform.bodies import check_media_type, read_within_limit
from app.platform.deps import SECURITY, check_partner
from app.platform.handlers import JSONBytes
from app.platform.registry import LoadedModel
from app.platform.schemas import ErrorResponse, partner_errors
from app.platform.sizes import INLINE_SCORE_BYTES
from app.scoring.bodies import BodyFormat
from app.scoring.bodies.json_body import JSON_MEDIA_TYPE
from app.scoring.formats import FORMATS
from app.scoring.schemas import ScoreResponse


def _score_parameters(
    name: str,
    version: Annotated[str | None, Query(description="A loaded version; default: the newest")] = None,
) -> None:
    """The score route's parameters, declared for FastAPI to document (and, on the full stack, to
    check); `score` reads them from the request, as the fast lane calls it with the request alone."""


# The body is read by `score` itself, so FastAPI cannot see it: its OpenAPI is built here from the
# registered formats, whose JSON entry is generated from the schema classes (tests/app/test_routes.py
# compares them).
_SCORE_BODY = {"required": True, "content": {media: body.openapi for media, body in FORMATS.items()}}
_ALSO_ACCEPTED = tuple(media for media in FORMATS if media != JSON_MEDIA_TYPE)


async def score(request: Request) -> Response:
    """Score 1 to 10,000 records: probability, tier (high/medium/low) and the top 3 reasons for each.
    Send `{"records": [...]}`, the same records as a table, `{"columns": [...], "data": [[...]]}`,
    or (fastest for large batches) as Parquet without compression,
    `Content-Type: application/vnd.apache.parquet`."""
    # The body is read by hand (not a pydantic parameter) and decoded against the model's own schema
    # (app/scoring/bodies/typed.py) straight into tuples, instead of building 600,000 pydantic
    # values for a batch; a body that decoder refuses is parsed by the general path, which names
    # every problem. The key check, model lookup and settings are the functions the dependencies
    # use, called directly: the fast lane (app/platform/fast_lane.py) calls this with the bare request.
    check_partner(request)
    state = request.app.state
    settings, metrics = state.settings, state.metrics
    version = request.query_params.get("version") if request.scope["query_string"] else None
    model = state.registry.snapshot.get(request.path_params["name"], version)
    media_type = check_media_type(request, also=_ALSO_ACCEPTED)
    body_format = FORMATS.get(media_type, FORMATS[JSON_MEDIA_TYPE])  # a +json type is read as JSON
    body = await read_within_limit(request, settings)
    if body_format.inline and len(body) <= INLINE_SCORE_BYTES:
        content, count = _answer(body_format, model, body, settings.max_records)
    else:
        content, count = await anyio.to_thread.run_sync(
            _answer, body_format, model, body, settings.max_records
        )
    metrics.scored(model.name, count)
    return JSONBytes(content)


# app.main declares it on the app itself, first, and serves its POSTs through the fast lane
# (app/platform/fast_lane.py); the full stack serves it as any other route (another method, a root path).
score_route = APIRoute(
    "/v1/models/{name}/score",
    score,
    methods=["POST"],
    tags=["scoring"],
    dependencies=[Depends(_score_parameters)],
    response_model=ScoreResponse,
    responses={
        **partner_errors(401, 404, 413, 415, 422, 503),
        400: {"model": ErrorResponse, "description": "Not JSON"},
    },
    openapi_extra={"requestBody": _SCORE_BODY, "security": SECURITY},
)


def _answer(body_format: BodyFormat, model: LoadedModel, body: bytes, max_records: int) -> tuple[bytes, int]:
    """The answer to a score body as JSON bytes, and how many records it scored."""
    results = body_format.score(model, body, max_records)
    header = {"model": model.name, "version": model.version, "reasons_method": model.scorer.method}
    return orjson.dumps(header | {"results": results}), len(results)
