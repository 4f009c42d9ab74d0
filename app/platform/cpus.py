"""How many CPUs this process may use: the CPUs its affinity allows, capped by a container's CPU quota.

`os.sched_getaffinity` sees every CPU of the node in a container limited to one CPU by a quota
(`docker run --cpus=1`, a Kubernetes `limits.cpu: 1`), so a decision such as "rank daily lists in a
second process when there is a second CPU" must also read the quota: cgroup v2's `cpu.max` ("max" or
"<quota> <period>") on the process's cgroup and every parent, or cgroup v1's `cpu.cfs_quota_us` /
`cpu.cfs_period_us` (-1: no quota). The smallest quota found is the cap.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float:
    """The CPUs the affinity allows, capped by the cgroup quota where there is one (may be fractional)."""
    allowed = float(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota(root, proc_cgroup)
    return allowed if quota is None else min(allowed, quota)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota over this process's cgroups, in CPUs; None without one (or unreadable)."""
    quotas = [*_v2_quotas(root, _v2_path(proc_cgroup)), *_v1_quotas(root)]
    return min(quotas) if quotas else None


def _v2_path(proc_cgroup: Path) -> str | None:
    """The process's cgroup v2 path ("0::<path>" in /proc/self/cgroup), or None."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    return None


def _v2_quotas(root: Path, path: str | None) -> list[float]:
    """cpu.max of the process's cgroup and of each parent up to the root of the hierarchy we see."""
    if path is None:
        return []
    quotas = []
    directory = root / path.strip("/")
    while True:
        quota = _v2_quota(directory / "cpu.max")
        if quota is not None:
            quotas.append(quota)
        if directory == root or root not in directory.parents:
            return quotas
        directory = directory.parent


def _v2_quota(file: Path) -> float | None:
    try:
        fields = file.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quotas(root: Path) -> list[float]:
    """cgroup v1's CFS quota, where its cpu controller is mounted (inside a container: its own)."""
    quotas = []
    for controller in ("cpu", "cpu,cpuacct"):
        try:
            quota = (root / controller / "cpu.cfs_quota_us").read_text().strip()
            period = (root / controller / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            continue
        found = _ratio(quota, period)
        if found is not None:
            quotas.append(found)
    return quotas


def _ratio(quota: str, period: str) -> float | None:
    try:
        value, length = int(quota), int(period)
    except ValueError:
        return None
    if value <= 0 or length <= 0:  # -1: no quota
        return None
    return value / length
