"""Reordering simulation and ranking metrics on small hand-checked frames."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from training.evaluate import (
    calibration_table,
    evaluate_scores,
    precision_at_k_curve,
    simulate_reordering,
    top_k_count,
)


def make_frame(ids: list[str], dates: list[str], labels: list[int], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"inspection_id": ids, "date": pd.to_datetime(dates), "label": labels, "score": scores}
    )


def four_days() -> pd.DataFrame:
    """One inspection a day on 1-4 Jan; the two violations come last but score highest."""
    return make_frame(
        ["a", "b", "c", "d"],
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        [0, 0, 1, 1],
        [0.1, 0.2, 0.8, 0.9],
    )


def test_perfect_scores_move_violations_to_the_first_slots() -> None:
    result = simulate_reordering(four_days())

    simulated = dict(zip(result["inspection_id"], result["simulated_date"].dt.strftime("%m-%d"), strict=True))
    assert simulated == {"d": "01-01", "c": "01-02", "b": "01-03", "a": "01-04"}
    # d: 4 Jan -> 1 Jan is 3 days earlier; c: 3 Jan -> 2 Jan is 1 day earlier.
    assert result["days_earlier"].tolist() == [-3.0, -1.0, 1.0, 3.0]
    assert result["days_earlier"].dtype == "float64"


def test_reordering_keeps_row_order_index_and_inputs() -> None:
    frame = four_days().set_axis([10, 10, 7, 7])  # duplicated index must not misalign rows
    before = frame.copy()

    result = simulate_reordering(frame)

    assert result.index.tolist() == [10, 10, 7, 7]
    assert result["inspection_id"].tolist() == ["a", "b", "c", "d"]
    assert result.loc[7, "days_earlier"].tolist() == [1.0, 3.0]
    pd.testing.assert_frame_equal(frame, before)


def test_reordering_keeps_the_number_of_inspections_per_day() -> None:
    frame = make_frame(
        ["a", "b", "c", "d", "e"],
        ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-05", "2024-01-05"],
        [0, 1, 0, 1, 1],
        [0.3, 0.1, 0.5, 0.9, 0.7],
    )

    result = simulate_reordering(frame)

    assert result["simulated_date"].value_counts().sort_index().tolist() == [2, 1, 2]
    by_id = result.set_index("inspection_id")["simulated_date"].dt.day.to_dict()
    assert by_id == {"d": 1, "e": 1, "c": 2, "a": 5, "b": 5}


def test_tied_scores_keep_actual_date_order() -> None:
    frame = make_frame(
        ["a", "b", "c"], ["2024-01-03", "2024-01-01", "2024-01-02"], [1, 0, 1], [0.5, 0.5, 0.5]
    )

    result = simulate_reordering(frame)

    assert (result["simulated_date"] == result["date"]).all()
    assert (result["days_earlier"] == 0).all()


def test_tied_scores_on_the_same_day_break_by_inspection_id() -> None:
    # Slots are 1 Jan, 1 Jan, 2 Jan; z takes the first, then the tie x/y goes to the lower id.
    frame = make_frame(
        ["x2", "x1", "z"], ["2024-01-01", "2024-01-01", "2024-01-02"], [1, 0, 0], [0.5, 0.5, 0.9]
    )

    result = simulate_reordering(frame).set_index("inspection_id")

    assert result.loc["x1", "days_earlier"] == 0.0
    assert result.loc["x2", "days_earlier"] == -1.0
    assert result.loc["z", "days_earlier"] == 1.0


def test_evaluate_perfect_ranking_on_four_days() -> None:
    metrics = evaluate_scores(four_days())

    assert metrics["auc"] == 1.0
    assert metrics["days_earlier"] == 2.0  # mean of 3 and 1
    # Window 1-4 Jan, midpoint 2 Jan 12:00: the model finds both violations in the first half, BAU none.
    assert metrics["first_half_share_model"] == 1.0
    assert metrics["first_half_share_actual"] == 0.0
    assert metrics["n_inspections"] == 4
    assert metrics["n_positive"] == 2
    assert metrics["base_rate"] == 0.5
    assert metrics["window_start"] == "2024-01-01"
    assert metrics["window_end"] == "2024-01-04"


def test_first_half_uses_the_given_window_and_includes_the_midpoint() -> None:
    frame = make_frame(
        ["a", "b", "c", "d"],
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
        [0, 1, 1, 0],
        [0.4, 0.9, 0.8, 0.1],
    )

    # Window 1-5 Jan: the midpoint is exactly 3 Jan. Actually b (3 Jan) counts and c (4 Jan) does not;
    # reordered, b moves to 2 Jan and c to 3 Jan, on the midpoint, so both count.
    metrics = evaluate_scores(frame, start=date(2024, 1, 1), end=date(2024, 1, 5))

    assert metrics["first_half_share_actual"] == 0.5
    assert metrics["first_half_share_model"] == 1.0
    assert metrics["window_start"] == "2024-01-01"
    assert metrics["window_end"] == "2024-01-05"

    wide = evaluate_scores(frame, start=date(2024, 1, 1), end=date(2024, 1, 31))
    assert wide["first_half_share_actual"] == 1.0


def test_precision_and_recall_at_k_round_the_top_up() -> None:
    # 11 rows: top 10% is ceil(1.1) = 2 rows, top 20% is ceil(2.2) = 3 rows.
    labels = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    frame = make_frame(
        [f"i{n:02d}" for n in range(11)],
        [f"2024-02-{n + 1:02d}" for n in range(11)],
        labels,
        [1.0 - n / 20 for n in range(11)],
    )

    metrics = evaluate_scores(frame)

    assert metrics["precision_at_10"] == pytest.approx(1 / 2)
    assert metrics["recall_at_10"] == pytest.approx(1 / 3)
    assert metrics["precision_at_20"] == pytest.approx(2 / 3)
    assert metrics["recall_at_20"] == pytest.approx(2 / 3)


def test_top_k_ties_do_not_flatter_the_model() -> None:
    # All scores tie, so the top 10% (one row) is the earliest inspection, which has no violation.
    frame = make_frame(
        ["a", "b", "c", "d", "e"],
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
        [0, 1, 1, 1, 1],
        [0.5] * 5,
    )

    metrics = evaluate_scores(frame)

    assert metrics["precision_at_10"] == 0.0
    assert metrics["days_earlier"] == 0.0


def test_single_class_window_gives_nan_auc() -> None:
    frame = four_days().assign(label=0)

    metrics = evaluate_scores(frame)

    assert math.isnan(float(metrics["auc"]))
    assert math.isnan(float(metrics["days_earlier"]))
    assert metrics["precision_at_10"] == 0.0
    assert metrics["n_positive"] == 0


def test_empty_frame_and_missing_columns_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate_scores(four_days().iloc[0:0])
    with pytest.raises(ValueError, match="score"):
        evaluate_scores(four_days().drop(columns="score"))
    with pytest.raises(ValueError, match="label"):
        simulate_reordering(four_days().drop(columns="label"))


def test_rows_outside_the_given_window_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside the evaluation window"):
        evaluate_scores(four_days(), start=date(2024, 1, 2), end=date(2024, 1, 4))


def test_top_k_count_is_ceiling_without_float_noise() -> None:
    assert top_k_count(11, 10) == 2
    assert top_k_count(10, 10) == 1
    assert top_k_count(375, 8.8) == 33


def test_precision_at_k_curve_known_values() -> None:
    curve = precision_at_k_curve([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.3], [25, 50, 100])

    assert curve["n"].tolist() == [1, 2, 4]
    assert curve["precision"].tolist() == [1.0, 1.0, 0.5]
    assert curve["recall"].tolist() == [0.5, 1.0, 1.0]


def test_calibration_table_merges_duplicate_score_bins() -> None:
    labels = [0, 0, 0, 1, 1, 1, 1, 0]
    scores = [0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]

    table = calibration_table(labels, scores, bins=10)

    assert table["count"].tolist() == [4, 4]
    assert table["mean_predicted"].tolist() == pytest.approx([0.1, 0.9])
    assert table["observed_rate"].tolist() == pytest.approx([0.25, 0.75])


def test_calibration_table_uses_quantile_bins() -> None:
    scores = [n / 10 for n in range(10)]
    labels = [0, 0, 0, 0, 0, 1, 0, 1, 1, 1]

    table = calibration_table(labels, scores, bins=2)

    assert table["count"].tolist() == [5, 5]
    assert table["observed_rate"].tolist() == pytest.approx([0.0, 0.8])
