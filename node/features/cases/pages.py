"""The organisation's cases: list with search and filters, the form (new and edit), the detail
page with version and sharing history, and deletion.

Writes go through :mod:`node.features.cases.casebook` (the functions the API uses), so the web and
the API
store, version and audit cases the same way. Opening a case is audited (``case.view``): who
looked at which defender's case is worth knowing after a leak.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from federation.consent import shareable_with_members
from node.core.store import (
    InvalidCursor,
    InvalidRecordId,
    RecordDeleted,
    RecordNotFound,
    Role,
    StoredCase,
    StoreTransaction,
    VersionConflict,
)
from node.core.store.coalitions import Coalition
from node.core.store.shares import ShareRepository
from node.core.web.context import (
    Visit,
    current_visit,
    form_data,
    render,
    see_other,
    staff_of,
    web_context,
)
from node.core.web.i18n import N_, Formatter
from node.core.web.labels import CASE_FIELD_NAMES
from node.core.web.presenters import (
    case_heading,
    case_summary,
    coalition_label,
    member_names,
    payload_facts,
)
from node.core.web.routes import PageRoute
from node.features.cases import import_pages
from node.features.cases.api import CaseListQuery
from node.features.cases.case_form import CaseForm, error_summary
from node.features.cases.case_search import SCAN_LIMIT, search_cases
from node.features.cases.casebook import (
    CONSENT_COALITIONS,
    SHARED_WITH_COALITIONS,
    add_case,
    amend_case,
    delete_case,
    stored_record,
    utc_day,
)
from schemas.case import Case
from schemas.countries import COUNTRY_CODES
from schemas.errors import RecordValidationError
from schemas.strict import incident_date_problem
from schemas.typology import Vocabulary

CASE_VIEWED: Final = "case.view"
CASE_FIELDS: Final = frozenset(name for name in CASE_FIELD_NAMES if "." not in name)
FILTERS: Final = ("country", "violation", "victim_group", "date_from", "date_to")


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound()


async def _current(tx: StoreTransaction, record_id: str) -> StoredCase:
    try:
        return await tx.cases.get(record_id)
    except (RecordNotFound, InvalidRecordId):
        raise _not_found() from None


# --- list -------------------------------------------------------------------------------------


def _filters(request: web.Request, fmt: Formatter) -> tuple[CaseListQuery, dict[str, str]]:
    given = {name: request.query[name] for name in FILTERS if request.query.get(name)}
    try:
        return CaseListQuery.model_validate(given), {}
    except ValidationError as error:
        bad = {str(item["loc"][0]) if item["loc"] else "date_to" for item in error.errors()}
        kept = {name: value for name, value in given.items() if name not in bad}
        message = fmt.gettext(N_("This filter is not valid; it was left out."))
        return CaseListQuery.model_validate(kept), {name: message for name in bad}


async def case_list(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    query, errors = _filters(request, fmt)
    text = request.query.get("q", "").strip()[:200]
    try:
        async with ctx.node.store.read() as tx:
            page = await search_cases(tx, query.case_filter(), text or None,
                                      request.query.get("cursor") or None)
    except InvalidCursor:
        raise web.HTTPBadRequest() from None
    kept = {name: request.query[name] for name in FILTERS
            if request.query.get(name) and name not in errors}
    if text:
        kept["q"] = text
    return render(
        request, "cases/list.html", cases=[case_summary(item, fmt) for item in page.items],
        page=page, text=text, filters=kept, errors=errors, scan_limit=SCAN_LIMIT,
        is_first=not request.query.get("cursor"),
        countries=fmt.countries(sorted(COUNTRY_CODES)),
        violations=fmt.choices(Vocabulary.VIOLATION),
        victim_groups=fmt.choices(Vocabulary.VICTIM_GROUP),
    )


# --- the form ---------------------------------------------------------------------------------


async def _form_page(request: web.Request, form: CaseForm, errors: dict[str, str], *,
                     record_id: str | None = None, status: int = 200,
                     focus: str | None = None) -> web.Response:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    async with ctx.node.store.read() as tx:
        members = [m for m in await tx.orgs.members(verified_only=True)
                   if m.org_id != ctx.node.org_id]
    names = member_names(members)
    partners = [(org_id, names[org_id]) for org_id in sorted(names, key=names.__getitem__)]
    partners += [(org_id, org_id) for org_id in form.consent_partners if org_id not in names]
    async with ctx.node.store.read() as tx:
        every = await tx.coalitions.all(with_left=True)
    # The node's coalitions, and those it left that this case's consent still names.
    coalitions = [(c.coalition_id, c.label if c.active else fmt.gettext(N_("%(name)s (left)"))
                   % {"name": c.label})
                  for c in every if c.active or c.coalition_id in form.consent_coalitions]
    return render(
        request, "cases/form.html", status=status, form=form, errors=errors,
        error_links=error_summary(errors, fmt),
        record_id=record_id, focus=focus, partners=partners, coalitions=coalitions,
        countries=fmt.countries(sorted(COUNTRY_CODES)), months=fmt.month_names(),
        choices={vocabulary.value: fmt.choices(vocabulary) for vocabulary in Vocabulary},
    )


async def new_case_page(request: web.Request) -> web.StreamResponse:
    coalitions = await web_context(request).node.coalitions()
    only = [coalitions[0].coalition_id] if len(coalitions) == 1 else []
    return await _form_page(request, CaseForm(consent_coalitions=only), {})


async def _coalitions_unticked(request: web.Request, form: CaseForm) -> dict[str, str]:
    """The form's error when consent shares with a coalition and none is ticked while this
    node is in one or more (decision 0032)."""
    if (form.consent_coalitions or form.consent_level not in SHARED_WITH_COALITIONS
            or not await web_context(request).node.coalitions()):
        return {}
    return {CONSENT_COALITIONS: current_visit(request).gettext(
        N_("Tick the coalitions within which the people concerned agreed to sharing."))}


def _focus_after(action: str, form: CaseForm) -> str | None:
    if action == "add_victim":
        return f"victims[{len(form.victims) - 1}].kind"
    if action == "add_perpetrator":
        return f"perpetrators[{len(form.perpetrators) - 1}].category"
    return None


def _future_incident(payload: dict[str, Any], now: int, visit: Visit) -> dict[str, str]:
    """The form's error when the incident date is later than today (the store refuses it)."""
    if incident_date_problem(str(payload.get("incident_date", "")), utc_day(now)) is None:
        return {}
    return {"incident_date": visit.gettext(
        N_("This date is in the future. The incident date says when it happened."))}


async def create_case(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    posted = await form_data(request)
    form = CaseForm.from_post(posted)
    action = posted.get("action", "save")
    if form.apply(action):
        return await _form_page(request, form, {}, focus=_focus_after(action, form))
    payload, errors = form.to_payload(visit.fmt)
    if payload is None or (errors := _future_incident(payload, ctx.now(), visit)
                           | await _coalitions_unticked(request, form)):
        return await _form_page(request, form, errors, status=422)
    try:
        async with ctx.node.store.transaction() as tx:
            stored = await add_case(tx, issuer=ctx.node.org_id,
                                    case=Case.model_validate(payload),
                                    author=staff_of(request).username, issued_at=ctx.now())
    except RecordValidationError as error:
        return await _form_page(request, form, {p.path: p.problem for p in error.problems},
                                status=422)
    return see_other(f"/cases/{stored.record_id}", done="case_created")


async def edit_case_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        stored = await _current(tx, request.match_info["record_id"])
    payload = stored.document.get("payload", {})
    form = CaseForm.from_payload(payload, stored.version)
    if payload.get("consent_coalitions") is None:
        # From before decision 0032: its consent meant the node's first coalition.
        async with ctx.node.store.read() as tx:
            every = await tx.coalitions.all(with_left=True)
        form.consent_coalitions = [every[0].coalition_id] if every else []
    return await _form_page(request, form, {}, record_id=stored.record_id)


def replacement_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that turns the old payload into the form's: fields the form left empty
    are removed; fields this version does not know (from a newer Minga) are kept."""
    removed = {name: None for name in old if name in CASE_FIELDS and name not in new}
    return {**new, **removed}


async def update_case(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    visit = current_visit(request)
    record_id = request.match_info["record_id"]
    posted = await form_data(request)
    form = CaseForm.from_post(posted)
    action = posted.get("action", "save")
    if form.apply(action):
        return await _form_page(request, form, {}, record_id=record_id,
                                focus=_focus_after(action, form))
    payload, errors = form.to_payload(visit.fmt)
    if payload is None or (errors := _future_incident(payload, ctx.now(), visit)
                           | await _coalitions_unticked(request, form)):
        return await _form_page(request, form, errors, record_id=record_id, status=422)
    try:
        async with ctx.node.store.transaction() as tx:
            stored = await _current(tx, record_id)
            patch = replacement_patch(stored.document.get("payload", {}), payload)
            await amend_case(tx, stored.record_id, patch, author=staff_of(request).username,
                             issued_at=ctx.now(), expected_version=form.expected_version)
    except VersionConflict:
        conflict = visit.gettext(N_("Someone saved this case while you were editing it. Open it"
                                    " again to see their changes, then make yours."))
        return await _form_page(request, form, {"form": conflict}, record_id=record_id,
                                status=409)
    except RecordValidationError as error:
        return await _form_page(request, form, {p.path: p.problem for p in error.problems},
                                record_id=record_id, status=422)
    return see_other(f"/cases/{record_id}", done="case_updated")


# --- detail -----------------------------------------------------------------------------------


async def case_detail(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    record_id = request.match_info["record_id"]
    async with ctx.node.store.read() as tx:
        try:
            current = await tx.cases.get(record_id)
        except RecordDeleted:
            return render(request, "cases/deleted.html", status=410, record_id=record_id)
        except (RecordNotFound, InvalidRecordId):
            raise _not_found() from None
        versions = await tx.cases.versions(current.record_id)
        shares = await ShareRepository(tx.session, tx.cipher).history(current.record_id)
        names = member_names(await tx.orgs.members())
        coalitions = await tx.coalitions.all(with_left=True)
    wanted = request.query.get("version", "")
    shown = next((v for v in versions if str(v.version) == wanted), None)
    document = shown.document if shown is not None else current.document
    payload = document.get("payload", {})
    async with ctx.node.store.transaction() as tx:
        await tx.audit.append(staff_of(request).username, CASE_VIEWED, target=current.record_id,
                              details={"version": shown.version if shown else current.version})
    record = stored_record(current)
    return render(
        request, "cases/detail.html", record_id=current.record_id, heading=case_heading(
            payload, fmt), facts=payload_facts(consent_scope_shown(payload, coalitions, fmt),
                                               fmt), current=current,
        shown_version=shown.version if shown is not None else current.version,
        versions=list(reversed(versions)), shares=list(reversed(shares)), names=names,
        summary=case_summary(current, fmt), issued_at=record.issued_at,
        field_names=CASE_FIELD_NAMES, retracted=any(s.action == "retract" for s in shares),
        reasons=fmt.choices(Vocabulary.RETRACTION_REASON),
        shareable=shareable_with_members(record.payload),
    )


def consent_scope_shown(payload: dict[str, Any], coalitions: list[Coalition],
                        fmt: Formatter) -> dict[str, Any]:
    """``payload`` with the coalitions its consent covers by name ("(left)" for one this node
    left); a case from before decision 0032 names none: its consent covers the first."""
    if not coalitions:
        return payload
    by_id = {c.coalition_id: c for c in coalitions}
    named = payload.get("consent_coalitions")
    if not isinstance(named, list):
        first = coalitions[0]
        return {**payload, "consent_coalitions": [
            fmt.gettext(N_("the first coalition (%(name)s)")) % {"name": first.label}]}
    return {**payload, "consent_coalitions": [
        coalition_label(c, by_id, fmt) or c for c in named if isinstance(c, str)]}


# --- delete -----------------------------------------------------------------------------------


async def delete_case_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    async with ctx.node.store.read() as tx:
        stored = await _current(tx, request.match_info["record_id"])
        shared = await ShareRepository(tx.session, tx.cipher).recipients(stored.record_id)
    return render(request, "cases/delete.html", summary=case_summary(stored, fmt),
                  shared_count=len(shared))


async def remove_case(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    async with ctx.node.store.transaction() as tx:
        stored = await _current(tx, request.match_info["record_id"])
        await delete_case(tx, stored.record_id, author=staff_of(request).username)
    return see_other("/cases", done="case_deleted")


ONE: Final = "/cases/{record_id:[0-9a-fA-F-]{36}}"
ROUTES: Final = [
    PageRoute("GET", "/cases", case_list),
    *import_pages.ROUTES,
    PageRoute("GET", "/cases/new", new_case_page, Role.editor),
    PageRoute("POST", "/cases/new", create_case, Role.editor),
    PageRoute("GET", ONE, case_detail),
    PageRoute("GET", ONE + "/edit", edit_case_page, Role.editor),
    PageRoute("POST", ONE + "/edit", update_case, Role.editor),
    PageRoute("GET", ONE + "/delete", delete_case_page, Role.editor),
    PageRoute("POST", ONE + "/delete", remove_case, Role.editor),
]
