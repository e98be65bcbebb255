"""The pages, one module per area; each module lists its routes in ``ROUTES``."""

from __future__ import annotations

from node.web.app import PageRoute


def all_routes() -> list[PageRoute]:
    from node.web import alerts, campaigns, coalition_view, dedup
    from node.web.views import account, admin, auth, cases, dashboard, directory, sharing

    return [*auth.ROUTES, *dashboard.ROUTES, *cases.ROUTES, *sharing.ROUTES,
            *directory.ROUTES, *account.ROUTES, *admin.ROUTES, *campaigns.ROUTES,
            *alerts.ROUTES, *dedup.ROUTES, *coalition_view.ROUTES]
