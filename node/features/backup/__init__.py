"""Encrypted backups of the whole node, and restoring one on another machine."""

from __future__ import annotations

from node.core.registry import Registry
from node.features.backup import cli
from node.features.backup.record import backup_check

__all__ = ["BackupFeature"]


class BackupFeature:
    name = "backup"

    def register(self, registry: Registry) -> None:
        registry.commands.append(cli.add_commands)
        registry.doctor_checks.append(backup_check)
