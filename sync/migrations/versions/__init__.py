"""Revisions of the sync schema, oldest first by ``down_revision``."""
