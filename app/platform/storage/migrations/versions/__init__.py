"""Alembic revisions, one module each, in order: append, never edit one that was released."""
