"""The inspectors' page's sections on trusting the list: its staleness banner and how the model's
lists did on posted outcomes (templates/staleness_banner.html, templates/performance_section.html)."""

from __future__ import annotations

import logging
from typing import Any

from app.inspections.daily import DailyLists
from app.inspections.performance import model_performance
from app.inspections.staleness import observe
from app.platform.errors import ServiceError
from app.platform.metrics import ServiceMetrics
from app.platform.settings import Settings

log = logging.getLogger(__name__)


def trust_sections(
    lists: DailyLists, city: str, settings: Settings, metrics: ServiceMetrics
) -> dict[str, Any]:
    """Blocking: the sections' template context. Either that cannot be worked out (the database
    down) is left out, with the reason logged: the list itself has already been issued."""
    context: dict[str, Any] = {}
    try:
        context["staleness"] = observe(lists, city, settings.outcomes_max_age_days, metrics)
        context["performance"] = model_performance(lists, lists.model_for(city), None, None)
    except ServiceError as error:
        log.warning("a section of the inspectors' page is left out", extra={"reason": error.message})
    except Exception:  # a fault here must not cost the inspectors their list: logged, section left out
        log.exception("a section of the inspectors' page failed")
    return context
