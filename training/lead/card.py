"""Model card (Markdown) and plots (PNG) for a lead-risk bundle, from its manifest.

Table formatting and the importance plot are the inspection card's (training/card.py), so both cards
read alike; the wording, the synthetic-data statement and the fairness audit are lead-specific.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from training.audit import METRICS, failures
from training.card import (
    bullet_lines,
    format_value,
    importance_plot,
    markdown_section,
    markdown_table,
    plot_figure,
    png_bytes,
    reproduce_lines,
    tier_lines,
    validation_rows,
)
from training.evaluate import calibration_table, precision_at_k_curve

PLOT_FILES = {
    "precision_at_k.png": "Precision in the top k% of children (validation cohorts)",
    "calibration.png": "Calibration (validation cohorts)",
    "feature_importance.png": "Feature importance (permutation, drop in AUC)",
}
VALIDATION_COLUMNS = (
    "model", "cohort", "auc", "precision_at_1", "precision_at_5", "precision_at_10",
    "recall_at_1", "recall_at_5", "recall_at_10", "brier", "n_children", "base_rate",
)  # fmt: skip
AUDIT_COLUMNS = ("group", "n", "positives", "predicted_positive", *METRICS)
LIMITATIONS = (
    "A label exists only for children who were tested; who gets tested (and when) differs between "
    "neighbourhoods, so the model learns from that selection as well as from exposure.",
    "Place features describe the tract and community area, not the home; demographics are ACS 2015-19 "
    "snapshots and housing age ACS 2010-14, which postdate some births.",
    "Housing age, poverty and renting are unevenly distributed across race and ethnicity in Chicago, so "
    "the flagged group differs by race and area even though no race variable is a feature; read the audit.",
    "A score is not a diagnosis: only a blood test shows a child's lead level.",
)


def lead_plots(labels: np.ndarray, scores: np.ndarray, importance: Mapping[str, float]) -> dict[str, bytes]:
    """Precision-at-k curve, reliability diagram and feature importance, keyed by file name."""
    curve = precision_at_k_curve(labels, scores, list(range(1, 101)))
    base_rate = float(np.mean(labels))
    plots: dict[str, bytes] = {}
    with plot_figure() as (figure, axes):
        axes.plot(curve["k"], curve["precision"], label="model")
        axes.axhline(base_rate, color="grey", linestyle="--", label=f"base rate ({base_rate:.3f})")
        axes.set_xlabel("top k% of children by score")
        axes.set_ylabel("precision (share with a test >= 5 ug/dL)")
        axes.set_xlim(0, 100)
        axes.legend(loc="upper right")
        plots["precision_at_k.png"] = png_bytes(figure)
    table = calibration_table(labels, scores)
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max()) * 1.1)
    with plot_figure((5.0, 5.0)) as (figure, axes):
        axes.plot([0, top], [0, top], color="grey", linestyle="--", label="perfectly calibrated")
        axes.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
        axes.set_xlabel("mean predicted probability (score decile)")
        axes.set_ylabel("observed rate of tests >= 5 ug/dL")
        axes.set_xlim(0, top)
        axes.set_ylim(0, top)
        axes.legend(loc="upper left")
        plots["calibration.png"] = png_bytes(figure)
    plots["feature_importance.png"] = importance_plot(importance)
    return plots


def _synthetic(manifest: Mapping[str, Any]) -> list[str]:
    if not manifest.get("synthetic"):
        return []
    return [f"> **Synthetic outcomes.** {manifest.get('synthetic_statement')}", ""]


def _overview(manifest: Mapping[str, Any]) -> list[str]:
    label = manifest.get("label") or {}
    return markdown_section(
        "Overview",
        [
            f"- **City:** {manifest.get('city_display_name') or manifest.get('city')}",
            f"- **Predicts:** {label.get('description', 'not recorded')}",
            "- **Intended use:** helping hospitals and clinics decide which young children to test for lead, "
            "educate and refer first.",
            "- **Not for:** diagnosis, housing enforcement against families, insurance or benefit decisions, "
            "or any punitive use. A low score is no reason to skip a test a clinician or the law calls for.",
            "- **Race/ethnicity is never a feature**; it is used only by the fairness audit below.",
        ],
    )


def _data(manifest: Mapping[str, Any]) -> list[str]:
    data = manifest.get("data") or {}
    births = data.get("births") or [None, None]
    body = [
        f"- **Blood-test records:** {format_value(data.get('outcome_source'))}, "
        f"{format_value(data.get('n_tests'))} tests dated {format_value(data.get('start'))} to "
        f"{format_value(data.get('end'))}",
        f"- **Children (examples):** {format_value(data.get('n_examples'))}, "
        f"born {format_value(births[0])} to {format_value(births[1])}, "
        f"outcomes complete by {format_value(data.get('trained_until'))}",
        f"- **Base rate (label = 1):** {format_value(data.get('base_rate'))}",
        f"- **Reference files content hash (sha256):** `{data.get('content_hash') or 'not recorded'}`",
    ]
    if data.get("synthetic_cohort_sha256"):
        body.append(f"- **Synthetic cohort hash (sha256):** `{data['synthetic_cohort_sha256']}`")
    left_out = {k: v for k, v in (data.get("left_out_rows") or {}).items() if v}
    if left_out:
        body.append(f"- **Test rows left out:** {format_value(left_out)}")
    body += ["- **Files:**", *["  " + line for line in bullet_lines(data.get("files"))]]
    return markdown_section("Data", body)


def _features(manifest: Mapping[str, Any]) -> list[str]:
    rows = [
        {"name": f"`{f.get('name')}`", "description": f.get("description")}
        for f in manifest.get("feature_schema") or []
    ]
    body = [
        f"{len(rows)} numeric features (missing values allowed), in the order the model expects them.",
        "",
    ]
    return markdown_section("Features", body + markdown_table(rows))


def _validation(manifest: Mapping[str, Any]) -> list[str]:
    validation = manifest.get("validation") or {}
    rows = validation_rows(validation.get("metrics") or {})
    present = {key for row in rows for key in row}
    body = [
        "Temporal validation by birth cohort: each model is trained only on children whose outcome window "
        "(to age 3) closed before the validation cohort's first birth, then scores that cohort. "
        "`housing_risk_index` is the baseline: the WA DOH housing-age index alone.",
        "",
        *markdown_table(rows, [c for c in VALIDATION_COLUMNS if c in present]),
        "",
        "Mean validation AUC:",
        "",
        *markdown_table([{"model": m, "mean auc": v} for m, v in (validation.get("mean") or {}).items()]),
        "",
        f"Selection rule: {format_value(manifest.get('selection'))}. "
        f"**Selected model:** {format_value((manifest.get('selected_model') or {}).get('name'))}.",
        "",
        "Calibration of the selected model's validation scores (score deciles):",
        "",
        *markdown_table(
            validation.get("calibration") or [], ["bin", "count", "mean_predicted", "observed_rate"]
        ),
    ]
    return markdown_section("Training & validation", body)


def _audit_table(audit: Mapping[str, Any]) -> list[str]:
    rows = []
    for group in audit.get("groups", []):
        row = {column: group.get(column) for column in AUDIT_COLUMNS}
        for metric in METRICS:
            verdict = group.get(f"{metric}_pass")
            mark = "—" if verdict is None else ("pass" if verdict else "FAIL")
            row[f"{metric} disp."] = f"{format_value(group.get(f'{metric}_disparity'))} {mark}"
        row["group"] = f"{group['group']}{' (small)' if group.get('small_group') else ''}"
        rows.append(row)
    return markdown_table(rows)


def _fairness(manifest: Mapping[str, Any]) -> list[str]:
    fairness = manifest.get("fairness") or {}
    share, tau = fairness.get("top_share", 0.05), fairness.get("tau", 0.8)
    body = [
        f"Flagged group: the top {share:.0%} of {format_value(fairness.get('scores'))}. "
        "Per group: TPR, FNR, FPR, "
        f"precision and predicted prevalence (share flagged); disparity = group / reference group; pass when "
        f"{tau} <= disparity <= {1 / tau:.2f} (Aequitas, tau = {tau}). "
        f"{format_value(fairness.get('method'))}. "
        "Groups under 100 children are marked small; their rates are noisy.",
        "",
    ]
    if fairness.get("synthetic_groups"):
        body += [
            "The race/ethnicity attribute is synthetic too: drawn from each community area's population "
            "shares (CMAP), with no effect on the outcome beyond the place. The audit shows how a model "
            "built on place features spreads its flags across groups; it is not a finding about real "
            "children.",
            "",
        ]
    for audit in fairness.get("audits", []):
        failed = failures(audit)
        body += [
            f"### By {audit['attribute']} (reference group: {audit['reference']})",
            "",
            *_audit_table(audit),
            "",
            f"Failed parity tests (groups of 100 or more): {len(failed)}"
            + (f" — {'; '.join(failed[:40])}{' …' if len(failed) > 40 else ''}" if failed else ""),
            "",
        ]
    body += ["Known limitations:", "", *[f"- {text}" for text in LIMITATIONS]]
    return markdown_section("Fairness audit & limitations", body)


def _area_outcomes(manifest: Mapping[str, Any]) -> list[str]:
    section = manifest.get("area_outcomes")
    if not section:
        return []
    years = section.get("years") or [None, None]
    body = [
        f"Real outcomes by area: `{section.get('file')}` ({section.get('area_level')}, "
        f"{years[0]}–{years[1]}; a year's rates count as known {section.get('publication_lag_years')} "
        "year(s) later). Features read only years published before the scoring date, relative to the "
        "city's rate of the same year and shrunk by empirical Bayes towards what each area's census "
        "profile predicts (a series by tract: towards the city's rate); the series counts children classed "
        "as poisoned under the agency's threshold of the time, not this model's label, so it sets relative "
        "levels only and the label's base rate stays the configured one. The rate's standard error "
        "sets how far it is shrunk but is not a model input (its scale grows as the city's rate falls).",
    ]
    if section.get("imputed"):
        body += ["", f"Imputed in the series: {format_value(section['imputed'])}."]
    fit = section.get("cohort_fit") or []
    if fit:
        body += [
            "",
            "How the synthetic cohort follows the real series (individuals synthetic, area pattern real): "
            "per birth year, the real year whose relative area pattern it was fitted to (the real "
            "rates of that year and the known years either side, pooled), the rank correlation of the "
            "simulated area prevalence (expected, and realised in this one cohort) with the real "
            "published rates of that year, and the median relative error of the simulated relative "
            "prevalence against the pooled real relative rate it was fitted to.",
            "",
            *markdown_table(fit),
        ]
    backtest = section.get("backtest")
    if backtest:
        from training.lead.area_backtest import markdown_table as backtest_table

        verdict = "yes" if backtest.get("model_beats_last_rate_every_year") else "no"
        body += [
            "",
            "Area-level backtest against real outcomes (models trained the same way on data up to Y, a "
            "6-month-old scored at every known address on 1 January Y+1, mean score per community area "
            "against the area's real mean rate in Y+1..Y+3; 95% bootstrap intervals over areas), from "
            f"`{backtest.get('file')}` (sha256 `{str(backtest.get('sha256'))[:16]}…`), made by "
            f"`{backtest.get('command')}`:",
            "",
            *backtest_table(backtest.get("rows") or []),
            "",
            f"Model's Spearman above the last observed rate's in every year: **{verdict}**"
            f"{_tally(backtest)}.",
        ]
    return markdown_section("Real area outcomes", body)


def _tally(backtest: dict[str, Any]) -> str:
    """E.g. " (Spearman in 5 of 10 years, Pearson in 4)": in how many backtest years the model's
    correlation was above the last observed rate's."""
    rows = backtest.get("rows") or []
    if not rows:
        return ""
    from training.lead.area_backtest import wins

    tally = wins(rows)
    return f" (Spearman in {tally['spearman']} of {tally['years']} years, Pearson in {tally['pearson']})"


def _plots() -> list[str]:
    body: list[str] = []
    for name, title in PLOT_FILES.items():
        body += [f"### {title}", "", f"![{title}]({name})", ""]
    return markdown_section("Plots", body[:-1])


def render_lead_card(manifest: Mapping[str, Any]) -> str:
    """The Markdown model card of a lead-risk bundle."""
    version = manifest.get("version")
    lines = [
        f"# Model card: {manifest.get('name', 'lead model')}" + (f" (version {version})" if version else ""),
        "",
    ]
    lines += _synthetic(manifest)
    for section in (_overview, _data, _features, _area_outcomes, _validation, tier_lines, _fairness):
        lines += section(manifest)
    lines += _plots()
    lines += reproduce_lines(manifest)
    return "\n".join(lines).rstrip() + "\n"
