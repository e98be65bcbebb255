"""The coalition's figures page (M9): sums of every member's latest aggregate, as charts, a
table of contributors and a CSV download; editors publish this node's own figures from here.
The SDG 16.10.1 report, this node's or the coalition's, is a page of its own (``/sdg``) with
print-ready HTML and CSV downloads.

Figures are per coalition (decision 0032): the page shows one coalition's (``?coalition=ID``, by
default the node's first), made only from what came through it, with a choice of coalition when
the node is or was in several; publishing goes to the coalition shown. The coalition's SDG report
is made for the coalition chosen in its form.

Charts are inline SVG rendered on the server (the pages run no scripts); every label in them is
escaped by :mod:`node.features.figures.charts`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import SharingError
from node.core.store import Role
from node.core.store.coalitions import Coalition
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
from node.features.cases import own_case_records
from node.features.figures.aggregates import OTHER_COUNTRIES, CoalitionFigure
from node.features.figures.charts import bar_chart, time_series
from node.features.figures.coalition_sdg import coalition_rendering, coalition_sdg
from node.features.figures.coalition_view import (
    Bar,
    CoalitionView,
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
from node.features.figures.sdg_report import (
    TEXT,
    Rendering,
    ReportError,
    layout,
    local_rendering,
    rendering_csv,
    rendering_html,
    sdg_report,
)
from schemas.countries import COUNTRY_CODES, is_country_code
from schemas.typology import Language

PAGE: Final = "/coalition/figures"
SDG_PAGE: Final = PAGE + "/sdg"
PROBLEMS: Final = {
    "coalition": N_("This node is not in a coalition yet."),
    "coalition_left": N_("This node left that coalition: its figures are no longer published"
                         " there."),
    "refused": N_("The figures could not be sent. Try again later."),
    "every_days": N_("Every how many days: a whole number from 0 to 366."),
}


def _country_bars(bars: list[Bar], fmt: Formatter) -> list[Bar]:
    return [replace(bar, label=fmt.gettext("Other countries") if bar.label == OTHER_COUNTRIES
                    else fmt.country(bar.label)) for bar in bars]


async def _known_coalitions(node: Node) -> list[Coalition]:
    async with node.store.read() as tx:
        return await tx.coalitions.all(with_left=True)


def _shown_coalition(known: list[Coalition], asked: str | None) -> Coalition | None:
    """The coalition whose figures are shown: the one asked for, else the first active one."""
    found = next((c for c in known if c.coalition_id == asked), None)
    return found or next((c for c in known if c.active), known[0] if known else None)


async def _view_of(node: Node, coalition: Coalition | None) -> CoalitionView:
    if coalition is None:
        return coalition_view({})
    return coalition_view(await coalition_aggregates(node, coalition.coalition_id))


async def figures_page(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    fmt = current_visit(request).fmt
    known = await _known_coalitions(node)
    coalition = _shown_coalition(known, request.query.get("coalition"))
    view = await _view_of(node, coalition)
    async with node.store.read() as tx:
        names = member_names(await tx.orgs.members(verified_only=False))
    names[node.org_id] = node.own.name
    countries = _country_bars(by_country(view), fmt)
    years = by_period(view)
    problem = PROBLEMS.get(request.query.get("problem", ""))
    async with node.store.read() as tx:
        surveying = coalition is not None and \
            await current_survey(tx, coalition.coalition_id) is not None
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
        coalitions=known, coalition=coalition,
        coalition_query=f"?coalition={quote(coalition.coalition_id, safe='')}" if coalition
        else "",
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
    node = web_context(request).node
    coalition = _shown_coalition(await _known_coalitions(node), request.query.get("coalition"))
    view = await _view_of(node, coalition)
    return web.Response(
        text=view_csv(view), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="minga-coalition-figures.csv"'})


async def publish(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    chosen = (await form_data(request)).get("coalition") or None
    back = {"coalition": chosen} if chosen else {}
    try:
        await publish_aggregate(ctx.node, actor=staff_of(request).username, now=ctx.now(),
                                coalition_id=chosen)
    except NotInCoalition:
        return see_other(PAGE, problem="coalition")
    except CoalitionNotChosen:
        return see_other(PAGE, problem="coalition_left", **back)
    except SharingError:
        return see_other(PAGE, problem="refused", **back)
    return see_other(PAGE, published="1", **back)


async def schedule(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    try:
        chosen = PublicationSchedule(every_days=int(form.get("every_days", "").strip()))
    except ValueError:  # not a number, or out of range (pydantic's error is a ValueError)
        return see_other(PAGE, problem="every_days")
    await set_publication_schedule(ctx.node, chosen, actor=staff_of(request).username)
    return see_other(PAGE, scheduled="1")


# --- the SDG 16.10.1 report ---------------------------------------------------------------

SDG_PROBLEMS: Final = {
    "country": N_("Country: choose a country."),
    "years": N_("Years: give the first and the last year, the first not after the last."),
}


@dataclass(frozen=True)
class SdgChoice:
    """What the visitor asked for; ``problem`` names what is wrong with it."""

    scope: str
    country: str
    from_year: str
    to_year: str
    problem: str | None = None
    coalition_id: str | None = None

    @property
    def coalition(self) -> bool:
        return self.scope == "coalition"

    def query(self) -> str:
        years = "" if self.coalition else f"&from={self.from_year}&to={self.to_year}"
        coalition = f"&coalition={quote(self.coalition_id, safe='')}" if self.coalition and \
            self.coalition_id else ""
        return f"?scope={self.scope}&country={self.country}{years}{coalition}"


def _sdg_choice(request: web.Request, this_year: int) -> SdgChoice:
    query = request.query
    scope = "coalition" if query.get("scope") == "coalition" else "own"
    country = query.get("country", "").strip().upper()
    first = query.get("from", str(this_year)).strip()
    last = query.get("to", str(this_year)).strip()
    problem = None
    if not is_country_code(country):
        problem = "country"
    elif scope == "own" and not (_is_year(first) and _is_year(last) and first <= last):
        problem = "years"
    return SdgChoice(scope, country, first, last, problem,
                     query.get("coalition", "").strip() or None)


def _is_year(text: str) -> bool:
    return len(text) == 4 and text.isdigit()


async def _sdg_rendering(request: web.Request, choice: SdgChoice) -> Rendering:
    node = web_context(request).node
    fmt = current_visit(request).fmt
    language: Language = fmt.typology_language
    if choice.coalition:
        coalition = _shown_coalition(await _known_coalitions(node), choice.coalition_id)
        found = coalition_sdg({} if coalition is None else
                              await coalition_aggregates(node, coalition.coalition_id),
                              choice.country)
        async with node.store.read() as tx:
            names = await tx.orgs.names()
        return coalition_rendering(found, language, names,
                                   when=lambda t: fmt.datetime(_when(t)))
    async with node.store.read() as tx:
        cases = [record.payload for record in await own_case_records(tx)]
    report = sdg_report(cases, country=choice.country, from_year=int(choice.from_year),
                        to_year=int(choice.to_year))
    return local_rendering(report, language, node.own.name)


def _title(choice: SdgChoice, language: Language) -> str:
    return TEXT[language]["coalition_title" if choice.coalition else "title"]


async def sdg_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    this_year = _when(ctx.now()).year
    asked = "country" in request.query
    choice = _sdg_choice(request, this_year)
    known = await _known_coalitions(ctx.node)
    problem = SDG_PROBLEMS.get(choice.problem or "") if asked else None
    rendering = None
    if asked and choice.problem is None:
        try:
            rendering = await _sdg_rendering(request, choice)
        except ReportError:
            problem = SDG_PROBLEMS["years"]
    language: Language = fmt.typology_language
    return render(
        request, "coalition/sdg.html", choice=choice,
        countries=fmt.countries(sorted(COUNTRY_CODES)),
        problem=fmt.gettext(problem) if problem else None,
        report=None if rendering is None else layout(rendering, language),
        title=_title(choice, language), generated=None,
        coalitions=known, coalition=_shown_coalition(known, choice.coalition_id),
    )


async def _sdg_download(request: web.Request, extension: str) -> web.StreamResponse:
    ctx = web_context(request)
    choice = _sdg_choice(request, _when(ctx.now()).year)
    if choice.problem is not None:
        return see_other(SDG_PAGE, **{k: v for k, v in request.query.items()
                                      if k in ("scope", "country", "from", "to",
                                               "coalition")})
    rendering = await _sdg_rendering(request, choice)
    language: Language = current_visit(request).fmt.typology_language
    name = f"minga-sdg-16-10-1-{choice.scope}-{choice.country}.{extension}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if extension == "csv":
        return web.Response(text=rendering_csv(rendering, language), content_type="text/csv",
                            charset="utf-8", headers=headers)
    return web.Response(text=rendering_html(rendering, language=language,
                                            title=_title(choice, language),
                                            generated_at=ctx.now()),
                        content_type="text/html", charset="utf-8", headers=headers)


async def sdg_csv(request: web.Request) -> web.StreamResponse:
    return await _sdg_download(request, "csv")


async def sdg_html(request: web.Request) -> web.StreamResponse:
    return await _sdg_download(request, "html")


ROUTES: Final = [
    PageRoute("GET", PAGE, figures_page),
    PageRoute("GET", SDG_PAGE, sdg_page),
    PageRoute("GET", SDG_PAGE + ".csv", sdg_csv),
    PageRoute("GET", SDG_PAGE + ".html", sdg_html),
    PageRoute("GET", PAGE + ".csv", figures_csv),
    PageRoute("POST", PAGE + "/publish", publish, Role.editor),
    PageRoute("POST", PAGE + "/schedule", schedule, Role.admin),
]
