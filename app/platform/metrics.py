"""Prometheus metrics: one scrape reports the whole process group.

With one worker, the metrics live in a registry per app (so several apps in one process, as in the
tests, never share counters). With several workers (`civicrisk serve --workers N`), `civicrisk serve`
points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start: prometheus_client then
keeps every worker's values in files there, and a scrape of any worker adds them all up (its
multiprocess mode), so one replica is one scrape target.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

SHARED_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)

# Scoring is sub-millisecond; reading and writing 10,000-record batches takes a good fraction of a second.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """Requests and latency by route and model, records scored, models loaded."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # prometheus_client chose how it stores values when it was imported, from the same variable.
        self.shared = bool(os.environ.get(SHARED_DIRECTORY))
        self.requests = Counter(
            "civicrisk_requests",
            "HTTP requests by route template, method, status and model",
            ["route", "method", "status", "model"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "civicrisk_request_duration_seconds",
            "Time from request start to the last response byte, by route and model",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.records = Counter(
            "civicrisk_records_scored", "Records scored, by model", ["model"], registry=self.registry
        )
        # Across workers: the largest value among the live ones (every worker serves the same set once
        # a reload has reached it).
        self.models_loaded = Gauge(
            "civicrisk_models_loaded",
            "Model versions being served",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.bundles_failed = Gauge(
            "civicrisk_bundles_failed",
            "Bundles refused at the last (re)load",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        # CDS Hooks: cards given and clinicians' feedback on them (by the card's model and tier), and
        # EHR tokens refused as security events (a replay, a wrong audience), by reason.
        self.cds_cards = Counter(
            "civicrisk_cds_cards",
            "CDS Hooks cards given, by model and tier",
            ["model", "tier"],
            registry=self.registry,
        )
        self.cds_feedback = Counter(
            "civicrisk_cds_feedback",
            "CDS Hooks card outcomes received, by model, tier and outcome",
            ["model", "tier", "outcome"],
            registry=self.registry,
        )
        self.security_events = Counter(
            "civicrisk_security_events",
            "EHR tokens refused as security events, by reason",
            ["reason"],
            registry=self.registry,
        )
        # Daily lists' staleness (app/inspections/staleness.py): every worker computes the same age from
        # the shared database and files; across workers the most recently written value is reported.
        self.outcomes_age_days = Gauge(
            "civicrisk_outcomes_age_days",
            "Days since the newest inspection outcome the city's daily list rests on",
            ["city"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.outcomes_max_age_days = Gauge(
            "civicrisk_outcomes_max_age_days",
            "CIVICRISK_OUTCOMES_MAX_AGE_DAYS: past it, daily lists warn that their data is stale",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        # Blocking updates the scrape runs first (in a worker thread), e.g. the staleness above.
        self.on_scrape: list[Callable[[], None]] = []
        self._children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
        self._scored: dict[str, Counter] = {}

    def observe(self, route: str, method: str, status: int, model: str, seconds: float) -> None:
        key = (route, method, status, model)
        children = self._children.get(key)
        if children is None:
            # labels() validates and locks on every call; the children it returns are kept instead.
            # The keys are the label values, so this holds no more entries than the metrics do.
            children = (
                self.requests.labels(route, method, str(status), model),
                self.latency.labels(route, model),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def scored(self, model: str, records: int) -> None:
        counter = self._scored.get(model)
        if counter is None:
            counter = self._scored[model] = self.records.labels(model)
        counter.inc(records)

    def refresh(self) -> None:
        """Blocking: run the scrape's updates; one that fails (a database down) leaves its old value."""
        for update in self.on_scrape:
            try:
                update()
            except Exception:  # a scrape must still answer: the failure is logged, never raised
                log.exception("a metrics update before the scrape failed")

    def render(self) -> bytes:
        if not self.shared:
            return generate_latest(self.registry)
        group = CollectorRegistry()
        multiprocess.MultiProcessCollector(group)  # type: ignore[no-untyped-call]  # all workers' files
        return generate_latest(group)
