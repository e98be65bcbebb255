"""``minga import`` and ``minga export``: cases from and to spreadsheets and files (issue M9).

Each handler returns the exit status: 0 done, 1 the input has problems (listed, nothing
written), 2 the command could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.core.cli_support import CommandFailed, friendly, unix_now, write_output
from node.core.runtime import open_node
from node.features.cases.casebook import utc_day
from node.features.cases.exporting import (
    CASES_EXPORTED,
    ExportedText,
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

IMPORT_AUTHOR = "minga import"
EXPORT_AUTHOR = "minga export"
_friendly = friendly(MappingError, SpreadsheetError)


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
                                     issued_at=unix_now())
    print(f"imported {len(stored)} case(s)")
    return 0


@_friendly
def cmd_import(args: argparse.Namespace) -> int:
    mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    try:
        sheet = read_spreadsheet(Path(args.file), mapping)
    except OSError as error:
        raise CommandFailed(f"{args.file}: cannot read ({error.strerror})") from None
    chosen = mapping or identity_mapping(sheet.headers)
    plan = plan_import(sheet, chosen, today=utc_day(unix_now()))
    try:
        return asyncio.run(_import(args, chosen, plan))
    except ImportRejected as error:
        print(f"minga: {error}", file=sys.stderr)
        _print_problems(error.problems)
        return 1


# --- export ------------------------------------------------------------------------------

async def _export(config: str | None, export_format: ExportFormat, hxl: bool) -> ExportedText:
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
        raise CommandFailed("--hxl: only a CSV export has a hashtag row")
    if export_format is ExportFormat.JSON_SCHEMA:
        write_output(export_text([], export_format).text, args.out, plaintext=False)
        return 0
    exported = asyncio.run(_export(args.config, export_format, args.hxl))
    write_output(exported.text, args.out, plaintext=True, bom=export_format is ExportFormat.CSV)
    if exported.withheld is not None:
        print(f"published only what consent allows anyone to see; {exported.withheld.describe()}",
              file=sys.stderr)
    return 0


def add_commands(commands: Any) -> None:
    """Add ``import`` and ``export`` to ``minga``'s sub-command parsers."""
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
    exporter.add_argument("--hxl", action="store_true",
                          help="CSV: an HXL-tagged publication of what consent lets anyone see")
    exporter.add_argument("--out", help="file to write (default: standard output)")
    exporter.set_defaults(handler=cmd_export)

