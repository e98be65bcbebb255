"""The dashboard: recent cases, recently received records, and what is waiting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from node.core.sharing import disclosed_fields
from node.core.web.context import current_visit, render, web_context
from node.core.web.labels import KIND_NAMES
from node.core.web.presenters import case_summary, received_card
from node.core.web.routes import PageRoute
from sync.engine import read_status

RECENT = 5


async def _panels(request: web.Request) -> list[tuple[str, Mapping[str, Any]]]:
    """The features' dashboard sections that have something to show, in registry order."""
    shown = []
    for panel in web_context(request).dashboard_panels:
        values = await panel.values(request)
        if values is not None:
            shown.append((panel.template, values))
    return shown


async def dashboard(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    async with ctx.node.store.read() as tx:
        cases = await tx.cases.list(limit=RECENT)
        case_count = await tx.cases.count()
        received = await tx.received.list_latest(limit=RECENT)
        received_count = await tx.received.count()
        members = {m.org_id: m for m in await tx.orgs.members()}
        coalitions = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
        sync = await read_status(tx.session)
    unverified = sum(1 for m in members.values() if not m.verified)
    return render(
        request, "dashboard.html",
        cases=[case_summary(stored, fmt) for stored in cases.items],
        case_count=case_count,
        received=[received_card(r, members, fmt, disclosed_fields(r.claims),
                                coalitions=coalitions) for r in received],
        received_count=received_count,
        outbox_waiting=sync.queued_items + sync.unsent_frames,
        outbox_error=sync.outbox_error,
        quarantined=sync.quarantined,
        unverified_members=unverified,
        member_count=len(members),
        kind_names={code: fmt.gettext(name) for code, name in KIND_NAMES.items()},
        panels=await _panels(request),
    )


CORE_PAGES: Final = [PageRoute("GET", "/", dashboard)]
