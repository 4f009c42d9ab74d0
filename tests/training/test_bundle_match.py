"""`civicrisk score` and `civicrisk evaluate` refuse a bundle trained for another city or task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from civicrisk.bundle_match import check_bundle_matches
from civicrisk.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
CHICAGO = ROOT / "data" / "sample" / "chicago" / "city.toml"
BOSTON = ROOT / "data" / "sample" / "boston" / "city.toml"
CHICAGO_LEAD = ROOT / "data" / "sample" / "chicago" / "lead.toml"


def _bundle(name: str) -> Path:
    found = sorted((ROOT / "models" / name).glob("*/manifest.json"))
    assert found, f"no committed {name} bundle"
    return found[-1].parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "civicrisk.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_matching_bundles_pass() -> None:
    check_bundle_matches(CHICAGO, _bundle("chicago-food-inspections"))
    check_bundle_matches(BOSTON, _bundle("boston-food-inspections"))
    check_bundle_matches(CHICAGO_LEAD, _bundle("chicago-lead-risk"))


@pytest.mark.parametrize(
    ("config", "bundle", "named"),
    [
        (CHICAGO, "boston-food-inspections", ("'boston'", "'chicago'")),
        (CHICAGO, "chicago-lead-risk", ("'lead_risk'", "'inspection_risk'")),
        (CHICAGO_LEAD, "chicago-food-inspections", ("'inspection_risk'", "'lead_risk'")),
    ],
)
def test_a_bundle_for_another_city_or_task_is_refused(
    config: Path, bundle: str, named: tuple[str, str]
) -> None:
    with pytest.raises(UsageError) as refused:
        check_bundle_matches(config, _bundle(bundle))
    message = str(refused.value)
    assert "\n" not in message
    for word in named:
        assert word in message


def test_score_refuses_the_boston_bundle_with_the_chicago_config(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("Inspection ID,License #\n1,2\n")
    result = _cli(
        "score",
        "--city", str(CHICAGO),
        "--model", str(_bundle("boston-food-inspections")),
        "--input", str(rows),
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'boston'" in lines[0] and "'chicago'" in lines[0], result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_refuses_the_lead_bundle_with_the_chicago_config() -> None:
    result = _cli(
        "evaluate",
        "--city", str(CHICAGO),
        "--model", str(_bundle("chicago-lead-risk")),
        "--start", "2014-06-01",
        "--end", "2014-06-30",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'lead_risk'" in lines[0] and "Traceback" not in result.stderr, result.stderr
