"""A score body as JSON: `{"records": [...]}`, or the same records as a table, `{"columns": [...],
"data": [[...]]}`. Decoded against the model's own schema when it can be (typed.py), else parsed and
checked field by field (records.py, table.py), which names every problem."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.platform.bodies import parse_json
from app.platform.errors import InvalidRequest
from app.scoring.bodies import BodyFormat
from app.scoring.bodies.records import check_record_count, records_of
from app.scoring.bodies.table import as_table_problem, is_table, table_records
from app.scoring.bodies.typed import decoder_for
from app.scoring.schemas import ScoreRequest, ScoreTable
from app.scoring.scorers import score_records

if TYPE_CHECKING:
    from app.platform.registry import LoadedModel

JSON_MEDIA_TYPE = "application/json"


def score_json(model: LoadedModel, body: bytes, max_records: int) -> list[dict[str, Any]]:
    """The answers to a JSON score body (records or a table)."""
    typed = decoder_for(model.layout).decode(body)
    if typed is not None:
        check_record_count(len(typed), max_records, typed.field)
        return score_records(typed, model)
    parsed = parse_json(body)
    if not is_table(parsed):
        return score_records(records_of(parsed, max_records), model)
    if isinstance(parsed.get("data"), list):  # 413 before any row is looked at, as for records
        check_record_count(len(parsed["data"]), max_records, "data")
    records = table_records(parsed, model.layout)
    try:
        return score_records(records, model)
    except InvalidRequest as error:
        raise as_table_problem(error) from None


JSON_BODY = BodyFormat(
    media_type=JSON_MEDIA_TYPE,
    score=score_json,
    openapi={"schema": {"oneOf": [ScoreRequest.model_json_schema(), ScoreTable.model_json_schema()]}},
    inline=True,
)
