"""Partner scoring: records in a model's schema in, scores with their reasons out."""
