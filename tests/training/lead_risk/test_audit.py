"""The fairness audit against a hand-worked example (Aequitas definitions, tau = 0.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.audit import failures, group_audit, parity, predicted_positive

# Twelve children, best score first. The top third (4 rows) are flagged.
#   score  label group   flagged
#   0.95   1     A       yes   A: TP
#   0.90   0     B       yes   B: FP
#   0.85   1     B       yes   B: TP
#   0.80   0     A       yes   A: FP
#   0.70   1     A             A: FN
#   0.60   0     A             A: TN
#   0.50   1     B             B: FN
#   0.40   0     B             B: TN
#   0.30   0     A             A: TN
#   0.20   0     A             A: TN
#   0.10   0     C             C: TN
#   0.05   0     C             C: TN
# A (n=6): TP 1, FP 1, FN 1, TN 3 -> TPR 1/2, FNR 1/2, FPR 1/4, precision 1/2, predicted prevalence 2/6
# B (n=4): TP 1, FP 1, FN 1, TN 1 -> TPR 1/2, FNR 1/2, FPR 1/2, precision 1/2, predicted prevalence 2/4
# C (n=2): TN 2                   -> TPR, FNR, precision undefined; FPR 0, predicted prevalence 0
# Reference A (largest): B's FPR disparity 2.0 and prevalence disparity 1.5 fail; C's FPR and
# prevalence disparities are 0 (fail); its undefined ones are neither pass nor fail.
SCORES = [0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20, 0.10, 0.05]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
GROUPS = ["A", "B", "B", "A", "A", "A", "B", "B", "A", "A", "C", "C"]


@pytest.fixture(scope="module")
def audit() -> dict:
    return group_audit(SCORES, LABELS, GROUPS, "group", top_share=1 / 3)


def _row(audit: dict, group: str) -> dict:
    return next(row for row in audit["groups"] if row["group"] == group)


def test_confusion_counts_and_rates_match_the_hand_worked_example(audit: dict) -> None:
    a, b, c = (_row(audit, g) for g in "ABC")
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (1, 1, 1, 3)
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (1, 1, 1, 1)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (0, 0, 0, 2)
    assert [a[m] for m in ("tpr", "fnr", "fpr", "precision")] == [0.5, 0.5, 0.25, 0.5]
    assert a["predicted_prevalence"] == pytest.approx(1 / 3)
    assert [b[m] for m in ("tpr", "fnr", "fpr", "precision", "predicted_prevalence")] == [0.5] * 5
    assert math.isnan(c["tpr"]) and math.isnan(c["precision"])
    assert (c["fpr"], c["predicted_prevalence"]) == (0.0, 0.0)
    assert audit["threshold_score"] == 0.80


def test_disparities_and_pass_fail_against_the_largest_group(audit: dict) -> None:
    assert audit["reference"] == "A"
    b, c = _row(audit, "B"), _row(audit, "C")
    assert b["tpr_disparity"] == 1.0 and b["tpr_pass"] is True
    assert b["fpr_disparity"] == 2.0 and b["fpr_pass"] is False
    assert b["predicted_prevalence_disparity"] == pytest.approx(1.5)
    assert b["predicted_prevalence_pass"] is False
    assert c["fpr_disparity"] == 0.0 and c["fpr_pass"] is False
    assert c["tpr_pass"] is None  # undefined, not a failure
    assert all(_row(audit, "A")[f"{m}_pass"] for m in ("tpr", "fnr", "fpr", "precision"))


def test_an_explicit_reference_group(audit: dict) -> None:
    by_b = group_audit(SCORES, LABELS, GROUPS, "group", top_share=1 / 3, reference="B")
    assert _row(by_b, "A")["fpr_disparity"] == 0.5
    with pytest.raises(ValueError, match="reference group"):
        group_audit(SCORES, LABELS, GROUPS, "group", top_share=1 / 3, reference="Z")


def test_largest_group_without_flags_is_not_the_default_reference() -> None:
    groups = [*GROUPS[:10], "D", "D"] + ["D"] * 8
    audit = group_audit([*SCORES, *[0.01] * 8], [*LABELS, *[0] * 8], groups, "group", top_share=0.2)
    assert audit["reference"] == "A"  # D is larger but has no flagged or positive child


def test_aequitas_parity_band() -> None:
    assert parity(0.8) and parity(1.25) and parity(1.0)
    assert not parity(0.79) and not parity(1.26)
    assert parity(float("nan")) is None


def test_ties_are_flagged_in_input_order() -> None:
    flagged = predicted_positive(np.array([0.5, 0.9, 0.5, 0.5]), 0.5)
    assert flagged.tolist() == [True, True, False, False]


def test_failures_lists_failed_tests_and_skips_small_groups(audit: dict) -> None:
    assert failures(audit) == []  # every group here is under 100 children
    big = {**audit, "groups": [{**row, "small_group": False} for row in audit["groups"]]}
    assert "B: fpr (2.00)" in failures(big)
