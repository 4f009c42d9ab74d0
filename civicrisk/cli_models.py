"""`civicrisk models reload`: every worker and replica sharing the database reloads its models."""

from __future__ import annotations

import argparse

from civicrisk.errors import UsageError


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="the model set the service's workers and replicas serve")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    actions.add_parser(
        "reload",
        help="a new model set generation in the service's database (CIVICRISK_DATABASE_URL): every "
        "worker and replica re-verifies and reloads the models directory within seconds",
    )


def run_models(args: argparse.Namespace) -> int:
    from app.platform.settings import Settings
    from app.platform.storage.repository import DatabaseUnavailable, Repository

    try:
        generation = Repository.open(Settings().database_url).bump_model_generation()
    except DatabaseUnavailable as error:
        raise UsageError(str(error)) from None
    print(f"model set generation {generation}: every worker reloads at its next check (about a second)")
    return 0
