"""What the service (app/) may use of the training pipeline: this module is the whole boundary.

The service loads verified bundles, computes the same point-in-time features the models were trained
on (for the daily list and the establishment and lead routes), and reads the same city configs. It
must not import anything else of training/ (model fitting, cards and their plotting cost every worker
memory and start-up time): tests/app/test_service_imports.py fails on any other import.
"""

from __future__ import annotations

from training.address import AddressIndex, AddressNotFound
from training.bundle import (
    CARD_FILE,
    MODEL_FILE,
    Bundle,
    BundleError,
    content_hash,
    find_bundles,
    load_bundle,
)
from training.config import ConfigError, today_in
from training.evaluate import evaluate_scores, top_k_count
from training.geo import PointLocator
from training.inspections.config import LIST_PARAMETERS, load_city_config
from training.inspections.features import build_features, describe_feature, feature_family
from training.inspections.features.neighbourhood import prepare_indexes
from training.inspections.ingest import CityData, load_city, parse_violation_codes, with_recorded_outcomes
from training.inspections.roster import build_roster
from training.lead.area_outcomes import AREA_OUTCOME_FEATURES
from training.lead.config import LeadConfig
from training.lead.data import load_lead_data
from training.lead.features import FEATURES as LEAD_FEATURES
from training.lead.features import SAME_ADDRESS_KM
from training.lead.reference import AREA_FEATURES, TRACT_FEATURES
from training.points import EARTH_RADIUS_KM, to_day, to_xyz
from training.signing import load_public_key, verify_signature

__all__ = [
    # Bundles: find, verify and load them; hash reference data as the manifest does.
    "CARD_FILE",
    "MODEL_FILE",
    "Bundle",
    "BundleError",
    "content_hash",
    "find_bundles",
    "load_bundle",
    "load_public_key",
    "verify_signature",
    # Inspections: the city config and data, and the features and roster of a daily list.
    "CityData",
    "ConfigError",
    "today_in",
    "LIST_PARAMETERS",
    "build_features",
    "build_roster",
    "describe_feature",
    "feature_family",
    "load_city",
    "load_city_config",
    "parse_violation_codes",
    "prepare_indexes",
    "with_recorded_outcomes",
    # Evaluation: the metrics of a model's performance on posted outcomes (the same as a backtest's).
    "evaluate_scores",
    "top_k_count",
    # Lead: the config, reference data and feature definitions of the hospital endpoint.
    "AREA_FEATURES",
    "AREA_OUTCOME_FEATURES",
    "AddressIndex",
    "AddressNotFound",
    "LEAD_FEATURES",
    "LeadConfig",
    "PointLocator",
    "SAME_ADDRESS_KM",
    "TRACT_FEATURES",
    "load_lead_data",
    # Points in time and space.
    "EARTH_RADIUS_KM",
    "to_day",
    "to_xyz",
]
