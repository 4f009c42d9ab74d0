"""The trust assessment: which inputs a score is not trusted without, measured on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.inspections.models import model_grid
from training.inspections.train import Examples
from training.inspections.trust import (
    AUC_DROP_LIMIT,
    assess_missing_features,
    family_of,
    trust_lines,
)
from training.split import Origin


def _examples(rng: np.random.Generator, n: int) -> Examples:
    """Two history features that decide the label (the second empty in half the rows), a
    neighbourhood feature that is noise, and a category."""
    signal, second = rng.normal(size=n), rng.normal(size=n)
    labels = (signal + second + rng.normal(scale=0.5, size=n) > 1.0).astype("int64")
    mostly_empty = np.where(rng.random(n) < 0.5, np.nan, second)
    features = pd.DataFrame(
        {
            "past_critical_inspections": signal,
            "days_since_last": mostly_empty,
            "nearby_inspections_365d_2km": rng.normal(size=n),
            "facility_type": rng.choice(["Restaurant", "School"], size=n).astype(object),
        }
    )
    rows = pd.DataFrame({"inspection_id": [str(i) for i in range(n)], "date": pd.Timestamp("2014-01-01")})
    return Examples(rows, features, labels)


def test_a_family_that_carries_the_signal_is_required_and_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    train, valid = _examples(rng, 3000), _examples(rng, 1500)
    candidate = next(c for c in model_grid(train.features, ["facility_type"]) if c.name == "logistic_C0.1")
    origin = Origin(pd.Timestamp("2014-01-01"), pd.Timestamp("2014-02-28"))
    trust = assess_missing_features(candidate, train, valid, origin)
    assert family_of("past_critical_inspections") == "history"
    families = {row["family"]: row for row in trust["families"]}
    assert families["history"]["required"] and families["history"]["auc_drop"] > 0.2
    assert not families["neighbourhood"]["required"]
    assert abs(families["neighbourhood"]["auc_drop"]) < AUC_DROP_LIMIT
    assert set(trust["required_families"]) == {"history"}
    features = {row["feature"]: row for row in trust["features"]}
    assert features["past_critical_inspections"]["required"]
    # As costly alone, but empty in half the rows: never demanded on its own.
    often_empty = features["days_since_last"]
    assert often_empty["auc_drop"] >= AUC_DROP_LIMIT and often_empty["empty_share"] > 0.4
    assert not often_empty["required"]
    assert trust["required_features"] == ["past_critical_inspections"]
    card = "\n".join(trust_lines({"trust": trust}))
    assert "## Missing inputs" in card and "families history" in card
