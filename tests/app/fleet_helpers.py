"""A fleet on one machine for tests/app/test_fleet.py (imported as `fleet_helpers`): replicas of
`civicrisk serve --workers N` as real processes, HAProxy in front of them, and each worker's request
counts read from its replica's metrics directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from app_helpers import REPO_ROOT, counter_values

# The developer's explicit opt-out; without it a fleet that cannot be built fails the run (CI must
# run this test, not skip it). tests/conftest.py keeps this one CIVICRISK_* variable in the environment.
OPT_OUT = "CIVICRISK_FLEET_TEST"
REPLICA_HEADER = "X-Fleet-Replica"  # set by HAProxy, not the service: which replica answered


def require(problem: str | None) -> None:
    """Fail on a missing prerequisite, unless the developer opted out (then skip, saying why)."""
    if problem is None:
        return
    if os.environ.get(OPT_OUT) == "skip":
        pytest.skip(f"{problem} ({OPT_OUT}=skip)")
    pytest.fail(
        f"{problem}. ./scripts/test installs HAProxy and starts the local PostgreSQL where it can "
        f"(as root with apt-get); elsewhere set {OPT_OUT}=skip to skip the fleet test knowingly.",
        pytrace=False,
    )


def haproxy_problem() -> str | None:
    return None if shutil.which("haproxy") else "HAProxy is not installed (the fleet's load balancer)"


@dataclass
class Process:
    """A process this test started, its log, and how to stop it with everything it started."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: the workers too
                self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start(name: str, command: list[str], env: dict[str, str], log: Path) -> Process:
    # Output goes to a file: an unread pipe fills with log lines and stalls the process.
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


@dataclass
class Replica:
    process: Process
    url: str
    metrics_dir: Path


def start_replica(name: str, base: Path, port: int, models: Path, env: dict[str, str]) -> Replica:
    metrics_dir = base / f"metrics-{name}"
    command = [
        *(sys.executable, "-m", "civicrisk.cli", "serve", "--models", str(models)),
        *("--port", str(port), "--workers", "2"),
    ]
    # Each replica its own metrics and keys file, as each pod of a fleet has (docs/deploy.md).
    env = env | {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CIVICRISK_KEYS_FILE": str(base / f"partner-keys-{name}.json"),
    }
    process = start(f"replica {name}", command, env, base / f"replica-{name}.log")
    return Replica(process, f"http://127.0.0.1:{port}", metrics_dir)


def wait_until_ready(replicas: list[Replica], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    waiting = list(replicas)
    while waiting:
        waiting = [replica for replica in waiting if not _ready(replica.url)]
        for replica in waiting:
            if replica.process.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{replica.process.name} did not start:\n{replica.process.output()}")
        time.sleep(0.2)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def haproxy_config(port: int, backends: dict[str, int]) -> str:
    """Round robin over the replicas, each checked on /health/ready twice a second. One connection to
    a replica per request (no reuse), so each replica's kernel hands requests to all its workers."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{backend} check inter 500ms fall 2 rise 1"
        for name, backend in backends.items()
    )
    return f"""\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option http-server-close
    http-reuse never

frontend fleet
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    http-response set-header {REPLICA_HEADER} %[srv_name]
{servers}
"""


def start_haproxy(base: Path, port: int, backends: dict[str, int]) -> Process:
    config = base / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends))
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, f"HAProxy refused its configuration:\n{check.stdout}{check.stderr}"
    return start("haproxy", ["haproxy", "-db", "-f", str(config)], dict(os.environ), base / "haproxy.log")


def wait_for_balancer(balancer: Process, url: str, replicas: int, seconds: float) -> None:
    """Until requests through the balancer have been answered by every replica."""
    deadline = time.monotonic() + seconds
    seen: set[str] = set()
    while len(seen) < replicas:
        if balancer.popen.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the balancer reached {sorted(seen)} only:\n{balancer.output()}")
        try:
            answer = httpx.get(f"{url}/health/live", timeout=1)
            if answer.status_code == 200:
                seen.add(answer.headers[REPLICA_HEADER])
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def requests_by_worker(metrics_dir: Path, route: str, method: str) -> dict[str, float]:
    """Per worker (pid), its civicrisk_requests_total for `route` and `method`, every status: read
    from the worker's own file (prometheus_client names them by metric kind and pid)."""
    counts: dict[str, float] = {}
    labels = (f'"route": "{route}"', f'"method": "{method}"')
    for pid, key, value in counter_values(metrics_dir):
        if "civicrisk_requests_total" in key and all(label in key for label in labels):
            counts[pid] = counts.get(pid, 0.0) + value
    return counts
