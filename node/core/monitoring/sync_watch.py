"""The running sync engine of a node, for health and metrics to read (a node part)."""

from __future__ import annotations

from dataclasses import dataclass

from sync.engine import SyncEngine


@dataclass
class RunningSync:
    """Set by the federation loop while it runs (``node.part(RunningSync)``)."""

    engine: SyncEngine | None = None

    def last_sync_ms(self) -> int | None:
        """When the inbox last finished a sync batch (Unix ms), None if never or not running."""
        return self.engine.inbox.last_sync_ms if self.engine is not None else None
