"""Encrypted backups of the whole node, and restoring one on another machine."""

from __future__ import annotations

from node.core.registry import Registry
from node.features.backup import cli

__all__ = ["BackupFeature"]


class BackupFeature:
    name = "backup"

    def register(self, registry: Registry) -> None:
        registry.commands.append(cli.add_commands)
