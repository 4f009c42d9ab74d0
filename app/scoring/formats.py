"""The score route's body formats, by media type. Adding one: a module in `bodies/` that declares its
`BodyFormat`, and a line here (docs/architecture.md)."""

from __future__ import annotations

from app.scoring.bodies import BodyFormat
from app.scoring.bodies.json_body import JSON_BODY
from app.scoring.bodies.parquet import PARQUET_BODY

# JSON is also what a `+json` media type is read as (check_media_type accepts those).
FORMATS: dict[str, BodyFormat] = {body.media_type: body for body in (JSON_BODY, PARQUET_BODY)}
