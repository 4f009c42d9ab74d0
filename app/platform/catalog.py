"""What the API says about a model: summaries, details and the model card as HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from markdown_it import MarkdownIt

from app.platform.registry import LoadedModel, json_safe

# Raw HTML in a card is shown as text, never rendered: a card is documentation, not a page.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def summary(model: LoadedModel, versions: Iterable[str]) -> dict[str, Any]:
    manifest = model.manifest
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    result: dict[str, Any] = json_safe(
        {
            "name": model.name,
            "version": model.version,
            "versions": sorted(versions),
            "city": model.city,
            "city_display_name": manifest.get("city_display_name"),
            "task": manifest.get("task"),
            "label": manifest.get("label") or {},
            "selected_model": manifest.get("selected_model") or {},
            "trained_until": (data or {}).get("trained_until"),
            "reasons_method": model.scorer.method,
            "loaded_at": model.loaded_at,
        }
    )
    return result


def _features(model: LoadedModel) -> list[dict[str, Any]]:
    features = []
    for entry, description in zip(model.bundle.feature_schema, model.descriptions, strict=True):
        category = entry.get("type") == "category"
        features.append(
            {
                "name": entry["name"],
                "type": "category" if category else "number",
                "description": description,
                # A missing category is scored as "Unknown", a missing number is imputed.
                "nullable": True if category else bool(entry.get("nullable", True)),
                "allowed_values": entry.get("allowed_values") if category else None,
            }
        )
    return features


def detail(model: LoadedModel, versions: Iterable[str]) -> dict[str, Any]:
    manifest = model.manifest
    validation = manifest.get("validation") or {}
    selected = (manifest.get("selected_model") or {}).get("name")
    metrics = {
        "selection": manifest.get("selection"),
        "mean_auc": validation.get("mean"),
        "baselines": validation.get("baselines"),
        "origins": (validation.get("metrics") or {}).get(selected),
    }
    data = {k: v for k, v in (manifest.get("data") or {}).items()}
    extra: dict[str, Any] = json_safe(
        {
            "feature_schema": _features(model),
            "metrics": metrics,
            "tiers": manifest.get("tiers") or {},
            "data": data,
            "libraries": manifest.get("libraries") or {},
            "created_at": manifest.get("created_at"),
            "required_inputs": _required_inputs(manifest),
        }
    )
    return summary(model, versions) | extra


def _required_inputs(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The inputs a score is not trusted without (tier insufficient_data), from the bundle's trust
    section (training/inspections/trust.py); None for a bundle trained without one."""
    trust = manifest.get("trust")
    if not isinstance(trust, Mapping):
        return None
    return {
        "families": trust.get("required_families") or {},
        "features": trust.get("required_features") or [],
        "rule": trust.get("rule"),
    }


def card_html(model: LoadedModel, files_url: str) -> str:
    """The model card as a standalone HTML page; its plot links resolve against `files_url`."""
    title = html.escape(f"Model card: {model.name} {model.version}")
    body = _markdown.render(model.card_markdown)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<base href="{html.escape(files_url)}"><title>{title}</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem}"
        "img{max-width:100%}</style></head>\n"
        f"<body>\n{body}</body></html>\n"
    )
