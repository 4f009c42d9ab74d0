"""Operator endpoints: reload the models directory without a restart."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.platform.deps import SECURITY, AdminDep
from app.platform.errors import ModelSetRefused, Problem
from app.platform.generation import ModelSetWatcher
from app.platform.schemas import ErrorResponse, Reloaded

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=Reloaded,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid admin key"},
        403: {"model": ErrorResponse, "description": "A partner key without the `admin` scope"},
        409: {
            "model": ErrorResponse,
            "description": "The new set was refused (a bundle failed verification); the last good set serves",
        },
        503: {"model": ErrorResponse, "description": "No admin key configured"},
    },
    openapi_extra={"security": SECURITY},
)
async def reload(request: Request, _: AdminDep) -> dict[str, object]:
    """Re-verify and load every bundle, then swap atomically; in-flight requests finish on the old
    models. Every other worker and replica sharing the database follows within seconds (a new model
    set generation). All or nothing: if a bundle in the new set fails verification, the set is
    refused (409, each bundle and why), here and on every replica, and the last good set serves."""
    watcher: ModelSetWatcher = request.app.state.model_set
    generation, snapshot = await watcher.bump_and_reload()
    refusal = watcher.registry.refusal
    if refusal is not None:
        problems = tuple(Problem(("models", failure.path), failure.reason) for failure in refusal.failures)
        raise ModelSetRefused(refusal.message, problems)
    return {
        "models_loaded": snapshot.count,
        "failures": [vars(failure) for failure in snapshot.failures],
        "loaded_at": snapshot.loaded_at,
        "generation": generation,
    }
