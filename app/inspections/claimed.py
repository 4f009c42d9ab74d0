"""One computation of a daily list across every worker and replica: the claim loop.

Before computing, a process claims the list's key in the database (`daily_list_claims`). Whoever
gets it computes and stores the list, then names it in the claim; the others poll until it is named
and read it. A claim whose holder died (older than the claim timeout, no list) is taken over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.inspections.errors import ListsBusy
from app.platform.storage.list_claims import ListKey
from app.platform.storage.repository import IssuedList, Repository

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1

_holders: dict[int, str] = {}


def holder() -> str:
    """This process in claim rows: host and pid for the operator reading the table, and a random part
    so a restarted process with the same pid is not taken for its predecessor. Per pid: workers
    forked from one master must not share it."""
    pid = os.getpid()
    if pid not in _holders:
        _holders[pid] = f"{socket.gethostname()[:80]}:{pid}:{secrets.token_hex(4)}"
    return _holders[pid]


@dataclass(frozen=True)
class ClaimTimes:
    wait_seconds: float  # how long to wait for another process's list before answering 503
    stale_after_seconds: float  # a claim this old without a list is its dead holder's


def issue_once(
    repository: Repository, key: ListKey, times: ClaimTimes, compute_and_store: Callable[[], IssuedList]
) -> IssuedList:
    """The list `key` names: read when stored, else computed here (claimed) or waited for."""
    deadline = time.monotonic() + times.wait_seconds
    me = holder()
    while True:
        claim = repository.claim_list(key, me, times.stale_after_seconds)
        if claim.list_id is not None:
            stored = repository.get_list(claim.list_id)
            if stored is not None:
                return stored
        if claim.mine:
            if claim.taken_over:
                log.warning("stale daily list claim taken over", extra={"city": key.city, "key": key.sha256})
            try:
                issued = compute_and_store()
            except BaseException:
                repository.release_list_claim(key.sha256, me)
                raise
            repository.complete_list_claim(key.sha256, issued.id)
            return issued
        if time.monotonic() > deadline:
            raise ListsBusy(
                f"the list is being computed by another process ({claim.holder}) and was not ready "
                f"within {times.wait_seconds:g} s; try again shortly",
                retry_after=max(1, round(times.wait_seconds / 4)),
            )
        time.sleep(POLL_SECONDS)
