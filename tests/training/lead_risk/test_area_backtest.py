"""The area-level backtest: trains to Y on a cohort that knows real years <= Y only, and judges the
areas' mean scores against their real rates of the next three years, beside the baselines."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from training.lead.area_backtest import (
    METHODS,
    backtest_config,
    backtest_year,
    default_years,
    markdown_table,
    summary,
)
from training.lead.config import LeadConfig

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def row(lead_config: LeadConfig) -> dict:
    assert lead_config.synthetic is not None
    small = dataclasses.replace(
        lead_config, synthetic=dataclasses.replace(lead_config.synthetic, children_per_year=3000)
    )
    return backtest_year(small, 2013, lambda _message: None)


def test_the_cohort_ends_three_years_before_the_backtest_year(lead_config: LeadConfig) -> None:
    moved = backtest_config(lead_config, 2010)
    assert moved.synthetic is not None and moved.synthetic.birth_years == (2000, 2007)


def test_by_default_every_year_the_series_can_judge_is_backtested(lead_config: LeadConfig) -> None:
    # Chicago: rates 1996-2016, eight birth years. From 2004 every training cohort (births 1994-2001)
    # follows a real pattern (the year it turns two, 1996 on); to 2013, the last with three later years.
    assert default_years(lead_config) == list(range(2004, 2014))
    assert lead_config.synthetic is not None and lead_config.area_outcomes is not None
    shorter = dataclasses.replace(
        lead_config,
        synthetic=dataclasses.replace(lead_config.synthetic, birth_years=(2005, 2007)),
        area_outcomes=dataclasses.replace(lead_config.area_outcomes, years=(2000, 2012)),
    )
    assert default_years(shorter) == list(range(2003, 2010))


def test_a_row_compares_the_model_and_the_baselines_with_real_later_rates(row: dict) -> None:
    assert row["real_years"] == [2014, 2015, 2016] and row["areas"] == 77
    assert row["births"] == [2003, 2010] and row["addresses"] > 50_000
    for name in METHODS:
        method = row["methods"][name]
        for stat in ("spearman", "pearson"):
            low, high = method[f"{stat}_ci"]
            assert -1 <= low <= method[stat] <= high <= 1
    # The real series ranks areas far better than income alone does, and the model learnt it.
    assert row["methods"]["model"]["spearman"] > row["methods"]["median_income"]["spearman"] + 0.1
    assert row["model_beats_last_rate"]["spearman"] == (
        row["methods"]["model"]["spearman"] > row["methods"]["last_observed_rate"]["spearman"]
    )
    table = markdown_table([row])
    assert table[2].startswith("| 2013 | 2014–2016 (77 areas) |")
    difference = row["methods"]["model"]["spearman"] - row["methods"]["last_observed_rate"]["spearman"]
    low, high = row["methods"]["model"]["spearman_minus_last_rate_ci"]
    assert table[2].endswith(f" {difference:+.3f} [{low:+.2f}, {high:+.2f}] |")
    last_line = summary({"rows": [row], "model_beats_last_rate_every_year": True})
    assert last_line["spearman"]["2013"]["model"]
    assert last_line["model_beats_last_rate_in"] == {
        "years": 1,
        "spearman": int(row["model_beats_last_rate"]["spearman"]),
        "pearson": int(row["model_beats_last_rate"]["pearson"]),
    }


def test_evaluate_areas_is_for_lead_configs_only() -> None:
    city = REPO / "data" / "sample" / "chicago" / "city.toml"
    result = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", "evaluate-areas", "--city", str(city)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "civicrisk: error: evaluate-areas applies to lead configs" in result.stderr


def test_results_of_an_earlier_version_still_make_a_table(row: dict) -> None:
    # Files written before the smoothed rate was a baseline (a committed bundle's manifest) lack it.
    older = row | {"methods": {k: v for k, v in row["methods"].items() if k != "smoothed_last_rate"}}
    cells = markdown_table([older])[2].split(" | ")
    assert cells[METHODS.index("smoothed_last_rate") + 2] == "—"
