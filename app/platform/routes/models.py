"""Public model information: the list (with refused bundles), details, the model card and its plots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from app.platform import catalog
from app.platform.deps import ModelDep, RegistryDep
from app.platform.errors import ModelNotFound
from app.platform.schemas import ErrorResponse, ModelDetail, ModelList, json_error

router = APIRouter(prefix="/v1/models", tags=["models"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown model or version"}
}


@router.get("", response_model=ModelList)
async def list_models(request: Request, registry: RegistryDep) -> dict[str, object]:
    """Every loaded model (default version first) and every refused bundle with the reason."""
    snapshot = registry.snapshot
    defaults = snapshot.defaults
    return {
        "models": [
            catalog.summary(versions[defaults[name]], versions)
            for name, versions in sorted(snapshot.models.items())
        ],
        "failures": [vars(failure) for failure in snapshot.failures],
        "loaded_at": snapshot.loaded_at,
        "generation": request.app.state.model_set.generation,
        "refused": request.app.state.model_set.refused_set(),
    }


@router.get("/{name}", response_model=ModelDetail, responses=NOT_FOUND)
async def model_detail(model: ModelDep, registry: RegistryDep) -> dict[str, object]:
    """Version, city, feature schema (types, allowed values), metrics, tier cut-points, data range."""
    return catalog.detail(model, registry.snapshot.models.get(model.name, {}))


@router.get(
    "/{name}/card",
    response_class=HTMLResponse,
    responses={
        404: json_error("Unknown model or version"),
        200: {"content": {"text/html": {"example": "<!doctype html>..."}}},
    },
)
async def model_card(model: ModelDep) -> HTMLResponse:
    """The model card (intended use, data, validation, fairness, plots) as HTML."""
    return HTMLResponse(catalog.card_html(model, f"/v1/models/{model.name}/files/"))


@router.get(
    "/{name}/files/{filename}",
    response_class=Response,
    responses={
        404: json_error("Unknown model, version or plot"),
        200: {"content": {"image/png": {}}, "description": "A plot from the bundle"},
    },
)
async def model_file(model: ModelDep, filename: str) -> Response:
    """A plot the model card shows (PNG, hash-checked at load)."""
    content = model.files.get(filename)
    if content is None:
        raise ModelNotFound(f"model {model.name!r} has no plot {filename!r}")
    return Response(content, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})
