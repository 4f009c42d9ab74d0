"""Routes that belong to no domain: health, metrics, model listings, admin."""
