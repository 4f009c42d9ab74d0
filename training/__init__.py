"""civicrisk training pipeline: ingest, features, temporal validation, bundles."""
