"""Model card Markdown and evaluation plots."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from training.evaluate import simulate_reordering
from training.inspections.card import PLOT_FILES, render_model_card, render_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def minimal_manifest() -> dict[str, Any]:
    return {
        "name": "restaurant_risk",
        "version": "2024-06-01",
        "city": "Chicago",
        "label": {"description": "at least one critical violation found at the inspection"},
        "data": {
            "start": "2019-01-01",
            "end": "2024-05-31",
            "content_hash": "ab" * 32,
            "sources": ["inspections.csv", "licenses.csv"],
        },
        "feature_schema": [
            {"name": "prior_critical", "type": "int", "description": "critical violations before"},
            {
                "name": "facility_type",
                "type": "category",
                "description": "restaurant | grocery",
                "allowed_values": ["restaurant", "grocery"],
            },
        ],
        "command": "civicrisk train --city chicago",
    }


def test_card_has_every_section_and_plot_link() -> None:
    card = render_model_card(minimal_manifest())

    assert card.startswith("# Model card: restaurant_risk (version 2024-06-01)\n")
    for heading in [
        "Overview",
        "Data",
        "Features",
        "Training & validation",
        "Backtest",
        "Tier cut-points",
        "Fairness & limitations",
        "Plots",
        "Reproduce",
    ]:
        assert f"\n## {heading}\n" in card
    for file_name in PLOT_FILES:
        assert f"]({file_name})" in card
    assert "Chicago" in card
    assert "at least one critical violation found at the inspection" in card
    assert "not for" in card.lower() and "punitive" in card
    assert "2019-01-01 to 2024-05-31" in card
    assert "ab" * 32 in card
    assert "- inspections.csv" in card
    assert "No inspector identity is used" in card
    assert "inspector thoroughness" in card
    assert "```sh\ncivicrisk train --city chicago\n```" in card


def test_feature_table_rows_survive_pipes_in_descriptions() -> None:
    card = render_model_card(minimal_manifest())

    row = next(line for line in card.splitlines() if "`facility_type`" in line)
    assert row == "| `facility_type` | category | restaurant \\| grocery | restaurant, grocery |"


def test_card_tolerates_a_manifest_with_only_a_name() -> None:
    card = render_model_card({"name": "bare"})

    assert card.startswith("# Model card: bare\n")
    assert "_No backtest recorded._" in card
    assert "_No command recorded._" in card
    assert "\n## Plots\n" in card


def test_card_renders_validation_backtest_tiers_and_fairness() -> None:
    manifest = {
        **minimal_manifest(),
        "validation": {
            "origins": ["2023-01-01", "2023-07-01"],
            "metrics": {
                "logistic": {"2023-01-01": {"auc": 0.71234}, "2023-07-01": {"auc": 0.7}},
                "forest": {"2023-01-01": {"auc": 0.69}, "2023-07-01": {"auc": float("nan")}},
            },
        },
        "selected_model": {"name": "logistic", "reason": "best mean auc"},
        "backtest": {
            "auc": 0.7,
            "days_earlier": 7.25,
            "window_start": "2024-01-01",
            "window_end": "2024-05-31",
        },
        "tiers": {"high": 0.4, "medium": 0.0123},
        "fairness": {"north": {"precision_at_10": 0.5}, "south": {"precision_at_10": 0.45}},
    }

    card = render_model_card(manifest)

    assert "| model | origin | auc |" in card
    assert "| logistic | 2023-01-01 | 0.7123 |" in card
    assert "| forest | 2023-07-01 | n/a |" in card
    assert "**Selected model:** logistic (reason: best mean auc)" in card
    assert "held-out backtest window (2024-01-01 to 2024-05-31)" in card
    assert "| days_earlier | 7.25 |" in card
    assert "| high | 0.4 |" in card
    assert "| medium | 0.0123 |" in card
    assert "| south | 0.45 |" in card


def evaluation_frame(n: int = 60) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "inspection_id": [f"i{k:03d}" for k in range(n)],
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta([k // 3 for k in range(n)], unit="D"),
            "label": [1 if k % 4 == 0 else 0 for k in range(n)],
            "score": [((k * 37) % n) / n for k in range(n)],
        }
    )
    return simulate_reordering(frame)


def test_plots_are_small_pngs_and_figures_are_closed() -> None:
    importance = {f"feature_{k}": (-1) ** k * k / 10 for k in range(25)}

    plots = render_plots(evaluation_frame(), importance)

    assert sorted(plots) == sorted(PLOT_FILES)
    for name, content in plots.items():
        assert content.startswith(PNG_SIGNATURE), name
        assert 1_000 < len(content) < 100_000, name
    assert plt.get_fignums() == []


def test_plots_render_for_a_window_without_violations() -> None:
    plots = render_plots(evaluation_frame().assign(label=0), {})

    assert all(content.startswith(PNG_SIGNATURE) for content in plots.values())


def test_plots_reject_a_frame_that_was_not_simulated() -> None:
    with pytest.raises(ValueError, match="simulated_date"):
        render_plots(evaluation_frame().drop(columns="simulated_date"), {})


def test_card_renders_the_manifest_shape_written_by_training() -> None:
    origin = {"valid_start": "2024-01-01", "valid_end": "2024-02-29"}
    manifest = {
        **minimal_manifest(),
        "city": "chicago",
        "city_display_name": "Chicago, IL",
        "data": {
            "start": "2019-01-01",
            "end": "2024-02-29",
            "trained_until": "2024-02-29",
            "files": ["a.csv"],
        },
        "validation": {
            "origins": [origin],
            "metrics": {"hgb": [{**origin, "auc": 0.75, "window_start": "2024-01-01", "n_positive": 9}]},
            "mean": {"hgb": 0.75},
        },
        "selected_model": {"name": "hgb", "params": {"max_depth": 3}},
        "tiers": {"cut_points": {"high": 0.41, "medium": 0.22}, "rule": "high: top 10%"},
        "fairness": [{"group": "risk_category", "value": "Risk 1", "n": 120, "label_rate": 0.3}],
    }

    card = render_model_card(manifest)

    assert "- **City:** Chicago, IL" in card
    assert "- **Trained on inspections up to:** 2024-02-29" in card
    assert "  - a.csv" in card
    assert "| valid_start | valid_end |\n|---|---|\n| 2024-01-01 | 2024-02-29 |" in card
    # Validation table keeps the readable columns and leaves out the bookkeeping ones.
    header = "| model | valid_start | valid_end | auc |\n|---|---|---|---|\n"
    assert header + "| hgb | 2024-01-01 | 2024-02-29 | 0.75 |" in card
    assert "**Selected model:** hgb (params: max_depth: 3)" in card
    assert "| high | 0.41 |" in card and "Rule: high: top 10%" in card
    assert "| risk_category | Risk 1 | 120 | 0.3 |" in card


def test_card_shows_the_decay_curve_or_says_there_is_none() -> None:
    assert "_No decay curve recorded._" in render_model_card({"name": "bare"})
    decay = {
        "window_start": "2014-07-01",
        "window_end": "2014-08-29",
        "fitted_before": "2014-07-01",
        "n_inspections": 1675,
        "rows": [
            {
                "history": "refreshed",
                "weeks_since_last_outcome": "under 1",
                "auc": 0.71,
                "days_earlier": 10.5,
            },
            {"history": "frozen 2014-05-06", "weeks_since_last_outcome": "8 to 16", "auc": 0.64},
        ],
    }
    card = render_model_card({"name": "m", "decay": decay})
    assert "## When outcomes stop flowing" in card
    assert "Held-out (out-of-sample): the last validation window (2014-07-01 to 2014-08-29" in card
    assert "| refreshed | under 1 | 0.71 | 10.5 |" in card
    assert "| frozen 2014-05-06 | 8 to 16 | 0.64 | — |" in card
