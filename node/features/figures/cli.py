"""``minga report sdg`` and ``minga aggregates show|publish|schedule`` (issue M9).

:func:`add_commands` adds them to the ``minga`` parser; each handler returns the exit status:
0 done, 2 the command could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from node.core.cli_support import CommandFailed, friendly, unix_now, write_output
from node.core.runtime import CoalitionNotChosen, open_node
from node.core.sharing import SharingError
from node.features.cases import own_case_records
from node.features.figures.aggregates import (
    Granularity,
    build_aggregate,
    period_between,
    render_aggregate,
)
from node.features.figures.coalition_sdg import CoalitionSdg, coalition_rendering, coalition_sdg
from node.features.figures.publishing import (
    NotInCoalition,
    Publication,
    PublicationSchedule,
    coalition_aggregates,
    figures_coalition,
    publication_schedule,
    publish_aggregate,
    set_publication_schedule,
)
from node.features.figures.sdg_report import (
    TEXT,
    Rendering,
    ReportError,
    local_rendering,
    rendering_csv,
    rendering_html,
    sdg_report,
)
from schemas.case import Case
from schemas.countries import is_country_code
from schemas.dates import DateSpan, PartialDateError
from schemas.errors import validation_problems
from schemas.typology import Language, Vocabulary, is_code, label

PUBLISH_AUTHOR = "minga aggregates"

_VOCABULARY_OF_DIMENSION = {
    "impunity_status": Vocabulary.IMPUNITY_STATUS,
    "violation": Vocabulary.VIOLATION,
    "victim_group": Vocabulary.VICTIM_GROUP,
    "perpetrator_category": Vocabulary.PERPETRATOR_CATEGORY,
}


_friendly = friendly(ReportError)


async def _own_cases(config: str | None) -> list[Case]:
    async with open_node(config) as node, node.store.read() as tx:
        return [record.payload for record in await own_case_records(tx)]


# --- report sdg --------------------------------------------------------------------------

async def _cases_and_name(config: str | None) -> tuple[list[Case], str]:
    async with open_node(config) as node, node.store.read() as tx:
        records = await own_case_records(tx)
        return [record.payload for record in records], node.own.name


async def _coalition(config: str | None, country: str, coalition_id: str | None
                     ) -> tuple[CoalitionSdg, dict[str, str]]:
    async with open_node(config) as node:
        try:
            coalition = await figures_coalition(node, coalition_id)
        except (NotInCoalition, CoalitionNotChosen) as error:
            raise CommandFailed(f"--{error}" if isinstance(error, CoalitionNotChosen)
                                else str(error)) from None
        aggregates = await coalition_aggregates(node, coalition.coalition_id)
        async with node.store.read() as tx:
            names = await tx.orgs.names()
    return coalition_sdg(aggregates, country), names


def _own_rendering(args: argparse.Namespace, country: str, language: Language) -> Rendering:
    if args.from_year is None or args.to_year is None:
        raise CommandFailed("--from and --to: both are needed for this organisation's report")
    cases, organisation = asyncio.run(_cases_and_name(args.config))
    report = sdg_report(cases, country=country, from_year=args.from_year, to_year=args.to_year)
    if report.suppressed:
        print(f"{len(report.suppressed)} figure(s) suppressed so that no count under"
              f" {report.small_limit} can be read or worked out:", file=sys.stderr)
        for figure in report.suppressed:
            print(f"  {figure.figure}: {figure.explanation}", file=sys.stderr)
    return local_rendering(report, language, organisation)


def _coalition_rendering(args: argparse.Namespace, country: str,
                         language: Language) -> Rendering:
    if args.from_year is not None or args.to_year is not None:
        raise CommandFailed("--from/--to: the coalition's report covers the periods members"
                            " published; leave them out")
    found, names = asyncio.run(_coalition(args.config, country, args.coalition))
    rendering = coalition_rendering(found, language, names)
    for note in rendering.notes[1:]:
        print(note, file=sys.stderr)
    return rendering


@_friendly
def cmd_report_sdg(args: argparse.Namespace) -> int:
    country = args.country.upper()
    if not is_country_code(country):
        raise CommandFailed(f"--country: {args.country!r} is not an ISO 3166-1 alpha-2 code")
    language: Language = args.language
    coalition = args.scope == "coalition"
    rendering = (_coalition_rendering if coalition else _own_rendering)(args, country, language)
    if args.format == "csv":
        text = rendering_csv(rendering, language)
    else:
        title = TEXT[language]["coalition_title" if coalition else "title"]
        text = rendering_html(rendering, language=language, title=title,
                              generated_at=unix_now())
    write_output(text, args.out, plaintext=False, bom=args.format == "csv")
    return 0


# --- aggregates show ---------------------------------------------------------------------

def _period(cases: list[Case], first: str | None, last: str | None) -> DateSpan | None:
    try:
        return period_between(cases, first, last)
    except PartialDateError as error:
        raise CommandFailed(f"--from/--to: {error}") from None


def _labeller(language: Language) -> Callable[[str, str], str]:
    def name(dimension: str, code: str) -> str:
        vocabulary = _VOCABULARY_OF_DIMENSION.get(dimension)
        if vocabulary is not None and is_code(vocabulary, code):
            return label(vocabulary, code, language)
        return code

    return name


@_friendly
def cmd_aggregates_show(args: argparse.Namespace) -> int:
    cases = asyncio.run(_own_cases(args.config))
    aggregate = build_aggregate(cases, as_of=unix_now(), granularity=Granularity(args.by),
                                period=_period(cases, args.first, args.last))
    if args.json:
        print(aggregate.model_dump_json(indent=2))
    else:
        print(render_aggregate(aggregate, _labeller(args.language)), end="")
    return 0


@_friendly
def cmd_aggregates_publish(args: argparse.Namespace) -> int:
    publication = asyncio.run(_publish(args.config, args.coalition))
    print(f"queued aggregate {publication.record_id} for {len(publication.recipients)} member(s);"
          " the node sends it while `minga run` is running")
    return 0


async def _publish(config: str | None, coalition_id: str | None) -> Publication:
    async with open_node(config) as node:
        try:
            return await publish_aggregate(node, actor=PUBLISH_AUTHOR, now=unix_now(),
                                           coalition_id=coalition_id)
        except CoalitionNotChosen as error:
            raise CommandFailed(f"--{error}") from None
        except (NotInCoalition, SharingError) as error:
            raise CommandFailed(str(error)) from None


@_friendly
def cmd_aggregates_schedule(args: argparse.Namespace) -> int:
    every = asyncio.run(_schedule(args.config, args.every_days))
    print("figures are published only on demand" if every == 0
          else f"figures are published every {every} day(s)")
    return 0


async def _schedule(config: str | None, every_days: int | None) -> int:
    async with open_node(config) as node:
        if every_days is not None:
            try:
                chosen = PublicationSchedule(every_days=every_days)
            except ValidationError as error:
                problem = validation_problems(error)[0].problem
                raise CommandFailed("--every-days: " + problem) from None
            await set_publication_schedule(node, chosen, actor=PUBLISH_AUTHOR)
        return (await publication_schedule(node)).every_days


# --- the parser --------------------------------------------------------------------------

def _year(text: str) -> int:
    if len(text) != 4 or not text.isdigit():
        raise argparse.ArgumentTypeError("must be a year written YYYY")
    return int(text)


def add_commands(commands: Any) -> None:
    """Add ``report sdg`` and ``aggregates`` to ``minga``'s sub-command parsers."""
    report = commands.add_parser("report", help="reports over this organisation's cases")
    reports = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    sdg = reports.add_parser(
        "sdg", help="SDG indicator 16.10.1 for a country (small counts suppressed)")
    sdg.add_argument("--country", required=True, help="ISO 3166 code, e.g. CO")
    sdg.add_argument("--scope", choices=["own", "coalition"], default="own",
                     help="this organisation's cases (default), or every member's published"
                          " figures")
    sdg.add_argument("--from", dest="from_year", type=_year,
                     help="first year (this organisation's report)")
    sdg.add_argument("--to", dest="to_year", type=_year,
                     help="last year (this organisation's report)")
    sdg.add_argument("--coalition", metavar="ID",
                     help="with --scope coalition: the coalition whose members' figures to use"
                          " (needed only when this node is in several)")
    sdg.add_argument("--format", choices=["csv", "html"], default="html")
    sdg.add_argument("--language", choices=["en", "es"], default="en")
    sdg.add_argument("--out", help="file to write (default: standard output)")
    sdg.set_defaults(handler=cmd_report_sdg)

    aggregates = commands.add_parser("aggregates", help="aggregate figures for advocacy")
    aggregate_actions = aggregates.add_subparsers(dest="action", required=True,
                                                  metavar="ACTION")
    show = aggregate_actions.add_parser("show", help="the figures this node would publish")
    show.add_argument("--by", choices=[g.value for g in Granularity], default="year",
                      help="count periods by year or by quarter")
    show.add_argument("--from", dest="first", help="first year (or YYYY-MM)")
    show.add_argument("--to", dest="last", help="last year (or YYYY-MM)")
    show.add_argument("--language", choices=["en", "es"], default="en")
    show.add_argument("--json", action="store_true", help="print the aggregate record")
    show.set_defaults(handler=cmd_aggregates_show)
    publish = aggregate_actions.add_parser(
        "publish", help="send this node's figures to every member of a coalition now")
    publish.add_argument("--coalition", metavar="ID",
                         help="the coalition to publish to (needed only when this node is in"
                              " several)")
    publish.set_defaults(handler=cmd_aggregates_publish)
    schedule = aggregate_actions.add_parser(
        "schedule", help="show or set how often the figures are published automatically")
    schedule.add_argument("--every-days", type=int, metavar="DAYS",
                          help="publish every DAYS days; 0: only on demand")
    schedule.set_defaults(handler=cmd_aggregates_schedule)

