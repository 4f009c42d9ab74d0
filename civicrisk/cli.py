"""The `civicrisk` command: train, evaluate and score from a city config, run the main job, and
migrate the service's database (`civicrisk db upgrade`, `civicrisk db current`).

Exit codes: 0 success, 2 bad configuration, bad arguments, an untrusted bundle or an unreachable
database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from civicrisk import cli_db, cli_keys, cli_models
from civicrisk.bundle_match import check_bundle_matches
from civicrisk.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CITY = REPO_ROOT / "data" / "sample" / "chicago" / "city.toml"


def default_models_dir() -> Path:
    return Path(os.environ.get("CIVICRISK_MODELS_DIR", REPO_ROOT / "models"))


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="civicrisk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model bundle from a city config")
    train.add_argument("--city", required=True, type=Path, metavar="CONFIG", help="city config (TOML)")
    train.add_argument(
        "--until", type=_iso_date, metavar="YYYY-MM-DD", help="last inspection date to train on"
    )
    train.add_argument("--out", type=Path, metavar="DIR", help="models directory (default: ./models)")
    train.add_argument(
        "--outcomes-from",
        metavar="DATABASE_URL",
        help="also learn from inspection outcomes posted to the service (its CIVICRISK_DATABASE_URL)",
    )

    evaluate = commands.add_parser("evaluate", help="backtest a bundle on a window of the city's data")
    evaluate.add_argument("--city", required=True, type=Path, metavar="CONFIG")
    evaluate.add_argument("--model", required=True, type=Path, metavar="BUNDLE", help="bundle directory")
    evaluate.add_argument("--start", required=True, type=_iso_date, metavar="YYYY-MM-DD")
    evaluate.add_argument("--end", required=True, type=_iso_date, metavar="YYYY-MM-DD")
    evaluate.add_argument(
        "--history",
        choices=("refreshed", "frozen"),
        default="refreshed",
        help="data the features see: refreshed = everything before each inspection's date (default); "
        "frozen = cut at --history-until",
    )
    evaluate.add_argument(
        "--history-until",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="frozen history: nothing dated on or after this day is seen (default: --start)",
    )

    areas = commands.add_parser(
        "evaluate-areas",
        help="lead: backtest against real area outcomes (train to each year, rank areas, compare)",
    )
    areas.add_argument("--city", required=True, type=Path, metavar="CONFIG", help="lead config (TOML)")
    areas.add_argument(
        "--year",
        type=int,
        action="append",
        metavar="Y",
        help="train to Y; repeat (default: every year the area series can judge)",
    )
    areas.add_argument("--out", type=Path, metavar="JSON", help="also write the full results here")

    score = commands.add_parser("score", help="rank upcoming inspections with a bundle")
    score.add_argument("--city", required=True, type=Path, metavar="CONFIG")
    score.add_argument("--model", required=True, type=Path, metavar="BUNDLE")
    score.add_argument(
        "--input", required=True, type=Path, metavar="CSV", help="inspections in the city's schema"
    )
    score.add_argument("--output", required=True, type=Path, metavar="CSV")

    run = commands.add_parser(
        "run", help="main job: train on the sample data if no bundle exists, report, then serve"
    )
    run.add_argument("--city", type=Path, default=DEFAULT_CITY, metavar="CONFIG")
    run.add_argument("--models", type=Path, metavar="DIR", help="models directory (default: ./models)")
    run.add_argument("--no-serve", action="store_true", help="report on the bundle and exit (a quick check)")
    _serve_options(run)

    serve = commands.add_parser(
        "serve", help="serve the verified bundles under the models directory over HTTP"
    )
    serve.add_argument("--models", type=Path, metavar="DIR", help="models directory (default: ./models)")
    serve.add_argument(
        "--city",
        dest="cities",
        type=Path,
        action="append",
        metavar="CONFIG",
        help="a city config to serve (repeatable; default: CIVICRISK_CITIES, else DATA_DIR/*/city.toml)",
    )
    _serve_options(serve)
    cli_keys.add_parsers(commands)
    cli_models.add_parsers(commands)
    cli_db.add_parsers(commands)
    return parser


def _serve_options(parser: argparse.ArgumentParser) -> None:
    # Defaults come from the service settings (CIVICRISK_HOST, CIVICRISK_PORT, CIVICRISK_WORKERS).
    parser.add_argument("--host", metavar="H", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, metavar="P", help="port (default: 8000)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: 1)")


def _train(args: argparse.Namespace) -> int:
    from training.tasks import config_task, task_for

    out = args.out or default_models_dir()
    command = "civicrisk " + shlex.join(["train", "--city", str(args.city)] + _opt("--until", args.until))
    outcomes_from = getattr(args, "outcomes_from", None)
    if outcomes_from is None:
        bundle = task_for(args.city).train(args.city, args.until, out, command)
    elif config_task(args.city) != "inspections":
        raise UsageError("--outcomes-from applies to inspection models only")
    else:
        from training.tasks import train_inspections

        command += " --outcomes-from DATABASE_URL"  # the URL may hold a password: never in a manifest
        bundle = train_inspections(
            args.city, args.until, out, command, _recorded_outcomes(args.city, outcomes_from)
        )
    print(bundle)
    return 0


def _recorded_outcomes(config_path: Path, database_url: str) -> object:
    """Outcomes posted to the service for the config's city, in canonical columns."""
    import pandas as pd

    from app.platform.storage.repository import Repository
    from training.inspections.config import load_city_config

    city = load_city_config(config_path).city
    rows = Repository.open(database_url).outcomes(city)
    frame = pd.DataFrame(
        rows,
        columns=[
            "inspection_id",
            "establishment_id",
            "inspection_date",
            "inspection_type",
            "result",
            "violations",
        ],
    )
    return frame.rename(columns={"inspection_date": "date"})


def _opt(flag: str, value: object) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _evaluate(args: argparse.Namespace) -> int:
    from training.tasks import task_for

    if args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}")
    check_bundle_matches(args.city, args.model)
    if args.history_until is not None and args.history != "frozen":
        raise UsageError("--history-until needs --history frozen")
    if args.history_until is not None and args.history_until > args.start:
        raise UsageError(f"--history-until {args.history_until} is after --start {args.start}")
    if args.history == "frozen":
        from training.inspections.scoring import evaluate_bundle
        from training.tasks import config_task

        if config_task(args.city) != "inspections":
            raise UsageError("--history frozen applies to inspection models only")
        metrics = evaluate_bundle(args.city, args.model, args.start, args.end, "frozen", args.history_until)
    else:
        metrics = task_for(args.city).evaluate(args.city, args.model, args.start, args.end)
    print(json.dumps(_json_safe(metrics), sort_keys=True))
    return 0


def _evaluate_areas(args: argparse.Namespace) -> int:
    from training.lead.area_backtest import evaluate_areas, markdown_table, summary
    from training.tasks import config_task

    if config_task(args.city) != "lead":
        raise UsageError('evaluate-areas applies to lead configs (task = "lead") only')
    results = evaluate_areas(args.city, args.year)  # without --year: every year the series can judge
    years = [row["year"] for row in results["rows"]]
    command = "civicrisk " + shlex.join(
        ["evaluate-areas", "--city", str(args.city), *[f"--year={y}" for y in years]]
        + _opt("--out", args.out)
    )
    results |= {"command": command}
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("\n".join(markdown_table(results["rows"])))
    print(json.dumps(summary(results), sort_keys=True))
    return 0


def _score(args: argparse.Namespace) -> int:
    from training.tasks import task_for

    check_bundle_matches(args.city, args.model)
    report = task_for(args.city).score(args.city, args.model, args.input, args.output)
    for problem in report.problems:
        print(f"civicrisk: {args.input}: {problem}", file=sys.stderr)
    print(
        f"scored {report.scored} rows, skipped {len(report.problems)}; wrote {args.output}", file=sys.stderr
    )
    print(args.output)
    return 0


def _run(args: argparse.Namespace) -> int:
    from training.bundle import find_bundles, verify_bundle
    from training.inspections.config import load_city_config

    config = load_city_config(args.city)
    models = args.models or default_models_dir()
    mine = [path for path in find_bundles(models) if path.parent.name == config.model_name]
    if not mine:
        print(f"[civicrisk] no {config.model_name} bundle under {models}: training one", file=sys.stderr)
        _train(argparse.Namespace(city=args.city, until=None, out=models))
        mine = [path for path in find_bundles(models) if path.parent.name == config.model_name]
    bundle = mine[-1]
    manifest = verify_bundle(bundle)
    print(f"bundle {bundle} (verified)")
    print(f"selected model: {manifest['selected_model']['name']}")
    for name, value in sorted(manifest["validation"]["mean"].items()):
        print(f"  mean validation AUC {name:<24} {value:.4f}")
    if args.no_serve:
        return 0
    _serve_run_city(args.city)
    sys.stdout.flush()
    return _serve(args)


def _serve_run_city(config: Path) -> None:
    """`run --city` with a config outside the data dir: serve it beside the cities found there."""
    from app.platform.settings import Settings

    if os.environ.get("CIVICRISK_CITIES"):
        return  # the operator's list
    found = sorted(path.resolve() for path in Settings().data_dir.glob("*/city.toml"))
    if config.resolve() not in found:
        os.environ["CIVICRISK_CITIES"] = ",".join(str(path) for path in [*found, config.resolve()])


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from app.platform.settings import Settings

    overrides = {
        key: value
        for key, value in (
            ("models_dir", args.models),
            ("host", args.host),
            ("port", args.port),
            ("workers", args.workers),
        )
        if value is not None
    }
    if getattr(args, "cities", None):  # `serve --city`: read by every worker's settings, as the rest
        os.environ["CIVICRISK_CITIES"] = ",".join(str(path.resolve()) for path in args.cities)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise UsageError(f"invalid service settings: {error}") from None
    # Worker processes build their own app from the environment, so pass the overrides on there.
    os.environ["CIVICRISK_MODELS_DIR"] = str(settings.models_dir)
    created = _shared_metrics_directory() if settings.workers > 1 else None
    if settings.workers > 1:
        # Workers agree on their model set and on spent EHR tokens through the database
        # (CIVICRISK_SHARED_STATE), unless the operator said otherwise.
        os.environ.setdefault("CIVICRISK_SHARED_STATE", "true")
    print(
        f"[civicrisk] serving {settings.models_dir} on http://{settings.host}:{settings.port}",
        file=sys.stderr,
    )
    try:
        if settings.workers > 1:
            # Workers forked from a master that loaded everything once share it (civicrisk/prefork.py).
            from civicrisk.prefork import serve_prefork

            serve_prefork(settings)
        else:
            uvicorn.run(
                "app.main:app_factory",
                factory=True,
                host=settings.host,
                port=settings.port,
                log_config=None,  # app_factory installs the JSON log handler
                access_log=False,  # the app writes its own structured access log
                proxy_headers=False,
                timeout_keep_alive=settings.keep_alive_seconds,
            )
    finally:  # gunicorn's master ends with SystemExit
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return 0


def _shared_metrics_directory() -> Path | None:
    """Where the workers keep their metrics so any of them can report the group's (app.platform.metrics):
    the operator's PROMETHEUS_MULTIPROC_DIR, emptied (values of an earlier run must not be added in),
    else a new temporary directory, which it returns so the caller removes it at exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return None
    directory = Path(tempfile.mkdtemp(prefix="civicrisk-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def _json_safe(metrics: dict[str, object]) -> dict[str, object]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def main(argv: Sequence[str] | None = None) -> int:
    from training.bundle import BundleError
    from training.config import ConfigError

    args = _parser().parse_args(argv)
    from app.platform.keys_file import KeysFileError

    handlers = {"train": _train, "evaluate": _evaluate, "score": _score, "run": _run, "serve": _serve}
    handlers |= {"evaluate-areas": _evaluate_areas}
    handlers |= {"keys": cli_keys.run_keys, "verify": cli_keys.run_verify, "db": cli_db.run_db}
    handlers |= {"models": cli_models.run_models}
    try:
        return handlers[args.command](args)
    except (ConfigError, BundleError, UsageError, ValueError, KeysFileError) as error:
        # ValueError covers data that cannot serve the request (e.g. an empty evaluation window).
        if os.environ.get("CIVICRISK_DEBUG"):
            raise
        for line in str(error).splitlines():
            print(f"civicrisk: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
