"""Every worker and replica serves the same model set (with CIVICRISK_SHARED_STATE; without it, each
process reloads only itself and reports no generation).

The database holds the model set's generation (`model_set_generation`). `POST /v1/admin/reload` and
`civicrisk models reload` bump it; every worker polls it (CIVICRISK_MODEL_SET_POLL_SECONDS, 1 s by
default) and, when it changes, re-verifies and reloads the models directory, then serves the new
set. `GET /v1/models` says which generation a worker serves. While the database cannot be reached a
worker keeps serving what it has and tries again at the next poll. A generation whose set the
registry refuses (a bundle failed verification) is not served: the worker keeps its generation and
its set, records the refused one (`refused`), and does not retry it; the operator's next reload does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.to_thread

from app.platform.registry import ModelRegistry, Snapshot
from app.platform.storage.repository import DatabaseUnavailable, Repository

log = logging.getLogger(__name__)


class ModelSetWatcher:
    """This worker's generation, and the loop that follows the database's."""

    def __init__(
        self,
        registry: ModelRegistry,
        repository: Callable[[], Repository] | None,
        interval: float,
        on_reload: Callable[[Snapshot], None],
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.interval = interval
        self.on_reload = on_reload
        self.generation: int | None = None  # served; None until the database has been read once
        self._claimed: int | None = None  # being loaded (served once the reload has finished)
        self.refused: int | None = None  # the last generation whose set was refused, if the last was
        self._database_down = False

    def _stored(self) -> int | None:
        if self.repository is None:
            return None
        try:
            generation = self.repository().model_generation()
        except Exception as error:  # whatever stops the read, this worker keeps serving what it has
            if not self._database_down:  # once per outage, not once per poll
                reason = str(error) if isinstance(error, DatabaseUnavailable) else type(error).__name__
                log.warning("model set generation unreadable", extra={"error": reason})
            self._database_down = True
            return None
        self._database_down = False
        return generation

    async def before_loading(self) -> None:
        """Read the generation before start-up loads the models, so what is loaded is at least that
        generation's set. Unreadable: the first successful poll reloads, to be sure."""
        self.generation = self._claimed = await anyio.to_thread.run_sync(self._stored)

    async def follow(self) -> None:
        """Poll until cancelled; reload when the stored generation is not the one served."""
        while True:
            try:
                await self.check()
            except Exception as error:  # a failed reload must not end the loop, nor the service
                log.error("model set check failed", extra={"error": type(error).__name__})
            await anyio.sleep(self.interval)

    async def check(self) -> None:
        stored = await anyio.to_thread.run_sync(self._stored)
        if stored is None or stored == self._claimed:
            return
        self._claimed = stored
        snapshot = await anyio.to_thread.run_sync(self.registry.reload)
        if self._served(stored):
            await anyio.to_thread.run_sync(self.on_reload, snapshot)
            log.info("model set reloaded", extra={"generation": stored, "models_loaded": snapshot.count})

    def _served(self, generation: int | None) -> bool:
        """After a reload: advance to `generation` if the registry served its set, else remember the
        refusal (the set and the generation served stay as they were)."""
        if self.registry.refusal is not None:
            self.refused = generation
            return False
        self.refused = None
        if generation is not None:
            self.generation = generation
        return True

    def refused_set(self) -> dict[str, object] | None:
        """The refused set for `/v1/models` and `/health/ready` (schemas.RefusedModelSet), or None."""
        refusal = self.registry.refusal
        if refusal is None:
            return None
        return {
            "refused_at": refusal.at,
            "generation": self.refused,
            "message": refusal.message,
            "failures": [vars(failure) for failure in refusal.failures],
        }

    def state(self) -> dict[str, object]:
        """What this worker serves (schemas.ModelSetState)."""
        refused = self.refused_set()
        return {
            "state": "current" if refused is None else "last_good",
            "generation": self.generation,
            "refused": refused,
        }

    def _bump(self) -> int | None:
        return None if self.repository is None else self.repository().bump_model_generation()

    async def bump_and_reload(self) -> tuple[int | None, Snapshot]:
        """An operator's reload: a new generation for every worker, and this worker's set at once."""
        try:
            generation: int | None = await anyio.to_thread.run_sync(self._bump)
        except Exception as error:  # the reload still happens here; the others follow when it is back
            reason = str(error) if isinstance(error, DatabaseUnavailable) else type(error).__name__
            log.warning("model set generation not recorded", extra={"error": reason})
            generation = None
        if generation is not None:
            self._claimed = generation  # first, so this worker's own poll does not reload it again
        snapshot = await anyio.to_thread.run_sync(self.registry.reload)
        if self._served(generation):
            await anyio.to_thread.run_sync(self.on_reload, snapshot)
        return generation, snapshot
