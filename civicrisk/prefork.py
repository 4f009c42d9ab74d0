"""`civicrisk serve --workers N` with N > 1: a gunicorn master loads what every worker reads (the
models, the lead engine, the cities' data: `app.main.preloaded_app`), then forks N uvicorn workers.

The workers share the master's pages copy-on-write instead of each loading its own copy
(bench/README.md, "Memory"). Everything that must be per process starts in each worker after the fork,
in the app's lifespan: the model set watcher, the database connections, the warm-up thread. A worker
that dies is replaced by a new fork of the master, which re-reads the model set generation on start.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker
from prometheus_client import multiprocess
from uvicorn_worker import UvicornWorker

from app.platform.settings import Settings


class ServiceWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker has no type hints
    """A uvicorn worker run as `civicrisk serve` runs uvicorn alone: no uvicorn access log (the app
    writes a structured one), no proxy-header middleware, uvicorn's messages in the JSON log."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "access_log": False, "proxy_headers": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # UvicornWorker points uvicorn's logger at gunicorn's handlers; back to the JSON one.
        error = logging.getLogger("uvicorn.error")
        error.handlers[:] = []
        error.propagate = True


class JsonLogger(Logger):  # type: ignore[misc]  # nor has gunicorn
    """gunicorn's messages (workers started, stopped, replaced) through the service's JSON handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers[:] = []
        self.error_log.propagate = True


def _child_exit(_server: Arbiter, worker: Worker) -> None:
    # The dead worker's gauges leave the group's "livemax" values; its counters stay counted.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class PreforkServer(BaseApplication):  # type: ignore[misc]
    """gunicorn configured from the service settings, serving the preloaded app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(prog="civicrisk serve")

    def load_config(self) -> None:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        options = {
            "bind": [f"{host}:{self.settings.port}"],
            "workers": self.settings.workers,
            "worker_class": ServiceWorker,
            "preload_app": True,  # load once in the master, fork the workers from it
            "keepalive": self.settings.keep_alive_seconds,  # as a single `civicrisk serve`
            "child_exit": _child_exit,
            "logger_class": JsonLogger,
            "loglevel": self.settings.log_level,
        }
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25.1+ opens a control socket (worker count, shutdown) under $HOME by default:
            # an interface nobody here uses, and a write outside the service's own folders (the pod's
            # root filesystem is read-only).
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from app.main import preloaded_app

        return preloaded_app()


def serve_prefork(settings: Settings) -> None:
    """Run the master until it is stopped: SIGTERM lets the workers finish their requests (up to
    gunicorn's graceful timeout, 30 s), SIGINT stops them at once."""
    PreforkServer(settings).run()
