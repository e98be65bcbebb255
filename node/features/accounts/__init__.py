"""Staff accounts: login and logout, passwords, two-step codes (TOTP), the account and admin
pages, ``minga user`` and ``minga token``."""

from __future__ import annotations

from pathlib import Path

from node.core.registry import Registry
from node.features.accounts import admin_pages, auth_pages, cli, pages

__all__ = ["AccountsFeature"]


class AccountsFeature:
    name = "accounts"

    def register(self, registry: Registry) -> None:
        registry.add_pages([*auth_pages.ROUTES, *pages.ROUTES, *admin_pages.ROUTES],
                           templates=Path(__file__).parent / "templates")
        registry.commands.append(cli.add_user_commands)
