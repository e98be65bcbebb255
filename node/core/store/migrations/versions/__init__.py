"""Revisions of the store schema, oldest first by ``down_revision``."""
