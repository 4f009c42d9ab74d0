"""Childhood lead-exposure risk: a second model on the same pipeline (config, features, bundle, audit)."""
