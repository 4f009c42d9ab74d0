"""Score body formats: JSON records, a JSON table, Parquet; each decoded into the model's arrays."""
