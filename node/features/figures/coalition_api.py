"""Aggregate figures across the coalition over HTTP (issue M9).

- ``POST /aggregates/publish`` (``{"coalition": ID}``, or ``{}``) — build this node's aggregate
  now and send it to every member of that coalition (with the latest overlap estimate; a fresh
  one is gathered and published after it).
- ``GET|PUT /aggregates/schedule`` — how often the node publishes by itself (admins).
- ``GET /coalition/aggregates`` — the sums of every member's latest aggregate, with bounds
  where members suppressed small cells, the contributing members and as of when.
- ``GET /coalition/aggregates/csv`` — the same figures as a CSV file.
- ``GET /coalition/reports/sdg?country=CO`` — the SDG 16.10.1 report of every member together,
  made from the figures they published (ranges where members hid small counts).

Figures are per coalition (decision 0032): each of these takes ``coalition`` (in the body to
publish, in the query to read), needed only when the node is in several (a coalition it left
may be read, not published to); an unknown one is a 422 naming that field. The figures of one
coalition are made only from what came through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field

from node.core.api.answers import sharing_answers
from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    FileAnswer,
    NoBody,
    NoQuery,
    invalid,
    setting_endpoints,
)
from node.core.api.organisations import OrganisationNames, known_names, named
from node.core.api.times import Time
from node.core.runtime import CoalitionNotChosen, Node
from node.core.store import Role
from node.features.figures.aggregates import CoalitionFigure
from node.features.figures.api import AggregateView
from node.features.figures.coalition_sdg import (
    CoalitionSdgReport,
    coalition_report,
    coalition_sdg,
)
from node.features.figures.coalition_view import CoalitionView, coalition_view, shown, view_csv
from node.features.figures.overlap import DistinctCases
from node.features.figures.publishing import (
    NotInCoalition,
    PublicationSchedule,
    coalition_aggregates,
    figures_coalition,
    publication_schedule,
    publish_aggregate,
    set_publication_schedule,
)
from schemas.common import CoalitionId
from schemas.countries import CountryCode

TAGS = ("advocacy",)
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


_COALITION = Field(default=None, description="the coalition (decision 0032); needed only when "
                   "this node is in several")


class CoalitionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coalition: CoalitionId | None = _COALITION


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coalition: CoalitionId | None = _COALITION


@contextmanager
def coalition_answers(field: str = "query.coalition") -> Iterator[None]:
    """A coalition not chosen, or not this node's, as a 422 naming ``field``."""
    try:
        yield
    except CoalitionNotChosen as error:
        raise invalid([FieldProblem(field=field, problem=str(error))], str(error)) from None
    except NotInCoalition as error:
        raise ApiError(409, "no_coalition", str(error)) from None


class PublicationView(BaseModel):
    record_id: str
    coalition: str | None = Field(default=None, description="the coalition it went to")
    recipients: list[str] = Field(description="members the aggregate was sent to")
    aggregate: AggregateView
    organisations: OrganisationNames = {}


class ContributorView(BaseModel):
    org_id: str
    as_of: Time = Field(description="when the member's latest aggregate was computed")
    period: str


class FigureView(BaseModel):
    dimensions: dict[str, str]
    low: int = Field(description="the sum is at least this")
    high: int | None = Field(description="and at most this (null: unknown)")
    shown: str = Field(description="how the sum may be displayed; never a count under 5")
    members: list[str] = Field(description="members who count something here")


class DistinctCasesView(BaseModel):
    counted: FigureView = Field(description="members' case counts added up")
    shared_low: int = Field(description="cases counted by more than one member: at least this")
    shared_high: int | None = Field(description="and at most this (null: unknown)")
    distinct: FigureView = Field(description="the case count with shared cases counted once")
    estimated_by: list[str] = Field(description="members whose overlap estimate is used")
    unknown: list[str] = Field(description="members whose overlap is not known")


class CoalitionFigures(BaseModel):
    coalition: str | None = Field(default=None, description="the coalition these figures are of")
    contributors: list[ContributorView]
    figures: list[FigureView]
    distinct_cases: DistinctCasesView | None = Field(
        description="the case count with cases documented by several members counted once")
    organisations: OrganisationNames = {}


def _figure(figure: CoalitionFigure) -> FigureView:
    return FigureView(dimensions=dict(figure.dimensions), low=figure.low, high=figure.high,
                      shown=shown(figure), members=list(figure.members))


def _distinct(found: DistinctCases | None) -> DistinctCasesView | None:
    if found is None:
        return None
    return DistinctCasesView(counted=_figure(found.counted), shared_low=found.shared_low,
                             shared_high=found.shared_high, distinct=_figure(found.distinct),
                             estimated_by=list(found.estimated_by), unknown=list(found.unknown))


def figures_view(view: CoalitionView, names: Mapping[str, str],
                 coalition_id: str | None = None) -> CoalitionFigures:
    mentioned = [*(c.org_id for c in view.contributors),
                 *(m for f in view.figures for m in f.members)]
    if view.distinct is not None:
        mentioned += [*view.distinct.estimated_by, *view.distinct.unknown]
    return CoalitionFigures(
        coalition=coalition_id,
        contributors=[ContributorView(org_id=c.org_id, as_of=c.as_of, period=c.period)
                      for c in view.contributors],
        figures=[_figure(f) for f in view.figures],
        distinct_cases=_distinct(view.distinct), organisations=named(mentioned, names))


class CoalitionSdgQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: CountryCode
    coalition: CoalitionId | None = _COALITION


class CoalitionViewEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def publish(self, call: Call[PublishRequest, NoQuery]) -> PublicationView:
        with sharing_answers(), coalition_answers("body.coalition"):
            done = await publish_aggregate(self._node, actor=call.principal.user,
                                           now=self._now(), coalition_id=call.body.coalition)
        return PublicationView(record_id=done.record_id, coalition=done.coalition_id,
                               recipients=list(done.recipients),
                               aggregate=AggregateView.of(done.aggregate),
                               organisations=named(done.recipients, await known_names(self._node)))

    async def _view(self, coalition_id: str | None) -> tuple[CoalitionView, str]:
        with coalition_answers():
            coalition = await figures_coalition(self._node, coalition_id)
        return (coalition_view(await coalition_aggregates(self._node, coalition.coalition_id)),
                coalition.coalition_id)

    async def figures(self, call: Call[NoBody, CoalitionQuery]) -> CoalitionFigures:
        view, coalition_id = await self._view(call.query.coalition)
        return figures_view(view, await known_names(self._node), coalition_id)

    async def sdg_report(self, call: Call[NoBody, CoalitionSdgQuery]) -> CoalitionSdgReport:
        with coalition_answers():
            coalition = await figures_coalition(self._node, call.query.coalition)
        found = coalition_sdg(await coalition_aggregates(self._node, coalition.coalition_id),
                              call.query.country)
        return coalition_report(found, await known_names(self._node))

    async def csv(self, call: Call[NoBody, CoalitionQuery]) -> FileAnswer:
        view, _ = await self._view(call.query.coalition)
        return FileAnswer(view_csv(view).encode(), CSV_MEDIA_TYPE,
                          "minga-coalition-figures.csv")

    def endpoints(self) -> list[Endpoint]:
        return [
            *setting_endpoints(
                "/aggregates/schedule", PublicationSchedule,
                lambda: publication_schedule(self._node),
                lambda chosen, actor: set_publication_schedule(self._node, chosen, actor=actor),
                read="How often this node publishes its figures by itself",
                change="Change how often this node publishes its figures by itself", tags=TAGS),
            Endpoint("POST", "/aggregates/publish", self.publish,
                     "Publish this node's aggregate figures to every member of a coalition",
                     Role.editor, body=PublishRequest, response=PublicationView,
                     errors=(409, 422), tags=TAGS),
            Endpoint("GET", "/coalition/aggregates", self.figures,
                     "Sums of every member's latest aggregate figures in a coalition, with bounds",
                     query=CoalitionQuery, response=CoalitionFigures, errors=(409, 422),
                     tags=TAGS),
            Endpoint("GET", "/coalition/aggregates/csv", self.csv,
                     "A coalition's aggregate figures as CSV", query=CoalitionQuery,
                     files=(CSV_MEDIA_TYPE,), errors=(409, 422), tags=TAGS),
            Endpoint("GET", "/coalition/reports/sdg", self.sdg_report,
                     "SDG indicator 16.10.1 figures of every member for a country, from the"
                     " figures members published, as ranges where they hid small counts",
                     query=CoalitionSdgQuery, response=CoalitionSdgReport, errors=(409, 422),
                     tags=TAGS),
        ]
