"""`civicrisk train` and `civicrisk score` on the Chicago lead config, as a user runs them."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from training.bundle import verify_bundle

CLI = [sys.executable, "-m", "civicrisk.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, lead_config_path: Path) -> Path:
    out = tmp_path_factory.mktemp("models")
    result = run("train", "--city", str(lead_config_path), "--out", str(out))
    bundle = Path(result.stdout.strip().splitlines()[-1])
    assert bundle.parent.parent == out
    assert "cohort 2/2" in result.stderr  # progress is shown
    return bundle


def test_train_writes_a_verified_lead_bundle(trained: Path) -> None:
    manifest = verify_bundle(trained)
    assert manifest["task"] == "lead_risk" and manifest["synthetic"] is True
    assert "not real-world accuracy" in manifest["synthetic_statement"]
    assert {"housing_risk_index", "random_forest"} <= set(manifest["validation"]["metrics"])
    assert manifest["validation"]["baselines"] == ["housing_risk_index"]
    for row in manifest["validation"]["metrics"][manifest["selected_model"]["name"]]:
        assert {"auc", "precision_at_1", "precision_at_5", "recall_at_10"} <= set(row)
    assert set(manifest["tiers"]["cut_points"]) == {"high", "medium"}
    names = [entry["name"] for entry in manifest["feature_schema"]]
    assert "age_days" in names and not any("race" in name for name in names)
    audits = {audit["attribute"]: audit for audit in manifest["fairness"]["audits"]}
    assert set(audits) == {"race_ethnicity", "community_area"}
    assert all("tpr_pass" in row for row in audits["race_ethnicity"]["groups"])
    card = (trained / "model_card.md").read_text()
    assert card.startswith("# Model card") and "SYNTHETIC" in card and "not real-world accuracy" in card
    assert "### By race_ethnicity" in card and "### By community_area" in card
    assert sum(path.stat().st_size for path in trained.iterdir()) < 5_000_000


ROWS = [
    # child_id, date_of_birth, latitude, longitude, address, as_of
    ("loop", "2013-03-01", "41.8781", "-87.6298", "", "2014-06-01"),
    ("hyde-park", "2013-09-15", "41.7943", "-87.5907", "", "2014-06-01"),
    ("by-address", "2013-05-05", "", "", "4853 South Wood Street, Apt 2", "2014-06-01"),
    ("no-such-address", "2013-05-05", "", "", "1 Nowhere Lane", "2014-06-01"),
    ("new-york", "2013-05-05", "40.7128", "-74.0060", "", "2014-06-01"),
    ("future-birth", "2015-01-01", "41.8781", "-87.6298", "", "2014-06-01"),
    ("bad-date", "2013-02-30", "41.8781", "-87.6298", "", "2014-06-01"),
    ("little-village", "2014-01-10", "41.8470", "-87.7050", "", "2014-06-01"),
]


def test_score_ranks_good_rows_and_gives_bad_rows_a_status(
    trained: Path, lead_config_path: Path, tmp_path: Path
) -> None:
    input_csv, output_csv = tmp_path / "children.csv", tmp_path / "ranked.csv"
    with input_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["child_id", "date_of_birth", "latitude", "longitude", "address", "as_of"])
        writer.writerows(ROWS)
    result = run(
        "score", "--city", str(lead_config_path), "--model", str(trained),
        "--input", str(input_csv), "--output", str(output_csv),
    )  # fmt: skip
    assert "line 5: address not found" in result.stderr
    assert "line 6: outside service area" in result.stderr
    assert "line 7: 'date_of_birth' '2015-01-01' is after the scoring date" in result.stderr
    assert "line 8: bad 'date_of_birth' '2013-02-30' (expected %Y-%m-%d)" in result.stderr
    assert "Traceback" not in result.stderr
    with output_csv.open() as handle:
        rows = {row["child_id"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == ["child_id", "score", "rank", "tier", "status"]
    scored = [row for row in rows.values() if row["status"] == "ok"]
    assert {row["child_id"] for row in scored} == {"loop", "hyde-park", "by-address", "little-village"}
    assert sorted(int(row["rank"]) for row in scored) == [1, 2, 3, 4]
    assert all(0 < float(row["score"]) < 1 and row["tier"] in {"high", "medium", "low"} for row in scored)
    assert rows["new-york"]["status"] == "outside service area" and rows["new-york"]["score"] == ""
    assert rows["no-such-address"]["status"] == "address not found"
