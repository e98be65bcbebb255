"""Figures for advocacy over HTTP: aggregates and the SDG 16.10.1 report.

- ``GET /aggregates`` — the aggregate record this node would publish (small cells suppressed).
- ``GET /reports/sdg?country=CO&from=2020&to=2024`` — this node's 16.10.1 figures as JSON, small
  cells suppressed and listed with the reason (the coalition's: ``GET /coalition/reports/sdg``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from node.core.api.framework import Call, Endpoint, FieldProblem, NoBody, invalid
from node.core.api.times import Time
from node.core.runtime import Node
from node.features.cases import (
    own_case_records,
)
from node.features.figures.aggregates import Granularity, build_aggregate, period_between
from node.features.figures.sdg_report import SdgReport, sdg_report
from schemas.case import Case
from schemas.countries import CountryCode
from schemas.dates import DateSpan, PartialDateError, PartialDateText
from schemas.payloads import Aggregate, OverlapReport

TAGS = ("advocacy",)


class OverlapReportView(OverlapReport):
    as_of: Time


class AggregateView(Aggregate):
    """An aggregate record as the API shows it: times in ISO 8601."""

    as_of: Time
    overlap: OverlapReportView | None = None

    @classmethod
    def of(cls, aggregate: Aggregate) -> AggregateView:
        return cls.model_validate(aggregate.model_dump(mode="python", by_alias=False))


class AggregateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    granularity: Granularity = Granularity.YEAR
    date_from: PartialDateText | None = Field(default=None,
                                              description="count cases that started from then")
    date_to: PartialDateText | None = None

    def period(self, cases: list[Case]) -> DateSpan | None:
        try:
            return period_between(cases, self.date_from, self.date_to)
        except PartialDateError as error:
            raise invalid([FieldProblem(field="query.date_to", problem=str(error))]) from None


class SdgQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    country: CountryCode
    from_year: int = Field(alias="from", ge=1, le=9999)
    to_year: int = Field(alias="to", ge=1, le=9999)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.from_year > self.to_year:
            raise ValueError("to: must not be before from")
        return self


class AdvocacyEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def _cases(self) -> list[Case]:
        async with self._node.store.read() as tx:
            return [record.payload for record in await own_case_records(tx)]

    async def show_aggregates(self, call: Call[NoBody, AggregateQuery]) -> AggregateView:
        cases = await self._cases()
        return AggregateView.of(build_aggregate(
            cases, as_of=self._now(), granularity=call.query.granularity,
            period=call.query.period(cases)))

    async def sdg_report(self, call: Call[NoBody, SdgQuery]) -> SdgReport:
        query = call.query
        return sdg_report(await self._cases(), country=query.country,
                          from_year=query.from_year, to_year=query.to_year)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/aggregates", self.show_aggregates,
                     "Aggregate figures of this node's cases, small cells suppressed",
                     query=AggregateQuery, response=AggregateView, tags=TAGS),
            Endpoint("GET", "/reports/sdg", self.sdg_report,
                     "SDG indicator 16.10.1 figures of this node's cases for a country and"
                     " period, small cells suppressed",
                     query=SdgQuery, response=SdgReport, tags=TAGS),
        ]
