"""What both tasks' model cards are made of: PNG plots (a figure, its bytes, feature importance) and
Markdown pieces (values, tables, sections, bullet lists, tiers, the command that reproduces a bundle).
Each task's card is in its package (training/inspections/card.py, training/lead/card.py)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede the pyplot import
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TOP_FEATURES = 15
_FIGSIZE = (6.0, 4.0)
_DPI = 100

# ---------------------------------------------------------------------------------------------- plots


@contextmanager
def plot_figure(figsize: tuple[float, float] = _FIGSIZE) -> Iterator[tuple[Figure, Axes]]:
    figure, axes = plt.subplots(figsize=figsize)
    try:
        yield figure, axes
    finally:
        plt.close(figure)


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    # No "Software" stamp: the same model should give the same bytes (and hashes) on any matplotlib.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def no_data(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def importance_plot(feature_importance: Mapping[str, float]) -> bytes:
    # Coefficients can be negative; rank by magnitude but plot the sign.
    top = sorted(feature_importance.items(), key=lambda item: (-abs(float(item[1])), item[0]))[:TOP_FEATURES]
    with plot_figure((6.0, 5.0)) as (figure, axes):
        if not top:
            no_data(axes, "no feature importance available")
        else:
            names = [name for name, _ in reversed(top)]  # largest at the top
            values = [float(value) for _, value in reversed(top)]
            axes.barh(names, values, color=["tab:blue" if v >= 0 else "tab:orange" for v in values])
            axes.axvline(0, color="grey", linewidth=1)
            axes.set_xlabel("importance")
            axes.tick_params(axis="y", labelsize=8)
        return png_bytes(figure)


# ---------------------------------------------------------------------------------------------- card


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        # Four significant digits keep small tier cut-points (0.0123) readable without long tails.
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {format_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(format_value(item) for item in value)
    # Table cells: a pipe or newline would break the Markdown row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    if not rows:
        return ["_None recorded._"]
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(column)) for column in columns) + " |" for row in rows]
    return lines


def table_rows(value: Any, key_name: str) -> list[dict[str, Any]]:
    """Turn a list of dicts, a dict of dicts or a dict of scalars into table rows."""
    if isinstance(value, Mapping):
        rows = []
        for key, item in value.items():
            if isinstance(item, Mapping):
                rows.append({key_name: key, **item})
            else:
                rows.append({key_name: key, "value": item})
        return rows
    if isinstance(value, list | tuple):
        return [dict(item) if isinstance(item, Mapping) else {key_name: item} for item in value]
    return []


def validation_rows(metrics: Any) -> list[dict[str, Any]]:
    """Flatten per-model, per-origin metrics into rows with `model` and `origin` columns first."""
    if not isinstance(metrics, Mapping):
        return table_rows(metrics, "model")
    rows: list[dict[str, Any]] = []
    for model, per_origin in metrics.items():
        if isinstance(per_origin, Mapping) and all(isinstance(v, Mapping) for v in per_origin.values()):
            rows += [{"model": model, "origin": origin, **values} for origin, values in per_origin.items()]
        elif isinstance(per_origin, list | tuple):
            rows += [{"model": model, **dict(item)} for item in per_origin if isinstance(item, Mapping)]
        else:
            rows += table_rows({model: per_origin}, "model")
    return rows


def bullet_lines(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [f"- {key}: {format_value(item)}" for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [f"- {format_value(item)}" for item in value]
    return [f"- {format_value(value)}"] if value else []


def markdown_section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def tier_lines(manifest: Mapping[str, Any]) -> list[str]:
    tiers = manifest.get("tiers")
    if not tiers:
        return markdown_section("Tier cut-points", ["_No tiers recorded._"])
    cut_points = tiers.get("cut_points") if isinstance(tiers, Mapping) else None
    if isinstance(cut_points, Mapping):
        rows = [{"tier": tier, "minimum score": value} for tier, value in cut_points.items()]
        body = ["Scores are mapped to tiers with these cut-points:", "", *markdown_table(rows)]
        if tiers.get("rule"):
            body += ["", f"Rule: {format_value(tiers['rule'])}"]
    else:
        body = [
            "Scores are mapped to tiers with these cut-points:",
            "",
            *markdown_table(table_rows(tiers, "tier")),
        ]
    return markdown_section("Tier cut-points", body)


def reproduce_lines(manifest: Mapping[str, Any]) -> list[str]:
    command = manifest.get("command")
    if isinstance(command, list | tuple):
        command = " ".join(str(part) for part in command)
    if not command:
        return markdown_section("Reproduce", ["_No command recorded._"])
    return markdown_section("Reproduce", ["```sh", str(command), "```"])


