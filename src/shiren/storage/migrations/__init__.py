"""Alembic migrations of the shiren schema (run with :func:`shiren.storage.sql.migrate`)."""
