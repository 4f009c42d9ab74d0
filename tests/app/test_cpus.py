"""The CPUs a worker may use: its affinity, capped by a container's CPU quota (cgroup v2 or v1), which
decides whether daily lists are ranked in a second process by default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.platform.cpus import cgroup_cpu_quota, usable_cpus


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cfs(root: Path, controller: str, quota: str, period: str) -> None:
    """cgroup v1's CFS quota and period files under `controller`."""
    _write(root / controller / "cpu.cfs_quota_us", quota + "\n")
    _write(root / controller / "cpu.cfs_period_us", period + "\n")


def _proc(tmp_path: Path, v2_path: str | None) -> Path:
    lines = ["4:memory:/some/where", "1:cpu:/"] + ([f"0::{v2_path}"] if v2_path is not None else [])
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("\n".join(lines) + "\n")
    return proc


def test_no_quota_anywhere_is_none(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "cpu.max", "max 100000\n")
    _cfs(root, "cpu", "-1", "100000")
    assert cgroup_cpu_quota(root, _proc(tmp_path, "/")) is None
    assert usable_cpus(root, _proc(tmp_path, "/")) == len(os.sched_getaffinity(0))


def test_a_cgroup_v2_quota_caps_and_the_tightest_of_the_parents_wins(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "kubepods" / "cpu.max", "300000 100000\n")  # 3 CPUs for the pod's parent
    _write(root / "kubepods" / "pod1" / "cpu.max", "max 100000\n")
    _write(root / "kubepods" / "pod1" / "app" / "cpu.max", "150000 100000\n")  # the container: 1.5
    proc = _proc(tmp_path, "/kubepods/pod1/app")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    assert usable_cpus(root, proc) == pytest.approx(min(1.5, len(os.sched_getaffinity(0))))
    _write(root / "kubepods" / "cpu.max", "50000 100000\n")  # a parent tighter than the container
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)


def test_a_container_sees_its_own_cgroup_as_the_root(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "cpu.max", "100000 100000\n")  # docker run --cpus=1, cgroup namespace
    assert cgroup_cpu_quota(root, _proc(tmp_path, "/")) == pytest.approx(1.0)
    assert usable_cpus(root, _proc(tmp_path, "/")) <= 1.0


@pytest.mark.parametrize("controller", ["cpu", "cpu,cpuacct"])
def test_a_cgroup_v1_cfs_quota_caps(tmp_path: Path, controller: str) -> None:
    root = tmp_path / "cgroup"
    _cfs(root, controller, "50000", "100000")
    assert cgroup_cpu_quota(root, _proc(tmp_path, None)) == pytest.approx(0.5)
    assert usable_cpus(root, _proc(tmp_path, None)) == pytest.approx(0.5)


def test_unreadable_or_malformed_files_mean_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "cpu.max", "garbage\n")
    _cfs(root, "cpu", "many", "0")
    assert cgroup_cpu_quota(root, _proc(tmp_path, "/")) is None
    assert cgroup_cpu_quota(tmp_path / "absent", tmp_path / "absent-proc") is None
