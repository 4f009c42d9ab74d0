"""The Alembic environment of civicrisk's database (`env.py`, `versions/`); run through `schema.py`."""
