"""Importing a spreadsheet from the web: upload it with its mapping, see what each row would do
(new, updated and which fields, unchanged, or left alone), then import.

The same :mod:`node.features.cases.importing` functions as ``minga import`` and the API do the
work. The checked files travel back in the preview form (base64 in hidden fields) so that
"Import" needs no second upload; the import checks them again before writing anything.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from typing import Final

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from node.core.store import Role
from node.core.web.context import current_visit, render, staff_of, web_context
from node.core.web.i18n import N_
from node.core.web.labels import CASE_FIELD_NAMES
from node.core.web.routes import PageRoute
from node.features.cases.casebook import utc_day
from node.features.cases.importing import (
    ImportMapping,
    ImportPlan,
    ImportRejected,
    ImportReview,
    MappingError,
    SpreadsheetError,
    commit_import,
    identity_mapping,
    parse_mapping,
    plan_import,
    read_csv,
    read_xlsx,
    review_import,
)

PAGE: Final = "/cases/import"
TEMPLATE: Final = "cases/import.html"
SPREADSHEET: Final = "spreadsheet"
MAPPING: Final = "mapping"
STATUS_LABELS: Final = {
    "new": N_("New case"),
    "updated": N_("Updates the case"),
    "unchanged": N_("Unchanged"),
    "deleted": N_("Its case was deleted since; left alone"),
    "retracted": N_("Its case was retracted since; left alone"),
}


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes

    @property
    def kept(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


Posted = MultiDictProxy[str | bytes | bytearray | FileField]


def _upload(posted: Posted, name: str) -> Upload | None:
    """The file chosen in the form, else the one the preview kept."""
    chosen = posted.get(name)
    if isinstance(chosen, FileField) and chosen.filename:
        return Upload(chosen.filename, chosen.file.read())
    kept, kept_name = posted.get(f"{name}_kept"), posted.get(f"{name}_name")
    if isinstance(kept, str) and kept and isinstance(kept_name, str) and kept_name:
        try:
            return Upload(kept_name, base64.b64decode(kept, validate=True))
        except (binascii.Error, ValueError):
            return None
    return None


def _mapping(upload: Upload | None) -> ImportMapping | None:
    if upload is None:
        return None
    try:
        text = upload.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"{upload.name}: not UTF-8 text") from None
    return parse_mapping(text, toml=upload.name.lower().endswith(".toml"), source=upload.name)


def _plan(spreadsheet: Upload, mapping_file: Upload | None, now: int) -> ImportPlan:
    """The plan of the uploaded files; ``MappingError`` or ``SpreadsheetError`` saying why not."""
    mapping = _mapping(mapping_file)
    suffix = spreadsheet.name.lower().rsplit(".", 1)[-1]
    if suffix == "xlsx":
        sheet = read_xlsx(spreadsheet.data, mapping)
    elif suffix in ("csv", "txt", "tsv"):
        sheet = read_csv(spreadsheet.data, mapping)
    else:
        raise SpreadsheetError(f"{spreadsheet.name}: only .csv and .xlsx spreadsheets can be"
                               " imported")
    return plan_import(sheet, mapping or identity_mapping(sheet.headers), today=utc_day(now))


async def import_page(request: web.Request) -> web.StreamResponse:
    return render(request, TEMPLATE, review=None, errors={})


async def check_or_import(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    posted = await request.post()
    spreadsheet, mapping_file = _upload(posted, SPREADSHEET), _upload(posted, MAPPING)
    if spreadsheet is None:
        message = visit.gettext(N_("Choose the spreadsheet to import."))
        return render(request, TEMPLATE, status=422, review=None, errors={SPREADSHEET: message})
    try:
        plan = _plan(spreadsheet, mapping_file, ctx.now())
    except (MappingError, SpreadsheetError) as error:
        field = MAPPING if isinstance(error, MappingError) and mapping_file else SPREADSHEET
        return render(request, TEMPLATE, status=422, review=None, errors={field: str(error)})
    done = False
    if posted.get("action") == "import":
        try:
            async with ctx.node.store.transaction() as tx:
                review = await commit_import(tx, plan, issuer=ctx.node.org_id,
                                             author=staff_of(request).username,
                                             issued_at=ctx.now())
            done = True
        except ImportRejected as rejected:  # raised out of the transaction: nothing written
            review = replace(await _review(request, plan), problems=rejected.problems)
    else:
        review = await _review(request, plan)
    return render(request, TEMPLATE, status=422 if review.problems else 200, review=review,
                  done=done, counts=review.counts(), errors={}, spreadsheet=spreadsheet,
                  mapping_file=mapping_file, status_labels=STATUS_LABELS,
                  field_names=CASE_FIELD_NAMES, no_key=bool(review.plan.warnings))


async def _review(request: web.Request, plan: ImportPlan) -> ImportReview:
    async with web_context(request).node.store.read() as tx:
        return await review_import(tx, plan)


ROUTES: Final = [
    PageRoute("GET", PAGE, import_page, Role.editor),
    PageRoute("POST", PAGE, check_or_import, Role.editor),
]
