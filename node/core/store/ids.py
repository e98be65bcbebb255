"""Record ids, timestamps and the clock the store reads them from."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from node.core.store.errors import StoreError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class InvalidRecordId(StoreError, ValueError):
    """A record id is not a UUID."""


def normalise_record_id(record_id: str) -> str:
    """The canonical lower-case text of a UUID record id."""
    try:
        return str(uuid.UUID(record_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidRecordId(f"record id {record_id!r} is not a UUID") from None
