"""The "Check the coalition" step (M6): a case check from the case form, its answers as they
arrive, asking a matching member to connect, and the contact requests other members sent us.

The case form posts to ``/dedup/case-check`` (a second submit button), which reads only the
identifying fields (names, date, country, place) and ``coalition``, and starts the check in that
coalition; when the node is in several and none is named, a page asks which one (the form's
fields go along, hidden). The check page reloads itself every few seconds while answers are
missing. Checks and contact requests show the coalition they went through, "(left)" for one this
node left (decision 0032). Works without JavaScript. The campaign check
is on the proposal form (``node.features.campaigns.pages``).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from pydantic import ValidationError

from node.core.rooms import PairRoomError
from node.core.runtime import CoalitionNotChosen
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.core.web.context import current_visit, form_data, render, see_other, staff_of, web_context
from node.core.web.csrf import FIELD as CSRF_FIELD
from node.core.web.i18n import N_, Formatter
from node.core.web.presenters import member_names
from node.core.web.routes import PageRoute
from node.features.cases import CaseForm
from node.features.dedup.service import (
    ACCEPTED,
    CaseDraft,
    CheckState,
    CoalitionLeft,
    DedupError,
    NoCoalition,
    NoLinkageKey,
    UnknownCheck,
    UnknownContact,
    check_coalition,
    contact_coalition,
    contact_requests,
    decide_contact,
    get_check,
    request_contact,
    start_case_check,
)
from schemas.typology import Vocabulary

REFRESH_SECONDS: Final = 3
PROBLEMS: Final = {
    "draft": N_("Add the country and at least one name of a person or collective, then check"
                " again."),
    "key": N_("This node has not received the coalition's matching key yet. Try again in a"
              " minute."),
    "coalition": N_("This node is not in a coalition yet."),
    "unknown": N_("This node is not in that coalition (any more). Choose another one."),
    "alone": N_("There is no other member to ask yet."),
}
CONTACT_STATES: Final = {
    "requested": N_("You asked to connect; waiting for their answer."),
    "accepted": N_("They accepted: a private room with them is ready for sharing."),
    "declined": N_("They declined to connect."),
}


async def _names(request: web.Request) -> dict[str, str]:
    async with web_context(request).node.store.read() as tx:
        return member_names(await tx.orgs.members(verified_only=False))


async def _coalitions(request: web.Request) -> dict[str, Coalition]:
    """Every coalition this node is or was in, by id (the labels checks and requests show)."""
    async with web_context(request).node.store.read() as tx:
        return {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}


def _problem(request: web.Request, key: str, status: int = 422) -> web.Response:
    return render(request, "dedup/check.html", status=status, check=None,
                  problem=current_visit(request).gettext(PROBLEMS[key]))


async def case_check(request: web.Request) -> web.StreamResponse:
    posted = await form_data(request)
    try:
        draft = _draft(CaseForm.from_post(posted), current_visit(request).fmt)
    except ValidationError:
        return _problem(request, "draft")
    node = web_context(request).node
    coalition = str(posted.get("coalition", "")).strip() or None
    active = await node.coalitions()
    if coalition is None and len(active) > 1:
        # Which coalition to ask: the form's fields go along, hidden, with the choice.
        kept = [(k, v) for k, v in posted.items() if k not in (CSRF_FIELD, "coalition")]
        return render(request, "dedup/choose.html", coalitions=active, fields=kept)
    try:
        check = await start_case_check(node, draft, actor=staff_of(request).username,
                                       now=web_context(request).now(), coalition_id=coalition)
    except NoCoalition:
        return _problem(request, "coalition", 409)
    except (CoalitionNotChosen, CoalitionLeft):
        return _problem(request, "unknown")
    except NoLinkageKey:
        return _problem(request, "key", 409)
    except DedupError as error:
        return _problem(request, "alone" if "member" in str(error) else "draft")
    return see_other(f"/dedup/checks/{check.check_id}")


def _draft(form: CaseForm, fmt: Formatter) -> CaseDraft:
    """Only the identifying fields of the form, however incomplete the rest is."""
    rows = [r for r in form.victims if r.name or r.native_name or r.romanised_name]
    return CaseDraft.model_validate({
        "victims": [{"name": r.name or None, "native_name": r.native_name or None,
                     "romanised_name": r.romanised_name or None} for r in rows],
        "incident_date": form._incident_date(fmt, {}), "country": form.country,
        "place": form.place or None})


async def check_page(request: web.Request) -> web.StreamResponse:
    try:
        check = await get_check(web_context(request).node, request.match_info["check_id"])
    except UnknownCheck:
        raise web.HTTPNotFound() from None
    async with web_context(request).node.store.read() as tx:
        coalition = await check_coalition(tx, check)
    return render(request, "dedup/check.html", check=check, rows=_rows(check),
                  names=await _names(request), problem=None,
                  coalition=(await _coalitions(request)).get(coalition or ""),
                  refresh=REFRESH_SECONDS if check.status != "complete" else None,
                  bands=_bands(request),
                  none_label=current_visit(request).fmt.term(Vocabulary.SCORE_BAND, "none"),
                  contact_states={k: current_visit(request).gettext(v)
                                  for k, v in CONTACT_STATES.items()})


def _rows(check: CheckState) -> list[dict[str, object]]:
    contacts = {c.handle: c for c in check.contacts}
    rows: list[dict[str, object]] = []
    for org_id in check.asked:
        answer = check.answer_of(org_id)
        ask = contacts.get(answer.handle) if answer and answer.handle else None
        rows.append({"org_id": org_id, "answer": answer, "ask": ask})
    return rows


def _bands(request: web.Request) -> dict[str, str]:
    fmt = current_visit(request).fmt
    return {code: fmt.term(Vocabulary.SCORE_BAND, code) for code in ("low", "medium", "high")}


async def ask_contact(request: web.Request) -> web.StreamResponse:
    check_id = request.match_info["check_id"]
    handle = str((await form_data(request)).get("handle", ""))
    try:
        await request_contact(web_context(request).node, check_id, handle,
                              actor=staff_of(request).username, now=web_context(request).now())
    except UnknownCheck:
        raise web.HTTPNotFound() from None
    except DedupError:
        raise web.HTTPBadRequest() from None
    return see_other(f"/dedup/checks/{check_id}")


async def contacts_page(request: web.Request) -> web.StreamResponse:
    node = web_context(request).node
    requests = await contact_requests(node)
    known = await _coalitions(request)
    through = {r.request_id: known.get(await contact_coalition(node, r) or "")
               for r in requests}
    return render(request, "dedup/contacts.html", requests=requests, through=through,
                  names=await _names(request), bands=_bands(request), accepted=ACCEPTED)


async def decide(request: web.Request) -> web.StreamResponse:
    accept = (await form_data(request)).get("decision") == "accept"
    try:
        await decide_contact(web_context(request).node, request.match_info["request_id"],
                             accept=accept, actor=staff_of(request).username,
                             now=web_context(request).now())
    except UnknownContact:
        raise web.HTTPNotFound() from None
    except PairRoomError:
        raise web.HTTPServiceUnavailable() from None
    except DedupError:
        raise web.HTTPConflict() from None
    return see_other("/dedup/contacts")


ROUTES: Final = [
    PageRoute("POST", "/dedup/case-check", case_check, Role.editor),
    PageRoute("GET", "/dedup/checks/{check_id}", check_page),
    PageRoute("POST", "/dedup/checks/{check_id}/contact", ask_contact, Role.editor),
    PageRoute("GET", "/dedup/contacts", contacts_page),
    PageRoute("POST", "/dedup/contacts/{request_id}", decide, Role.editor),
]
