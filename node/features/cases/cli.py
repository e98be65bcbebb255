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
from dataclasses import replace
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
    ImportPlan,
    ImportRejected,
    ImportReview,
    MappingError,
    RowDecision,
    RowProblem,
    RowStatus,
    SpreadsheetError,
    commit_import,
    identity_mapping,
    load_mapping,
    plan_import,
    read_spreadsheet,
    review_import,
)

IMPORT_AUTHOR = "minga import"
EXPORT_AUTHOR = "minga export"
_friendly = friendly(MappingError, SpreadsheetError)


# --- import ------------------------------------------------------------------------------

def _print_problems(problems: Sequence[RowProblem]) -> None:
    for problem in sorted(problems, key=lambda p: (p.row, p.column or "", p.field)):
        print(f"  {problem}", file=sys.stderr)


def describe_decision(decision: RowDecision) -> str:
    """One row's fate in a line: never a cell's content, only field names and the case id."""
    if decision.record_id is None:
        return f"row {decision.row}: new case"
    case = f"case {decision.record_id}"
    if decision.status is RowStatus.UPDATED:
        return f"row {decision.row}: updated, {case} ({', '.join(decision.changed)})"
    if decision.status is RowStatus.NEW:
        return f"row {decision.row}: new, {case}"
    if decision.status is RowStatus.UNCHANGED:
        return f"row {decision.row}: unchanged, {case}"
    return f"row {decision.row}: its case was {decision.status.value} since; left alone ({case})"


def describe_counts(review: ImportReview) -> str:
    counts = review.counts()
    return (f"{counts['new']} new, {counts['updated']} updated, {counts['unchanged']} unchanged,"
            f" {counts['skipped']} skipped")


def _report(review: ImportReview, *, as_json: bool, done: bool) -> None:
    plan = review.plan
    if as_json:
        print(json.dumps({
            "rows": plan.rows,
            "rows_with_problems": review.rows_with_problems(),
            "committed": done,
            **review.counts(),
            "outcomes": [{"row": d.row, "status": d.status.value, "record_id": d.record_id,
                          "changed_fields": list(d.changed)} for d in review.decisions],
            "warnings": list(plan.warnings),
            "problems": [vars(problem) for problem in review.problems],
            "ignored_columns": list(plan.ignored_columns),
        }, ensure_ascii=False, indent=2))
        return
    print(f"{plan.rows} row(s) read; {review.rows_with_problems()} with problems")
    if plan.ignored_columns:
        print("columns not imported: " + ", ".join(repr(c) for c in plan.ignored_columns))
    for decision in review.decisions:
        print(f"  {describe_decision(decision)}")
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_problems(review.problems)
    if done or not review.problems:
        print(f"{'imported' if done else 'would import'}: {describe_counts(review)}")


async def _import(args: argparse.Namespace, plan: ImportPlan) -> int:
    async with open_node(args.config) as node:
        if not args.dry_run:
            try:
                async with node.store.transaction() as tx:
                    done = await commit_import(tx, plan, issuer=node.org_id,
                                               author=IMPORT_AUTHOR, issued_at=unix_now())
            except ImportRejected as rejected:  # raised out of the transaction: nothing written
                rejected_problems: tuple[RowProblem, ...] = rejected.problems
            else:
                _report(done, as_json=args.json, done=True)
                return 0
        async with node.store.read() as tx:
            review = await review_import(tx, plan)
    if not args.dry_run:
        review = replace(review, problems=rejected_problems)
    _report(review, as_json=args.json, done=False)
    if review.problems:
        print("nothing was imported", file=sys.stderr)
    return 1 if review.problems else 0


@_friendly
def cmd_import(args: argparse.Namespace) -> int:
    mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    try:
        sheet = read_spreadsheet(Path(args.file), mapping)
    except OSError as error:
        raise CommandFailed(f"{args.file}: cannot read ({error.strerror})") from None
    chosen = mapping or identity_mapping(sheet.headers)
    return asyncio.run(_import(args, plan_import(sheet, chosen, today=utc_day(unix_now()))))


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
                          help="only check: list the problems and say of every row whether it"
                               " is new, updates a case or is unchanged; write nothing")
    importer.add_argument("--json", action="store_true", help="print the check as JSON")
    importer.set_defaults(handler=cmd_import)

    exporter = commands.add_parser("export", help="export this organisation's cases")
    exporter.add_argument("--format", choices=[f.value for f in ExportFormat], default="csv")
    exporter.add_argument("--hxl", action="store_true",
                          help="CSV: an HXL-tagged publication of what consent lets anyone see")
    exporter.add_argument("--out", help="file to write (default: standard output)")
    exporter.set_defaults(handler=cmd_export)

