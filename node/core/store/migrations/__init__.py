"""Alembic scripts of ``node.core.store`` (run by :mod:`node.core.store.migrate`, not by the
alembic CLI)."""
