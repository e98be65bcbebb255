"""The pages, one module per area; each module lists its routes in ``ROUTES``."""

from __future__ import annotations

from node.core.web.app import PageRoute


def all_routes() -> list[PageRoute]:
    from node.core.web import dashboard
    from node.features.accounts import admin_pages as admin
    from node.features.accounts import auth_pages as auth
    from node.features.accounts import pages as account
    from node.features.alerts import pages as alerts
    from node.features.campaigns import pages as campaigns
    from node.features.cases import pages as cases
    from node.features.dedup import pages as dedup
    from node.features.figures import pages as coalition_view
    from node.features.sharing import directory
    from node.features.sharing import pages as sharing

    return [*auth.ROUTES, *dashboard.ROUTES, *cases.ROUTES, *sharing.ROUTES,
            *directory.ROUTES, *account.ROUTES, *admin.ROUTES, *campaigns.ROUTES,
            *alerts.ROUTES, *dedup.ROUTES, *coalition_view.ROUTES]
