"""Partner scoring: records in the model's schema, or an establishment computed from city data."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.platform.bodies import check_media_type, parse_json, read_within_limit
from app.platform.deps import SECURITY, check_partner
from app.platform.errors import InvalidRequest
from app.platform.handlers import JSONBytes
from app.platform.registry import LoadedModel
from app.platform.schemas import ErrorResponse
from app.platform.sizes import INLINE_SCORE_BYTES
from app.scoring.bodies.parquet import PARQUET_MEDIA_TYPE, open_parquet, parquet_batch
from app.scoring.bodies.records import check_record_count, records_of
from app.scoring.bodies.table import as_table_problem, is_table, table_records
from app.scoring.bodies.typed import decoder_for
from app.scoring.schemas import ScoreRequest, ScoreResponse, ScoreTable
from app.scoring.scorers import score_records

router = APIRouter(tags=["scoring"])

def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Missing or invalid API key",
        404: "Unknown model, version, city or establishment",
        413: "Over 10,000 records or the body size limit",
        415: "Content-Type is not application/json",
        422: "A field is unknown, of the wrong type, or not finite (named with its record index)",
        503: "No API key configured, no model loaded for the city, or the database is down",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


def _score_parameters(
    name: str,
    version: Annotated[str | None, Query(description="A loaded version; default: the newest")] = None,
) -> None:
    """The score route's parameters, declared for FastAPI to document (and, on the full stack, to
    check); `score` reads them from the request, as the fast lane calls it with the request alone."""


# The body is read by `score` itself, so FastAPI cannot see it: its OpenAPI is built here from the
# same schema classes (tests/app/test_routes.py compares the two).
_SCORE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [ScoreRequest.model_json_schema(), ScoreTable.model_json_schema()]}
        },
        PARQUET_MEDIA_TYPE: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "One column per feature (any subset, any order), one row per record, "
                "no compression: frame.to_parquet(buffer, compression=None)",
            }
        },
    },
}


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
    media_type = check_media_type(request, also=(PARQUET_MEDIA_TYPE,))
    body = await read_within_limit(request, settings)
    answer = _answer_parquet if media_type == PARQUET_MEDIA_TYPE else _answer
    # A Parquet body, however small, goes to a thread: one record costs pyarrow ~0.5 ms to read.
    if len(body) <= INLINE_SCORE_BYTES and answer is _answer:
        content, count = answer(model, body, settings.max_records)
    else:
        content, count = await anyio.to_thread.run_sync(answer, model, body, settings.max_records)
    metrics.scored(model.name, count)
    return JSONBytes(content)


# Not in `router`: app.main declares it on the app itself, first, and serves its POSTs through the
# fast lane (app/platform/fast_lane.py); the full stack serves it as any other route (another method, a root
# path).
score_route = APIRoute(
    "/v1/models/{name}/score",
    score,
    methods=["POST"],
    tags=["scoring"],
    dependencies=[Depends(_score_parameters)],
    response_model=ScoreResponse,
    responses={
        **_errors(401, 404, 413, 415, 422, 503),
        400: {"model": ErrorResponse, "description": "Not JSON"},
    },
    openapi_extra={"requestBody": _SCORE_BODY, "security": SECURITY},
)


def _answer(model: LoadedModel, body: bytes, max_records: int) -> tuple[bytes, int]:
    """The answer to a score body (records or a table), and how many records it scored."""
    typed = decoder_for(model.layout).decode(body)
    if typed is not None:
        check_record_count(len(typed), max_records, typed.field)
        results = score_records(typed, model)
    else:
        parsed = parse_json(body)
        if is_table(parsed):
            if isinstance(parsed.get("data"), list):  # 413 before any row is looked at, as for records
                check_record_count(len(parsed["data"]), max_records, "data")
            records = table_records(parsed, model.layout)
            try:
                results = score_records(records, model)
            except InvalidRequest as error:
                raise as_table_problem(error) from None
        else:
            results = score_records(records_of(parsed, max_records), model)
    return _answer_of(model, results)


def _answer_parquet(model: LoadedModel, body: bytes, max_records: int) -> tuple[bytes, int]:
    """`_answer` for a Parquet body (app/scoring/bodies/parquet.py)."""
    file = open_parquet(body, model.layout)
    check_record_count(file.metadata.num_rows, max_records)  # from the footer, before any data is read
    batch = parquet_batch(file, model.layout)
    return _answer_of(model, model.score_batch(batch))


def _answer_of(model: LoadedModel, results: list[dict[str, Any]]) -> tuple[bytes, int]:
    header = {"model": model.name, "version": model.version, "reasons_method": model.scorer.method}
    return orjson.dumps(header | {"results": results}), len(results)
