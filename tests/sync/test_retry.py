"""Backoff and the line between "the homeserver is away" and "the homeserver said no"."""

from __future__ import annotations

import aiohttp
import pytest

from federation.transport import TransportError
from sync.retry import Backoff, is_unreachable, short_error


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    assert [backoff.delay(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(10_000) == 4.0


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (TransportError("send", "connection refused"), True),
        (TransportError("send", "429", status="M_LIMIT_EXCEEDED"), True),
        (TransportError("send", "502", status="M_UNKNOWN"), True),
        (TransportError("send", "403", status="M_FORBIDDEN"), False),
        (TransportError("download", "404", status="M_NOT_FOUND"), False),
        (aiohttp.ClientConnectionError(), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (ValueError("a bug"), False),
    ],
)
def test_unreachable_means_every_request_would_fail_now(
    error: BaseException, unreachable: bool
) -> None:
    assert is_unreachable(error) is unreachable


def test_short_errors_name_the_failure_without_its_arguments() -> None:
    assert short_error(ValueError("secret narrative")) == "ValueError"
    assert short_error(TransportError("send", "403 M_FORBIDDEN")) == "send failed: 403 M_FORBIDDEN"
