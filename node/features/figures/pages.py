"""The coalition's figures page (M9): sums of every member's latest aggregate, as charts, a
table of contributors and a CSV download; editors publish this node's own figures from here.

Charts are inline SVG rendered on the server (the pages run no scripts); every label in them is
escaped by :mod:`node.features.figures.charts`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from markupsafe import Markup

from node.core.sharing import SharingError
from node.core.store import Role
from node.core.web.context import (
    current_visit,
    form_data,
    render,
    see_other,
    staff_of,
    web_context,
)
from node.core.web.i18n import N_, Formatter
from node.core.web.presenters import member_names
from node.core.web.routes import PageRoute
from node.features.figures.aggregates import OTHER_COUNTRIES, CoalitionFigure
from node.features.figures.charts import bar_chart, time_series
from node.features.figures.coalition_view import (
    Bar,
    by_country,
    by_period,
    coalition_view,
    shown,
    view_csv,
)
from node.features.figures.overlap import DistinctCases
from node.features.figures.overlap_survey import current_survey
from node.features.figures.publishing import (
    NotInCoalition,
    PublicationSchedule,
    coalition_aggregates,
    publication_schedule,
    publish_aggregate,
    set_publication_schedule,
)

PAGE: Final = "/coalition/figures"
PROBLEMS: Final = {
    "coalition": N_("This node is not in a coalition yet."),
    "refused": N_("The figures could not be sent. Try again later."),
    "every_days": N_("Every how many days: a whole number from 0 to 366."),
}


def _country_bars(bars: list[Bar], fmt: Formatter) -> list[Bar]:
    return [replace(bar, label=fmt.gettext("Other countries") if bar.label == OTHER_COUNTRIES
                    else fmt.country(bar.label)) for bar in bars]


async def figures_page(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    fmt = current_visit(request).fmt
    view = coalition_view(await coalition_aggregates(node))
    async with node.store.read() as tx:
        names = member_names(await tx.orgs.members(verified_only=False))
    names[node.org_id] = node.own.name
    countries = _country_bars(by_country(view), fmt)
    years = by_period(view)
    problem = PROBLEMS.get(request.query.get("problem", ""))
    async with node.store.read() as tx:
        surveying = await current_survey(tx) is not None
    return render(
        request, "coalition/figures.html",
        contributors=[(names.get(c.org_id, c.org_id), fmt.date_span(c.period),
                       fmt.datetime(_when(c.as_of))) for c in view.contributors],
        distinct=_distinct_rows(view.distinct, names), surveying=surveying,
        schedule=await publication_schedule(node),
        countries=countries, years=years,
        country_chart=Markup(bar_chart(countries, fmt.gettext("Cases by country"))),
        year_chart=Markup(time_series(years, fmt.gettext("Cases by year"))),
        published=request.query.get("published") == "1",
        scheduled=request.query.get("scheduled") == "1",
        problem=fmt.gettext(problem) if problem else None,
    )


@dataclass(frozen=True)
class DistinctRows:
    counted: str
    shared: str
    distinct: str
    unknown: list[str]


def _distinct_rows(found: DistinctCases | None, names: dict[str, str]) -> DistinctRows | None:
    if found is None:
        return None
    shared = CoalitionFigure({}, found.shared_low, found.shared_high, ())
    return DistinctRows(shown(found.counted), shown(shared), shown(found.distinct),
                        sorted(names.get(org_id, org_id) for org_id in found.unknown))


def _when(as_of: int) -> datetime:
    return datetime.fromtimestamp(as_of, UTC)


async def figures_csv(request: web.Request) -> web.StreamResponse:
    view = coalition_view(await coalition_aggregates(web_context(request).node))
    return web.Response(
        text=view_csv(view), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="minga-coalition-figures.csv"'})


async def publish(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    try:
        await publish_aggregate(ctx.node, actor=staff_of(request).username, now=ctx.now())
    except NotInCoalition:
        return see_other(PAGE, problem="coalition")
    except SharingError:
        return see_other(PAGE, problem="refused")
    return see_other(PAGE, published="1")


async def schedule(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    try:
        chosen = PublicationSchedule(every_days=int(form.get("every_days", "").strip()))
    except ValueError:  # not a number, or out of range (pydantic's error is a ValueError)
        return see_other(PAGE, problem="every_days")
    await set_publication_schedule(ctx.node, chosen, actor=staff_of(request).username)
    return see_other(PAGE, scheduled="1")


ROUTES: Final = [
    PageRoute("GET", PAGE, figures_page),
    PageRoute("GET", PAGE + ".csv", figures_csv),
    PageRoute("POST", PAGE + "/publish", publish, Role.editor),
    PageRoute("POST", PAGE + "/schedule", schedule, Role.admin),
]
