"""Frozen history: features see nothing dated on or after the cut, while date-relative features stay at
each inspection's own date; an evaluation window counts the rows its repeated ids set aside."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.inspections.config import load_city_config
from training.inspections.features import anchored_queries, build_features
from training.inspections.history_view import history_as_of
from training.inspections.ingest import CityData, load_city
from training.inspections.scoring import repeated_ids_in, window_examples
from training.inspections.train import build_examples

BOSTON = Path(__file__).resolve().parents[2] / "data" / "sample" / "boston" / "city.toml"
CUT = pd.Timestamp("2014-07-01")
WINDOW = (date(2014, 7, 1), date(2014, 7, 31))


def test_history_as_of_cuts_every_history_source_but_not_the_weather(chicago_data: CityData) -> None:
    frozen = history_as_of(chicago_data, CUT)
    assert frozen.inspections["date"].max() < CUT <= chicago_data.inspections["date"].max()
    assert frozen.licenses is not None and chicago_data.licenses is not None
    assert frozen.licenses["term_start"].max() < CUT <= chicago_data.licenses["term_start"].max()
    cut_day = (CUT - pd.Timestamp("1970-01-01")).days
    for before, after in zip(chicago_data.events, frozen.events, strict=True):
        assert len(after.day) < len(before.day) and after.day.max() < cut_day
        assert len(after.xyz) == len(after.day)
    assert frozen.weather is chicago_data.weather


def test_frozen_features_ignore_everything_after_the_cut(chicago_data: CityData) -> None:
    window = window_examples(chicago_data, *WINDOW, history="frozen")
    # Rewrite every outcome dated on or after the cut: the frozen features must not move.
    later = chicago_data.inspections["date"] >= CUT
    flipped = chicago_data.inspections.copy()
    flipped.loc[later, "label"] = 1 - flipped.loc[later, "label"]
    flipped.loc[later, "n_critical"] += 3
    rebuilt = build_features(
        window.rows, history_as_of(CityData(**{**vars(chicago_data), "inspections": flipped}), CUT)
    )
    pd.testing.assert_frame_equal(window.features, rebuilt)
    # The refreshed features of the same rows do see them (the test can fail).
    refreshed = window_examples(chicago_data, *WINDOW).features
    assert not refreshed["nearest5_7d_critical_share"].equals(window.features["nearest5_7d_critical_share"])


def test_date_relative_features_stay_at_each_inspections_date(chicago_data: CityData) -> None:
    frozen = window_examples(chicago_data, *WINDOW, history="frozen").features
    refreshed = window_examples(chicago_data, *WINDOW).features
    for column in ("month", "day_of_week", "temperature_max_mean_3d"):
        pd.testing.assert_series_equal(frozen[column], refreshed[column])
    # Days since the last inspection count to the inspection's date, from the last one before the cut.
    known = frozen["days_since_last"].notna()
    rows = window_examples(chicago_data, *WINDOW).rows
    to_cut = (rows["date"] - CUT).dt.days.to_numpy()
    assert (frozen["days_since_last"][known].to_numpy() > to_cut[known.to_numpy()]).all()
    assert (frozen["days_since_last"][known] >= refreshed["days_since_last"][known]).all()
    assert (frozen["days_since_last"][known] > refreshed["days_since_last"][known]).any()


def test_history_until_must_not_follow_the_window_start(chicago_data: CityData) -> None:
    with pytest.raises(ValueError, match="after the window's first day"):
        window_examples(chicago_data, *WINDOW, history="frozen", history_until=date(2014, 7, 2))
    with pytest.raises(ValueError, match="frozen history only"):
        window_examples(chicago_data, *WINDOW, history_until=date(2014, 6, 1))
    earlier = window_examples(chicago_data, *WINDOW, history="frozen", history_until=date(2014, 5, 1))
    assert np.nanmin(earlier.features["days_since_last"]) >= 61  # 2014-05-01 .. 2014-07-01


def test_repeated_ids_in_a_window_are_counted(tmp_path: Path) -> None:
    rows = pd.read_csv(BOSTON.parent / "inspections.csv.gz", dtype=str).head(400)
    # Exact repeats (a repeat naming another establishment, date or result is a config error, #24).
    rows = pd.concat([rows, rows.loc[[31, 41]]], ignore_index=True)
    config = tmp_path / "city.toml"
    config.write_text(BOSTON.read_text(), encoding="utf-8")
    rows.to_csv(tmp_path / "inspections.csv.gz", index=False)
    data = load_city(load_city_config(config))
    repeated = data.repeated_id_dates
    assert len(repeated) == 2
    first, last = repeated.min().date(), repeated.max().date()
    assert repeated_ids_in(data, first, last) == 2
    assert repeated_ids_in(data, last + pd.Timedelta(days=1), last + pd.Timedelta(days=30)) == 0


def test_evaluate_reports_the_world_it_measured(tmp_path: Path) -> None:
    """The CLI's last line gains `history`, `history_until` and `repeated_ids`; bad combinations exit 2."""
    city = tmp_path / "boston"
    shutil.copytree(BOSTON.parent, city)
    bundle = next((BOSTON.parents[3] / "models" / "boston-food-inspections").iterdir())
    base = [sys.executable, "-m", "civicrisk.cli", "evaluate", "--city", str(city / "city.toml")]
    base += ["--model", str(bundle), "--start", "2013-11-01", "--end", "2013-12-31"]

    def last_line(*extra: str) -> dict[str, object]:
        import json

        result = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=600, check=True)
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    refreshed = last_line()
    frozen = last_line("--history", "frozen", "--history-until", "2013-10-01")
    assert refreshed["history"] == "refreshed" and refreshed["history_until"] is None
    assert frozen["history"] == "frozen" and frozen["history_until"] == "2013-10-01"
    assert refreshed["repeated_ids"] == frozen["repeated_ids"] == 0
    assert set(refreshed) == set(frozen)
    assert frozen["n_inspections"] == refreshed["n_inspections"]
    assert frozen["auc"] != refreshed["auc"]
    for bad, message in (
        (["--history-until", "2013-10-01"], "--history-until needs --history frozen"),
        (["--history", "frozen", "--history-until", "2013-11-02"], "is after --start"),
    ):
        result = subprocess.run([*base, *bad], capture_output=True, text=True, timeout=600)
        assert result.returncode == 2 and message in result.stderr


def test_recent_windows_end_at_the_newest_data_held(chicago_data: CityData) -> None:
    """With stale data, the neighbourhood's "last 7 days" are the last 7 days the data holds, while the
    establishment's own history and the calendar stay at the query's date; with fresh data nothing moves."""
    frozen = history_as_of(chicago_data, CUT)
    held_until = frozen.inspections["date"].max() + pd.Timedelta(days=1)
    rows = window_examples(chicago_data, *WINDOW).rows.head(300)
    stale = build_features(rows, frozen)
    at_held = build_features(rows.assign(date=held_until), frozen)
    for column in ("nearest5_7d_critical_share", "nearby_inspections_90d_1km", "area_critical_share_14d"):
        pd.testing.assert_series_equal(stale[column], at_held[column])
    assert stale["nearest5_7d_critical_share"].notna().mean() > 0.9  # NaN only where no coordinates
    assert not stale["month"].equals(at_held["month"]) or not stale["days_since_last"].equals(
        at_held["days_since_last"]
    )
    fresh_rows = build_examples(chicago_data, pd.Timestamp("2014-06-02"), pd.Timestamp("2014-06-02")).rows
    assert anchored_queries(fresh_rows, chicago_data) is fresh_rows
