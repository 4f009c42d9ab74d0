"""The `civicrisk` command as other tools call it: train, evaluate, score, errors, --help."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from training.bundle import verify_bundle

CLI = [sys.executable, "-m", "civicrisk.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, chicago_config_path: Path) -> Path:
    out = tmp_path_factory.mktemp("models")
    result = run("train", "--city", str(chicago_config_path), "--until", "2014-05-31", "--out", str(out))
    bundle = Path(result.stdout.strip().splitlines()[-1])
    assert bundle.parent.parent == out
    assert "origin 3/3" in result.stderr  # progress is shown
    return bundle


def test_train_writes_a_verified_bundle_without_inspector(trained: Path) -> None:
    manifest = verify_bundle(trained)
    assert manifest["data"]["trained_until"] == "2014-05-31"
    names = {entry["name"] for entry in manifest["feature_schema"]}
    assert not any("inspector" in name or "sanitarian" in name for name in names)
    assert {"previous_critical_rule", "chicago_logistic"} <= set(manifest["validation"]["metrics"])
    assert set(manifest["tiers"]["cut_points"]) == {"high", "medium"}
    assert (trained / "model_card.md").read_text().startswith("# Model card")
    # The decay curve: held out (the last validation window), refreshed then cut 0..26 weeks before it.
    decay = manifest["decay"]
    assert (
        decay["fitted_before"]
        == decay["window_start"]
        == manifest["validation"]["origins"][-1]["valid_start"]
    )
    assert [row["history"].split()[0] for row in decay["rows"]] == ["refreshed"] + ["frozen"] * 6
    assert decay["rows"][0]["auc"] > decay["rows"][-1]["auc"]  # half a year without outcomes costs accuracy
    assert "## When outcomes stop flowing" in (trained / "model_card.md").read_text()
    for plot in ("precision_at_k.png", "days_earlier_hist.png", "calibration.png", "feature_importance.png"):
        assert (trained / plot).read_bytes().startswith(b"\x89PNG")


def test_evaluate_prints_metrics_as_last_line(trained: Path, chicago_config_path: Path) -> None:
    result = run(
        "evaluate",
        "--city",
        str(chicago_config_path),
        "--model",
        str(trained),
        "--start",
        "2014-06-01",
        "--end",
        "2014-08-31",
    )
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "auc",
        "days_earlier",
        "first_half_share_model",
        "first_half_share_actual",
        "precision_at_10",
    ):
        assert isinstance(metrics[key], float)
    assert metrics["out_of_sample"] is True
    assert metrics["n_inspections"] > 2000
    # A trained model must rank better than chance on data it has never seen.
    assert metrics["auc"] > 0.6
    assert metrics["first_half_share_model"] > metrics["first_half_share_actual"]


def test_score_ranks_good_rows_and_reports_bad_ones(
    trained: Path, chicago_config_path: Path, tmp_path: Path
) -> None:
    source = chicago_config_path.parent / "food_inspections.csv.gz"
    upcoming = pd.read_csv(source, dtype=str, nrows=30).drop(columns=["Results", "Violations"])
    upcoming.loc[3, "Inspection Date"] = "31/31/2014"
    upcoming.loc[7, "License #"] = None
    input_csv, output_csv = tmp_path / "upcoming.csv", tmp_path / "ranked.csv"
    upcoming.to_csv(input_csv, index=False)

    result = run(
        "score",
        "--city",
        str(chicago_config_path),
        "--model",
        str(trained),
        "--input",
        str(input_csv),
        "--output",
        str(output_csv),
    )
    assert "line 5: bad 'Inspection Date' '31/31/2014'" in result.stderr
    assert "line 9: missing 'License #'" in result.stderr
    with output_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["Inspection ID", "score", "rank"]
    assert len(rows) == 28
    assert [int(row["rank"]) for row in rows] == list(range(1, 29))
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score < 1 for score in scores)
    bad_ids = {upcoming.loc[3, "Inspection ID"], upcoming.loc[7, "Inspection ID"]}
    assert not bad_ids & {row["Inspection ID"] for row in rows}


def test_tampered_bundle_is_refused(trained: Path, chicago_config_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(trained, copy)
    data = bytearray((copy / "model.joblib").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.joblib").write_bytes(bytes(data))
    result = run(
        "evaluate",
        "--city",
        str(chicago_config_path),
        "--model",
        str(copy),
        "--start",
        "2014-06-01",
        "--end",
        "2014-08-31",
        check=False,
    )
    assert result.returncode == 2
    assert "model.joblib" in result.stderr and "sha256 mismatch" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_error_exits_2_with_one_message(tmp_path: Path, chicago_config_path: Path) -> None:
    for source in chicago_config_path.parent.iterdir():
        if source.suffix != ".toml":
            (tmp_path / source.name).symlink_to(source)
    config = tmp_path / "city.toml"
    config.write_text(chicago_config_path.read_text().replace('file = "weather_daily.csv"', 'file = "x.csv"'))
    result = run("train", "--city", str(config), check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and "weather.file" in lines[0]


def test_every_config_problem_is_reported_at_once(tmp_path: Path, chicago_config_path: Path) -> None:
    for source in chicago_config_path.parent.iterdir():
        if source.suffix != ".toml":
            (tmp_path / source.name).symlink_to(source)
    config = tmp_path / "city.toml"
    text = chicago_config_path.read_text()
    text = text.replace("[roster]", "[roster]\ninspected_within_dayz = 30")  # a typo'd key
    text = text.replace(
        'latitude = "Latitude"\nlongitude = "Longitude"\nfacility',
        'latitude = "Lat"\nlongitude = "Longitude"\nfacility',
    )
    text = text.replace("window_days = 3\n", 'window_days = "three"\n')
    config.write_text(text)
    result = run("train", "--city", str(config), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("civicrisk: error: ") for line in lines)
    assert any(
        "roster.inspected_within_dayz: unknown key; did you mean 'roster.inspected_within_days'" in line
        for line in lines
    )
    assert any(
        "inspections.columns.latitude: column 'Lat' is not in food_inspections.csv.gz" in line
        for line in lines
    )
    assert any("weather.window_days: expected integer" in line for line in lines)
    assert len(lines) == 3


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["score"], ["run"]])
def test_help_on_every_command(command: list[str]) -> None:
    result = run(*command, "--help")
    assert "usage: civicrisk" in result.stdout


def test_bad_date_argument_is_a_usage_error(chicago_config_path: Path) -> None:
    result = run("train", "--city", str(chicago_config_path), "--until", "2014-13-01", check=False)
    assert result.returncode == 2
    assert "not a date in YYYY-MM-DD form" in result.stderr
