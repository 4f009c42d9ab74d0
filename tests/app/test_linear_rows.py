"""The compiled record loops (app/services/_linear_rows.pyx) give the Python code's bits."""

from __future__ import annotations

import random
import shlex
import shutil
import sysconfig

import numpy as np
import pytest
from app_helpers import BUNDLE, python_loops

from app.scoring.bodies.records import FeatureLayout, RecordBatch, RecordRows
from app.scoring.explain import Tiers, explain, largest
from app.scoring.linear import CompiledLinear
from app.scoring.scorers import build_scorer
from app.services import accelerated
from training.bundle import load_bundle


def _compiler() -> str | None:
    command = sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(command)[0])


def test_the_loops_are_built_where_a_compiler_is() -> None:
    """`pip install` builds them when it finds a C compiler; a missing build there would leave the
    service quietly on the slower Python loops."""
    if _compiler() is None:
        pytest.skip("no C compiler on this machine: the Python loops serve (the build is optional)")
    assert accelerated.compiled is not None, "a C compiler is here but _linear_rows was not built"


@pytest.fixture(scope="module")
def scorer() -> CompiledLinear:
    if accelerated.compiled is None:
        pytest.skip("the compiled loops are not built here")
    bundle = load_bundle(BUNDLE)
    built = build_scorer(bundle.estimator, FeatureLayout.from_schema(bundle.feature_schema), None)
    assert isinstance(built, CompiledLinear)
    return built


def _values(rng: random.Random, count: int) -> tuple[float | int | None, ...]:
    choices = (None, float("nan"), 0.0, -0.0, 3, -7, 1e300, -1e-300, True)
    return tuple(
        rng.choice(choices) if rng.random() < 0.3 else rng.uniform(-50.0, 50.0) for _ in range(count)
    )


def test_contributions_are_the_python_loops_bits(scorer: CompiledLinear) -> None:
    layout = scorer.layout
    rng = random.Random(7)
    known = [sorted(table) for table in scorer.category_coef]
    numeric = [_values(rng, len(layout.numeric)) for _ in range(300)]
    categorical = tuple(
        [rng.choice([*values, "never seen in training", ""]) for _ in numeric] for values in known
    )
    for row, values in enumerate(numeric):
        compiled = scorer._row_tables.contributions(values, categorical, row)
        python = scorer._row_contributions(values, categorical, row)
        assert [float.hex(v) for v in compiled] == [float.hex(v) for v in python], row
    rows = RecordRows(numeric=numeric, categorical=categorical)
    compiled_rows = scorer.score_rows(rows)
    with python_loops():
        assert compiled_rows == scorer.score_rows(rows)


def test_bad_records_fail_as_in_python(scorer: CompiledLinear) -> None:
    layout = scorer.layout
    too_large = (10**400, *([0.0] * (len(layout.numeric) - 1)))
    categorical = tuple([value] for value in ("x",) * len(layout.categorical))
    with pytest.raises(OverflowError):
        scorer._row_tables.contributions(too_large, categorical, 0)
    with pytest.raises(OverflowError):
        scorer._row_contributions(too_large, categorical, 0)
    with pytest.raises(ValueError, match="features"):
        scorer._row_tables.contributions((1.0,), categorical, 0)
    with pytest.raises(IndexError):  # a category column shorter than the records: raised, not read past
        scorer._row_tables.contributions((0.0,) * len(layout.numeric), categorical, 1)


def test_largest_is_sorteds_order() -> None:
    if accelerated.compiled is None:
        pytest.skip("the compiled loops are not built here")
    rng = random.Random(3)
    pool = (0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-300, float("inf"))
    for _ in range(5000):
        length = rng.randint(0, 12)
        row = [rng.choice(pool) if rng.random() < 0.5 else rng.uniform(-3, 3) for _ in range(length)]
        top = rng.randint(0, 5)
        expected = _sorted_largest(row, top)
        assert accelerated.compiled.largest(row, top) == expected, (row, top)
        assert largest(row, top) == expected
    # A NaN (or anything not a float) is left to sorted(), whose order with NaN it keeps.
    assert accelerated.compiled.largest([1.0, float("nan")], 1) is None
    assert accelerated.compiled.largest([1.0, 2], 1) is None
    nan_row = [0.5, float("nan"), -2.0, 1.0]
    assert largest(nan_row, 2) == _sorted_largest(nan_row, 2)


def _sorted_largest(row: list[float], top: int) -> list[int]:
    return sorted(range(len(row)), key=[abs(v) for v in row].__getitem__, reverse=True)[:top]


def test_batch_answers_are_the_python_assemblys(scorer: CompiledLinear) -> None:
    """explain() over a batch: the compiled assembly (answers) against the Python one (_results),
    on rows with missing values, signed zeros, unseen categories and shared reasons."""
    layout = scorer.layout
    rng = random.Random(11)
    known = [sorted(table) for table in scorer.category_coef]
    count = 400
    numeric = np.array(
        [
            [float(v) if v is not None else np.nan for v in _values(rng, len(layout.numeric))]
            for _ in range(count)
        ]
    )
    numeric[:50] = numeric[0]  # the same row many times: its reasons are shared
    numeric[50:60] = -0.0
    categorical = tuple([rng.choice([*values, "never seen"]) for _ in range(count)] for values in known)
    batch = RecordBatch(numeric=numeric, categorical=categorical)
    tiers, descriptions = Tiers(high=0.3, medium=0.15), tuple(f"the {name}" for name in layout.names)
    scored = scorer.score(batch)
    compiled = explain(scored, batch, layout, descriptions, tiers)
    with python_loops():
        assert compiled == explain(scored, batch, layout, descriptions, tiers)
    assert compiled[0]["reasons"][0] is compiled[1]["reasons"][0]  # built once, shared
