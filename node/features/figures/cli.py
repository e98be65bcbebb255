"""``minga import``, ``export``, ``report sdg``, ``aggregates show|publish|schedule`` and
``backup`` (issue M9).

:func:`add_commands` adds them to the ``minga`` parser; each handler returns the exit status:
0 done, 1 the input has problems (listed, nothing written), 2 the command could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from node.core.config import ConfigError, load_config
from node.core.runtime import config_path, open_node, read_passphrase
from node.core.sharing import SharingError
from node.features.backup.service import BackupError, create_backup, restore_backup
from node.features.cases.exporting import (
    CASES_EXPORTED,
    ExportFormat,
    export_text,
    own_case_records,
)
from node.features.cases.importing import (
    ImportMapping,
    ImportPlan,
    ImportRejected,
    MappingError,
    RowProblem,
    SpreadsheetError,
    commit_import,
    existing_record_problems,
    identity_mapping,
    load_mapping,
    plan_import,
    read_spreadsheet,
)
from node.features.figures.aggregates import (
    Granularity,
    build_aggregate,
    period_between,
    render_aggregate,
)
from node.features.figures.publishing import (
    NotInCoalition,
    Publication,
    PublicationSchedule,
    publication_schedule,
    publish_aggregate,
    set_publication_schedule,
)
from node.features.figures.sdg_report import ReportError, report_csv, report_html, sdg_report
from schemas.case import Case
from schemas.countries import is_country_code
from schemas.dates import DateSpan, PartialDateError
from schemas.errors import validation_problems
from schemas.typology import Language, Vocabulary, is_code, label

Handler = Callable[[argparse.Namespace], int]
IMPORT_AUTHOR = "minga import"
PUBLISH_AUTHOR = "minga aggregates"
EXPORT_AUTHOR = "minga export"
PLAINTEXT_WARNING = "This file holds case content in plain text: keep it somewhere safe."

_VOCABULARY_OF_DIMENSION = {
    "impunity_status": Vocabulary.IMPUNITY_STATUS,
    "violation": Vocabulary.VIOLATION,
    "victim_group": Vocabulary.VICTIM_GROUP,
    "perpetrator_category": Vocabulary.PERPETRATOR_CATEGORY,
}


class _Failed(Exception):
    """A problem the user can fix, printed as one line."""


def _friendly(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (_Failed, MappingError, SpreadsheetError, BackupError, ReportError) as error:
            print(f"minga: {error}", file=sys.stderr)
            return 2

    return run


def _now() -> int:
    return int(time.time())


def _write_output(text: str, out: str | None, *, plaintext: bool, bom: bool = False) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    path = Path(out)
    if path.exists():
        raise _Failed(f"--out: {out} already exists; choose a new file name")
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    print(f"wrote {out}", file=sys.stderr)
    if plaintext:
        print(PLAINTEXT_WARNING, file=sys.stderr)


async def _own_cases(config: str | None) -> list[Case]:
    async with open_node(config) as node, node.store.read() as tx:
        return [record.payload for record in await own_case_records(tx)]


# --- import ------------------------------------------------------------------------------

def _print_problems(problems: Sequence[RowProblem]) -> None:
    for problem in sorted(problems, key=lambda p: (p.row, p.column or "", p.field)):
        print(f"  {problem}", file=sys.stderr)


def _report_plan(plan: ImportPlan, problems: Sequence[RowProblem], as_json: bool) -> None:
    bad_rows = len(plan.rows_with_problems(problems))
    if as_json:
        print(json.dumps({
            "rows": plan.rows,
            "rows_with_problems": bad_rows,
            "problems": [vars(problem) for problem in problems],
            "ignored_columns": list(plan.ignored_columns),
        }, ensure_ascii=False, indent=2))
        return
    print(f"{plan.rows} row(s) read; {bad_rows} with problems")
    if plan.ignored_columns:
        print("columns not imported: " + ", ".join(repr(c) for c in plan.ignored_columns))
    _print_problems(problems)


async def _import(args: argparse.Namespace, mapping: ImportMapping, plan: ImportPlan) -> int:
    async with open_node(args.config) as node, node.store.transaction() as tx:
        problems = [*plan.problems, *await existing_record_problems(tx, plan)]
        _report_plan(plan, problems, args.json)
        if args.dry_run or problems:
            if problems:
                print("nothing was imported", file=sys.stderr)
            return 1 if problems else 0
        stored = await commit_import(tx, plan, issuer=node.org_id, author=IMPORT_AUTHOR,
                                     issued_at=_now())
    print(f"imported {len(stored)} case(s)")
    return 0


@_friendly
def cmd_import(args: argparse.Namespace) -> int:
    mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    try:
        sheet = read_spreadsheet(Path(args.file), mapping)
    except OSError as error:
        raise _Failed(f"{args.file}: cannot read ({error.strerror})") from None
    chosen = mapping or identity_mapping(sheet.headers)
    plan = plan_import(sheet, chosen)
    try:
        return asyncio.run(_import(args, chosen, plan))
    except ImportRejected as error:
        print(f"minga: {error}", file=sys.stderr)
        _print_problems(error.problems)
        return 1


# --- export ------------------------------------------------------------------------------

async def _export(config: str | None, export_format: ExportFormat, hxl: bool) -> str:
    async with open_node(config) as node:
        async with node.store.read() as tx:
            records = await own_case_records(tx)
        async with node.store.transaction() as tx:
            await tx.audit.append(EXPORT_AUTHOR, CASES_EXPORTED,
                                  details={"format": export_format.value, "count": len(records)})
    return export_text(records, export_format, hxl=hxl)


@_friendly
def cmd_export(args: argparse.Namespace) -> int:
    export_format = ExportFormat(args.format)
    if args.hxl and export_format is not ExportFormat.CSV:
        raise _Failed("--hxl: only a CSV export has a hashtag row")
    if export_format is ExportFormat.JSON_SCHEMA:
        _write_output(export_text([], export_format), args.out, plaintext=False)
        return 0
    text = asyncio.run(_export(args.config, export_format, args.hxl))
    _write_output(text, args.out, plaintext=True, bom=export_format is ExportFormat.CSV)
    return 0


# --- report sdg --------------------------------------------------------------------------

async def _cases_and_name(config: str | None) -> tuple[list[Case], str]:
    async with open_node(config) as node, node.store.read() as tx:
        records = await own_case_records(tx)
        return [record.payload for record in records], node.own.name


@_friendly
def cmd_report_sdg(args: argparse.Namespace) -> int:
    country = args.country.upper()
    if not is_country_code(country):
        raise _Failed(f"--country: {args.country!r} is not an ISO 3166-1 alpha-2 code")
    cases, organisation = asyncio.run(_cases_and_name(args.config))
    report = sdg_report(cases, country=country, from_year=args.from_year, to_year=args.to_year)
    language: Language = args.language
    if args.format == "csv":
        text = report_csv(report, language)
    else:
        text = report_html(report, language=language, generated_at=_now(),
                           organisation=organisation)
    _write_output(text, args.out, plaintext=False, bom=args.format == "csv")
    return 0


# --- aggregates show ---------------------------------------------------------------------

def _period(cases: list[Case], first: str | None, last: str | None) -> DateSpan | None:
    try:
        return period_between(cases, first, last)
    except PartialDateError as error:
        raise _Failed(f"--from/--to: {error}") from None


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
    aggregate = build_aggregate(cases, as_of=_now(), granularity=Granularity(args.by),
                                period=_period(cases, args.first, args.last))
    if args.json:
        print(aggregate.model_dump_json(indent=2))
    else:
        print(render_aggregate(aggregate, _labeller(args.language)), end="")
    return 0


@_friendly
def cmd_aggregates_publish(args: argparse.Namespace) -> int:
    publication = asyncio.run(_publish(args.config))
    print(f"queued aggregate {publication.record_id} for {len(publication.recipients)} member(s);"
          " the node sends it while `minga run` is running")
    return 0


async def _publish(config: str | None) -> Publication:
    async with open_node(config) as node:
        try:
            return await publish_aggregate(node, actor=PUBLISH_AUTHOR, now=_now())
        except (NotInCoalition, SharingError) as error:
            raise _Failed(str(error)) from None


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
                raise _Failed("--every-days: " + validation_problems(error)[0].problem) from None
            await set_publication_schedule(node, chosen, actor=PUBLISH_AUTHOR)
        return (await publication_schedule(node)).every_days


# --- backup ------------------------------------------------------------------------------

@_friendly
def cmd_backup_create(args: argparse.Namespace) -> int:
    config_file = config_path(args.config)
    passphrase = read_passphrase(_passphrase_file(config_file))
    summary = create_backup(config_file, Path(args.file), passphrase, created_at=_now())
    print(f"wrote {summary.path}: {len(summary.files)} file(s), encrypted with the node"
          " passphrase")
    for name in summary.excluded:
        print(f"  not included: {name} (the passphrase file)")
    return 0


def _passphrase_file(config_file: Path) -> Path | None:
    try:
        return load_config(config_file).node.passphrase_file
    except ConfigError as error:
        raise _Failed(str(error)) from None


@_friendly
def cmd_backup_restore(args: argparse.Namespace) -> int:
    passphrase = read_passphrase(None)
    summary = asyncio.run(restore_backup(Path(args.file), Path(args.data_dir), passphrase))
    print(f"restored the node of organisation {summary.org_id} into {summary.data_dir}")
    if summary.config_file is not None:
        print(f"  start it with: minga --config {summary.config_file} run")
    for warning in summary.warnings:
        print(f"  warning: {warning}")
    return 0


# --- the parser --------------------------------------------------------------------------

def _year(text: str) -> int:
    if len(text) != 4 or not text.isdigit():
        raise argparse.ArgumentTypeError("must be a year written YYYY")
    return int(text)


def add_commands(commands: Any) -> None:
    """Add the M9 commands to ``minga``'s sub-command parsers (``add_subparsers()``)."""
    importer = commands.add_parser("import", help="import cases from a CSV or XLSX spreadsheet")
    importer.add_argument("file", help="the .csv or .xlsx file")
    importer.add_argument("--mapping", help="JSON or TOML file saying which column is which"
                                            " field (not needed for Minga's own CSV export)")
    importer.add_argument("--dry-run", action="store_true",
                          help="only check every row and list the problems; write nothing")
    importer.add_argument("--json", action="store_true", help="print the check as JSON")
    importer.set_defaults(handler=cmd_import)

    exporter = commands.add_parser("export", help="export this organisation's cases")
    exporter.add_argument("--format", choices=[f.value for f in ExportFormat], default="csv")
    exporter.add_argument("--hxl", action="store_true", help="CSV: add an HXL hashtag row")
    exporter.add_argument("--out", help="file to write (default: standard output)")
    exporter.set_defaults(handler=cmd_export)

    report = commands.add_parser("report", help="reports over this organisation's cases")
    reports = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    sdg = reports.add_parser("sdg", help="SDG indicator 16.10.1 for a country and period")
    sdg.add_argument("--country", required=True, help="ISO 3166 code, e.g. CO")
    sdg.add_argument("--from", dest="from_year", type=_year, required=True, help="first year")
    sdg.add_argument("--to", dest="to_year", type=_year, required=True, help="last year")
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
        "publish", help="send this node's figures to every member now")
    publish.set_defaults(handler=cmd_aggregates_publish)
    schedule = aggregate_actions.add_parser(
        "schedule", help="show or set how often the figures are published automatically")
    schedule.add_argument("--every-days", type=int, metavar="DAYS",
                          help="publish every DAYS days; 0: only on demand")
    schedule.set_defaults(handler=cmd_aggregates_schedule)

    backup = commands.add_parser("backup", help="encrypted backups of the whole node")
    backup_actions = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = backup_actions.add_parser("create", help="write the whole node to one file")
    create.add_argument("file", help="the backup file to create")
    create.set_defaults(handler=cmd_backup_create)
    restore = backup_actions.add_parser("restore", help="restore a backup on this machine")
    restore.add_argument("file", help="the backup file")
    restore.add_argument("--data-dir", required=True,
                         help="new or empty directory for the restored node")
    restore.set_defaults(handler=cmd_backup_restore)
