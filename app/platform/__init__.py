"""What every domain shares: settings, keys, the model registry, storage, metrics, logs, errors."""
