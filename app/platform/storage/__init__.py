"""Persistence for issued lists and recorded outcomes (SQLAlchemy Core; SQLite default, PostgreSQL by URL)."""
