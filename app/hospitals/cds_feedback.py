"""CDS Hooks feedback (`POST /cds-services/lead-risk/feedback`): what a clinician did with a card.

Each entry is kept as the card's model, version and tier (read from the card's uuid, see
app/hospitals/cds_cards.py), the outcome and, for an override, the reason when it is one the card
offered. Not kept: the outcome time (a time of care is a date of the patient's), the clinician's
free-text comment (it could say anything about the patient), any code the card did not offer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.hospitals.cds_cards import OVERRIDE_REASONS, OVERRIDE_SYSTEM, TIERS, card_origin, model_tag
from app.hospitals.lead_safe import parse_timestamp
from app.platform.errors import InvalidRequest, Problem
from app.platform.registry import Snapshot
from app.platform.storage.feedback import CardFeedback, FeedbackCount

OUTCOMES = ("accepted", "overridden")
MAX_ENTRIES = 100
OTHER_REASON = "other"  # an override reason the card did not offer, or none given


@dataclass(frozen=True)
class ParsedFeedback:
    entries: list[CardFeedback]
    unknown_cards: int  # card ids this service did not make: not kept


def _reason(entry: dict[str, Any], where: tuple[str | int, ...], problems: list[Problem]) -> str | None:
    override = entry.get("overrideReason")
    if override is None:
        return None
    if not isinstance(override, dict):
        problems.append(Problem((*where, "overrideReason"), "must be an object"))
        return None
    reason = override.get("reason")
    if reason is None:
        return OTHER_REASON  # a comment only: the comment itself is never kept
    if not isinstance(reason, dict) or not isinstance(reason.get("code"), str):
        problems.append(Problem((*where, "overrideReason", "reason"), "must be a Coding with a code"))
        return None
    if reason.get("system") == OVERRIDE_SYSTEM and reason["code"] in OVERRIDE_REASONS:
        return str(reason["code"])
    return OTHER_REASON


def _check(
    entry: Any, where: tuple[str | int, ...], problems: list[Problem]
) -> tuple[str, str, str | None] | None:
    if not isinstance(entry, dict):
        problems.append(Problem(where, "must be an object"))
        return None
    card, outcome = entry.get("card"), entry.get("outcome")
    before = len(problems)
    if not isinstance(card, str) or not card:
        problems.append(Problem((*where, "card"), "required: the card's uuid"))
    if outcome not in OUTCOMES:
        problems.append(Problem((*where, "outcome"), "must be accepted or overridden"))
    if parse_timestamp(entry.get("outcomeTimestamp")) is None:
        problems.append(Problem((*where, "outcomeTimestamp"), "required: an RFC 3339 date-time"))
    accepted = entry.get("acceptedSuggestions")
    if outcome == "accepted" and (
        not isinstance(accepted, list)
        or not accepted
        or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in accepted)
    ):
        problems.append(Problem((*where, "acceptedSuggestions"), 'required for accepted: [{"id": ...}]'))
    reason = _reason(entry, where, problems) if outcome == "overridden" else None
    if len(problems) > before:
        return None
    return str(card), str(outcome), reason


def parse(body: Any, models: dict[bytes, tuple[str, str]]) -> ParsedFeedback:
    """The entries to keep; InvalidRequest (422) naming every field at fault, never its value."""
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ENTRIES:
        raise InvalidRequest(
            "the body is not CDS Hooks feedback",
            (Problem(("body", "feedback"), f"required: a list of 1 to {MAX_ENTRIES} feedback objects"),),
        )
    problems: list[Problem] = []
    entries: list[CardFeedback] = []
    unknown = 0
    for index, item in enumerate(items):
        checked = _check(item, ("body", "feedback", index), problems)
        if checked is None:
            continue
        card, outcome, reason = checked
        origin = card_origin(card)
        if origin is None:
            unknown += 1
            continue
        name, version = models.get(origin.tag, (None, None))
        entries.append(CardFeedback(origin.uuid, name, version, origin.tier or "unknown", outcome, reason))
    if problems:
        raise InvalidRequest("the feedback is not valid CDS Hooks feedback", tuple(problems))
    return ParsedFeedback(entries, unknown)


class ModelTags:
    """Every loaded lead model version by the tag its cards' uuids carry, worked out once per snapshot."""

    def __init__(self) -> None:
        self._seen: tuple[Snapshot | None, dict[bytes, tuple[str, str]]] = (None, {})

    def of(self, snapshot: Snapshot) -> dict[bytes, tuple[str, str]]:
        seen, tags = self._seen
        if seen is not snapshot:
            tags = {
                model_tag(name, version): (name, version)
                for name, versions in snapshot.models.items()
                for version in versions
            }
            self._seen = (snapshot, tags)
        return tags


def summary(name: str, counts: Iterable[FeedbackCount]) -> dict[str, Any]:
    """Accept and override counts and rates by tier, with the override reasons and the versions."""
    tiers: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    reasons: dict[str, int] = defaultdict(int)
    versions: dict[str, int] = defaultdict(int)
    for row in counts:
        tiers[row.tier][row.outcome] = tiers[row.tier].get(row.outcome, 0) + row.count
        versions[row.model_version or "unknown"] += row.count
        if row.override_reason is not None:
            reasons[row.override_reason] += row.count
    by_tier = {}
    for tier in sorted(tiers, key=lambda t: TIERS.index(t) if t in TIERS else len(TIERS)):
        accepted, overridden = tiers[tier]["accepted"], tiers[tier]["overridden"]
        total = accepted + overridden
        by_tier[tier] = {
            "accepted": accepted,
            "overridden": overridden,
            "accept_rate": round(accepted / total, 4) if total else None,
            "override_rate": round(overridden / total, 4) if total else None,
        }
    return {
        "model": name,
        "feedback": sum(versions.values()),
        "tiers": by_tier,
        "override_reasons": dict(sorted(reasons.items())),
        "versions": dict(sorted(versions.items())),
    }
