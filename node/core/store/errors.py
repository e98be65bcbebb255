"""Typed errors of the store. Messages name the problem and record ids, never content."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by ``node.core.store``."""


class StoreLocked(StoreError):
    """The store cannot be unlocked: no passphrase, no key file, or a damaged key file."""


class WrongDataKey(StoreError):
    """The database was created with another data key than the one given."""


class StoreSchemaTooNew(StoreError):
    """The database was migrated by a newer version of Minga than this one."""


class CiphertextRejected(StoreError):
    """A stored encrypted value does not decrypt for the row and column it sits in."""


class RecordNotFound(StoreError):
    """No record with this id is stored."""


class RecordDeleted(RecordNotFound):
    """The record existed but was deleted; only its tombstone remains."""


class RecordExists(StoreError):
    """A record with this id is already stored."""


class VersionConflict(StoreError):
    """The record changed since the caller read it (optimistic concurrency check failed)."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached or used: wrong address, refused login, no rights."""


class StoreHalfMoved(StoreError):
    """A ``minga store move`` into this database did not finish; it holds a partial copy."""


class DatabaseInUse(StoreError):
    """A new node was to be created in a database that already holds a node's store."""
