"""The score route's body formats, by media type. Adding one: a module in `bodies/` that declares its
`BodyFormat`, and a line here (docs/architecture.md)."""

from __future__ import annotations

from app.scoring.bodies import BodyFormat
from app.scoring.bodies.json_body import JSON_BODY
from app.scoring.bodies.parquet import PARQUET_BODY

# The first is the default, and JSON: a `+json` media type (e.g. application/problem+json) is read as it.
FORMATS: dict[str, BodyFormat] = {body.media_type: body for body in (JSON_BODY, PARQUET_BODY)}
