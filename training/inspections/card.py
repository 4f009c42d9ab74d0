"""The inspection model's card (Markdown) and evaluation plots (PNG).

`render_model_card` reads these manifest keys, all optional: name, version, city (or city_display_name),
label.description, data.{start, end, trained_until, content_hash, sources or files}, feature_schema (list of
{name, type, description, allowed_values?}), validation.{origins, metrics, mean}, selected_model, selection,
backtest, decay (training/inspections/decay.py), tiers (either {cut_points: {tier: score}, rule} or a
table), fairness, command. Tables accept a list of row dicts or a dict keyed by row name; validation
metrics may be {model: [row per origin]} or {model: {origin: {metric: value}}}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from training.card import (
    bullet_lines,
    format_value,
    importance_plot,
    markdown_section,
    markdown_table,
    no_data,
    plot_figure,
    png_bytes,
    reproduce_lines,
    table_rows,
    tier_lines,
    validation_rows,
)
from training.evaluate import calibration_table, precision_at_k_curve
from training.inspections.trust import trust_lines

PLOT_FILES: dict[str, str] = {
    "precision_at_k.png": "Precision in the top k% of inspections",
    "days_earlier_hist.png": "Days earlier each violation would have been found",
    "calibration.png": "Calibration (reliability diagram)",
    "feature_importance.png": "Feature importance (top 15)",
}


EVALUATION_COLUMNS = ("inspection_id", "date", "label", "score", "simulated_date", "days_earlier")


# The validation table would be too wide with every metric; these are shown when present, in this order.
VALIDATION_COLUMNS = (
    "model",
    "origin",
    "valid_start",
    "valid_end",
    "auc",
    "precision_at_10",
    "recall_at_10",
    "precision_at_20",
    "days_earlier",
    "n_inspections",
    "base_rate",
)


def _precision_plot(ordered: pd.DataFrame) -> bytes:
    ks = list(range(1, 101))
    curve = precision_at_k_curve(ordered["label"], ordered["score"], ks)
    base_rate = float(ordered["label"].mean())
    with plot_figure() as (figure, axes):
        axes.plot(curve["k"], curve["precision"], label="model")
        axes.axhline(base_rate, color="grey", linestyle="--", label=f"base rate ({base_rate:.2f})")
        axes.set_xlabel("top k% of inspections by score")
        axes.set_ylabel("precision (share of inspections with the label)")
        axes.set_ylim(0, 1.02)
        axes.set_xlim(0, 100)
        axes.legend(loc="upper right")
        return png_bytes(figure)


def _days_earlier_plot(ordered: pd.DataFrame) -> bytes:
    days = ordered.loc[ordered["label"] == 1, "days_earlier"].astype("float64")
    with plot_figure() as (figure, axes):
        if days.empty:
            no_data(axes, "no inspections with a violation in this window")
        else:
            axes.hist(days, bins=min(30, max(5, days.nunique())), color="tab:blue")
            axes.axvline(0, color="grey", linewidth=1)
            axes.axvline(days.mean(), color="tab:red", linestyle="--", label=f"mean {days.mean():.1f} days")
            axes.set_xlabel("days earlier than actual inspection (negative = later)")
            axes.set_ylabel("inspections with a violation")
            axes.legend(loc="upper right")
        return png_bytes(figure)


def _calibration_plot(ordered: pd.DataFrame) -> bytes:
    table = calibration_table(ordered["label"], ordered["score"])
    with plot_figure((5.0, 5.0)) as (figure, axes):
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
        axes.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
        axes.set_xlabel("mean predicted probability (score decile)")
        axes.set_ylabel("observed violation rate")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.legend(loc="upper left")
        return png_bytes(figure)


def render_plots(evaluation: pd.DataFrame, feature_importance: Mapping[str, float]) -> dict[str, bytes]:
    """PNG plots for the model card, keyed by file name (see PLOT_FILES).

    `evaluation` is `simulate_reordering` output for the validation window; `feature_importance` maps
    feature name to importance (signed coefficients are fine).
    """
    missing = [column for column in EVALUATION_COLUMNS if column not in evaluation.columns]
    if missing:
        raise ValueError(f"evaluation frame is missing column(s): {', '.join(missing)}")
    if evaluation.empty:
        raise ValueError("evaluation frame is empty: nothing to plot")
    # Business-as-usual order first, so score ties in the curves break the same way as in the metrics.
    ordered = evaluation.sort_values(["date", "inspection_id"], kind="stable")
    makers: dict[str, Callable[[], bytes]] = {
        "precision_at_k.png": lambda: _precision_plot(ordered),
        "days_earlier_hist.png": lambda: _days_earlier_plot(ordered),
        "calibration.png": lambda: _calibration_plot(ordered),
        "feature_importance.png": lambda: importance_plot(feature_importance),
    }
    return {name: make() for name, make in makers.items()}


LIMITATIONS = (
    "Historical inspections reflect where inspectors chose or were sent to go, not a random sample of "
    "establishments, so the model learns from that selection.",
    "The label depends on inspector thoroughness: a violation that was not written up looks like a clean "
    "inspection.",
    "Spatial features (nearby complaints, crime, neighbourhood history) may encode neighbourhood "
    "disparities; review tier assignments across areas before and during use.",
    "Scores are probabilities estimated from past data; they drift as the city, its businesses and its "
    "inspection practice change, and should be re-validated on recent data.",
)


def _city(manifest: Mapping[str, Any]) -> str:
    city = manifest.get("city_display_name") or manifest.get("city")
    if isinstance(city, Mapping):
        city = city.get("name") or city.get("city")
    return str(city) if city else "unspecified city"


def _overview(manifest: Mapping[str, Any]) -> list[str]:
    label = manifest.get("label")
    description = label.get("description") if isinstance(label, Mapping) else label
    return markdown_section(
        "Overview",
        [
            f"- **City:** {_city(manifest)}",
            f"- **Predicts:** {description or 'not recorded'}",
            "- **Intended use:** prioritising routine food inspections, so the establishments most likely "
            "to have the outcome above are visited sooner.",
            "- **Not for:** replacing inspections, or any punitive use (fines, licensing decisions, "
            "public ranking of businesses). A high score is not evidence of a violation.",
        ],
    )


def _data(manifest: Mapping[str, Any]) -> list[str]:
    data = manifest.get("data") or {}
    body = [f"- **Date range:** {format_value(data.get('start'))} to {format_value(data.get('end'))}"]
    if data.get("trained_until"):
        body.append(f"- **Trained on inspections up to:** {format_value(data['trained_until'])}")
    if data.get("n_examples") is not None:
        body.append(f"- **Training examples:** {format_value(data['n_examples'])}")
    body.append(f"- **Content hash (sha256):** `{data.get('content_hash') or 'not recorded'}`")
    sources = bullet_lines(data.get("sources") or data.get("files"))
    if sources:
        body += ["- **Sources:**", *["  " + line for line in sources]]
    return markdown_section("Data", body)


def _features(manifest: Mapping[str, Any]) -> list[str]:
    schema = [dict(item) for item in manifest.get("feature_schema") or [] if isinstance(item, Mapping)]
    rows = [
        {
            "name": f"`{item.get('name')}`",
            "type": item.get("type"),
            "description": item.get("description"),
            "allowed values": item.get("allowed_values"),
        }
        for item in schema
    ]
    body = [f"{len(rows)} features, in the order the model expects them.", ""]
    body += markdown_table(rows, ["name", "type", "description", "allowed values"])
    body += ["", "No inspector identity is used: no inspector name, ID or assignment is a feature."]
    return markdown_section("Features", body)


def _validation(manifest: Mapping[str, Any]) -> list[str]:
    validation = manifest.get("validation") or {}
    body: list[str] = []
    origins = validation.get("origins")
    if origins:
        body += [
            "Rolling-origin validation: train on everything before each origin, validate on the "
            "window after it.",
            "",
        ]
        if isinstance(origins, list | tuple) and all(isinstance(o, Mapping) for o in origins):
            body += markdown_table(table_rows(origins, "origin"))
        else:
            body += bullet_lines(origins)
        body.append("")
    metrics = validation.get("metrics", validation.get("results"))
    if metrics:
        rows = validation_rows(metrics)
        present = {key for row in rows for key in row}
        columns = [column for column in VALIDATION_COLUMNS if column in present] or None
        body += ["Per-model, per-origin validation metrics:", "", *markdown_table(rows, columns), ""]
    mean = validation.get("mean")
    if isinstance(mean, Mapping) and mean:
        rows = [{"model": model, "mean": value} for model, value in mean.items()]
        body += ["Mean over origins of the selection metric:", "", *markdown_table(rows), ""]
    if manifest.get("selection"):
        body += [f"Selection rule: {format_value(manifest['selection'])}.", ""]
    selected = manifest.get("selected_model")
    if isinstance(selected, Mapping):
        details = "; ".join(f"{k}: {format_value(v)}" for k, v in selected.items() if k != "name")
        body.append(
            f"**Selected model:** {format_value(selected.get('name'))}" + (f" ({details})" if details else "")
        )
    else:
        body.append(f"**Selected model:** {format_value(selected)}")
    return markdown_section("Training & validation", body)


def _backtest(manifest: Mapping[str, Any]) -> list[str]:
    backtest = manifest.get("backtest")
    if not isinstance(backtest, Mapping) or not backtest:
        return markdown_section("Backtest", ["_No backtest recorded._"])
    start, end = backtest.get("window_start"), backtest.get("window_end")
    window = f" ({start} to {end})" if start and end else ""
    body = [
        f"Metrics on the held-out backtest window{window}, which was not used for training or model "
        "selection. `days_earlier` is the mean number of days earlier an inspection with the predicted "
        "outcome would have happened had that window's inspections been reordered by score.",
        "",
        *markdown_table(
            [{"metric": key, "value": value} for key, value in backtest.items()], ["metric", "value"]
        ),
    ]
    return markdown_section("Backtest", body)


def _decay(manifest: Mapping[str, Any]) -> list[str]:
    decay = manifest.get("decay")
    if not isinstance(decay, Mapping) or not decay.get("rows"):
        return markdown_section("When outcomes stop flowing", ["_No decay curve recorded._"])
    body = [
        f"Held-out (out-of-sample): the last validation window ({decay.get('window_start')} to "
        f"{decay.get('window_end')}, {format_value(decay.get('n_inspections'))} inspections), scored by the "
        f"selected model fitted only on inspections before {decay.get('fitted_before')}. The first row "
        "is the refreshed world (every outcome before each inspection's date is known, as when outcomes "
        "are posted back daily); the others cut every outcome, complaint, crime and licence record at a "
        "date before the window, as when outcomes stop reaching the service. Days since the last "
        "inspection, weather and calendar stay at each inspection's own date. `weeks_since_last_outcome` "
        "is the range over the window. Post outcomes back (`POST /v1/inspections/{city}/outcomes`) to "
        "stay in the first row.",
        "",
        *markdown_table(
            list(decay["rows"]),
            ["history", "weeks_since_last_outcome", "auc", "days_earlier", "first_half_share_model",
             "precision_at_10"],
        ),  # fmt: skip
    ]
    return markdown_section("When outcomes stop flowing", body)


def _fairness(manifest: Mapping[str, Any]) -> list[str]:
    body: list[str] = []
    if "fairness" in manifest:
        rows = table_rows(manifest["fairness"], "group")
        body += ["Metrics by group of establishments (out-of-sample scores):", "", *markdown_table(rows), ""]
    body += ["Known limitations:", "", *[f"- {text}" for text in LIMITATIONS]]
    return markdown_section("Fairness & limitations", body)


def _plots() -> list[str]:
    body: list[str] = []
    for name, title in PLOT_FILES.items():
        body += [f"### {title}", "", f"![{title}]({name})", ""]
    return markdown_section("Plots", body[:-1])


def render_model_card(manifest: Mapping[str, Any]) -> str:
    """Render the Markdown model card for a bundle manifest; missing optional keys are tolerated."""
    name = manifest.get("name", "unnamed model")
    version = manifest.get("version")
    title = f"# Model card: {name}" + (f" (version {version})" if version else "")
    lines = [title, ""]
    sections = (
        _overview, _data, _features, _validation, _backtest, _decay, tier_lines, trust_lines, _fairness
    )
    for section in sections:
        lines += section(manifest)
    lines += _plots()
    lines += reproduce_lines(manifest)
    return "\n".join(lines).rstrip() + "\n"
