"""The node's background duties (campaign rooms, linkage key, publishing, alert escalation and
watchers) share one loop: a round every few seconds, a failed round logged and tried again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn


async def repeat(step: Callable[[int], Awaitable[object]], *, every_seconds: float,
                 failure: str, log: logging.Logger) -> NoReturn:
    """Run ``step(now)`` every ``every_seconds`` until cancelled.

    A round that raises is logged as ``failure`` with the exception's type only (messages may
    carry content) and the next round runs as usual: a duty never stops the node.
    """
    while True:
        try:
            await step(int(time.time()))
        except Exception as error:
            log.warning("%s: %s", failure, type(error).__name__)
        await asyncio.sleep(every_seconds)
