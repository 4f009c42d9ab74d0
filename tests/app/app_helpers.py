"""Constants and helpers shared by the service tests (imported as `app_helpers`)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from app.platform.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
MODEL_NAME = "chicago-food-inspections"
# The committed Chicago inspection bundle, whatever its version (the newest if there are several).
BUNDLE = sorted(path.parent for path in (MODELS_DIR / MODEL_NAME).glob("*/manifest.json"))[-1]
PARTNER_KEY = "test-partner-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
PARTNER = {"X-API-Key": PARTNER_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SCORE_URL = f"/v1/models/{MODEL_NAME}/score"


def isolated_state() -> dict[str, Any]:
    """The running test's own partner keys file and database (tests/conftest.py sets them up for every
    test), never the checkout's var/: keys or lists a person made there would change the answers."""
    try:
        return {
            "keys_file": Path(os.environ["CIVICRISK_KEYS_FILE"]),
            "database_url": os.environ["CIVICRISK_DATABASE_URL"],
        }
    except KeyError as missing:
        raise RuntimeError(f"{missing} unset: is tests/conftest.py (the isolation) loaded?") from None


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "models_dir": MODELS_DIR,
        "api_keys": (PARTNER_KEY,),
        "admin_key": ADMIN_KEY,
        "access_log": True,
        # Tomorrow's lists computed ahead at start-up would load Chicago in every app a test builds;
        # tests of that ask for it (tests/app/test_daily_once.py).
        "daily_precompute": False,
        **isolated_state(),
    }
    settings = Settings(**(values | overrides))
    for name, value in settings.model_dump().items():
        if str(REPO_ROOT / "var") in str(value):
            raise RuntimeError(f"test settings must not use the checkout's var/: {name}={value}")
    return settings


def copy_bundle(models_dir: Path, version: str | None = None, created_at: str | None = None) -> Path:
    """Copy the committed bundle into `models_dir`, optionally as another version.

    manifest.json is not among the hashed files, so editing its version keeps the bundle valid.
    """
    target = models_dir / MODEL_NAME / (version or BUNDLE.name)
    shutil.copytree(BUNDLE, target)
    if version is not None or created_at is not None:
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["version"] = version or manifest["version"]
        manifest["created_at"] = created_at or manifest["created_at"]
        (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def records_of_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as JSON records, as a partner sends them: missing values (NaN, NA) as None."""
    return [
        {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def write_legacy_keys_file(path: Path, *holders: tuple[str, list[str], str | None]) -> list[tuple[str, str]]:
    """A keys file as releases up to 0.2.0 wrote it (`civicrisk keys create`), one entry per (partner,
    scopes, revoked time or None); returns each key's (id, key)."""
    entries, made = [], []
    for partner, scopes, revoked in holders:
        key_id = secrets.token_hex(6)
        key = f"ck_{key_id}_{secrets.token_urlsafe(32)}"
        digest = hashlib.sha256(key.encode()).hexdigest()
        entries.append({
            "id": key_id, "partner": partner, "scopes": scopes, "sha256": digest,
            "created": "2026-11-01T09:00:00+00:00", "revoked": revoked,
        })  # fmt: skip
        made.append((key_id, key))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keys": entries}, indent=2) + "\n")
    return made


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(app: Any, ready_within: float = 120) -> Iterator[str]:
    """`app` under a real uvicorn (in a thread) on a free loopback port, ready; its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while not answers(f"{base}/health/ready"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not become ready within {ready_within:.0f} s")
        time.sleep(0.2)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_process(
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    health: str = "/health/ready",
    ready_within: float = 120,
) -> Iterator[str]:
    """`civicrisk serve ARGS` as its own process (workers and all, as deployed) on a free loopback
    port, once `health` answers; its base URL. Its output goes to `log_path`, quoted if it fails to
    start; it is stopped afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "civicrisk.cli", "serve", *args, "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + ready_within
            while not answers(f"{base}{health}"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def idle_connection_kept(url: str, idle_seconds: float) -> bool:
    """Whether a client's connection left idle for `idle_seconds` is still open for its next request
    (the client's pool keeps it far longer; a server that closed it meanwhile forces a new one)."""

    def client_port(response: httpx.Response) -> int:
        port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        return port

    with httpx.Client(limits=httpx.Limits(keepalive_expiry=idle_seconds * 10)) as client:
        first = client_port(client.get(f"{url}/health/live"))
        time.sleep(idle_seconds)
        return client_port(client.get(f"{url}/health/live")) == first


def counter_values(metrics_dir: Path) -> Iterator[tuple[str, str, float]]:
    """(pid, sample key, value) of every counter in a multiprocess metrics folder, from each process's
    own file (prometheus_client names them by metric kind and pid)."""
    from prometheus_client.mmap_dict import MmapedDict

    for path in metrics_dir.glob("counter_*.db"):
        if path.stat().st_size < 8:
            # A process is creating it (prometheus_client sizes the file just after opening it): no
            # counts in it yet, and reading it now would fail on the missing header.
            continue
        pid = path.stem.rsplit("_", 1)[1]
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):  # type: ignore[no-untyped-call]
            yield pid, key, value
