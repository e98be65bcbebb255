"""Alembic scripts of ``node.store`` (run by :mod:`node.store.migrate`, not by the alembic CLI)."""
