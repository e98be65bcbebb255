"""After a raid: the offline revocation key, key rotation, self-revocation, lock and wipe
(issue M13; docs/architecture.md §3)."""

from __future__ import annotations

from pathlib import Path

from node.core.registry import Registry
from node.features.keys import api, cli, pages

__all__ = ["KeysFeature"]


class KeysFeature:
    name = "keys"

    def register(self, registry: Registry) -> None:
        registry.commands.append(cli.add_commands)
        registry.endpoints.append(api.keys_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
