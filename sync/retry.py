"""How the sync loops wait after a failure, and which failures mean "the homeserver is away"."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from federation.transport import TransportError

# Matrix error codes that say "later" rather than "never" for this request.
_TRANSIENT_CODES = frozenset({"M_LIMIT_EXCEEDED", "M_UNKNOWN"})


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: ``first``, 2x, 4x, ... up to ``cap`` seconds."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.cap, self.first * 2 ** min(failures - 1, 32)))


DEFAULT_BACKOFF = Backoff()


def is_unreachable(error: BaseException) -> bool:
    """True when the homeserver could not be reached or said "try again later": every request
    would fail the same way, so the caller waits instead of marking this one request as bad."""
    if isinstance(error, TransportError):
        return error.status is None or error.status in _TRANSIENT_CODES
    return isinstance(error, aiohttp.ClientError | TimeoutError | ConnectionError)


def short_error(error: BaseException) -> str:
    """A content-free description of a failure for status pages and logs."""
    if isinstance(error, TransportError):
        return str(error)[:200]
    return type(error).__name__
