"""Staff pages for joint campaigns and sign-on letters (M7), without JavaScript.

``/proposals``: every proposal and campaign; ``/proposals/new``: the proposal form, with the
campaign check shown before posting; ``/proposals/{issuer}/{id}``: status, tally, responses, the
response form, launch, and once launched the campaign room's content with the post form, leave
and close. ``/letters``: letters and the new-letter form; ``/letters/{issuer}/{id}``: signatories
(live: each reload shows who signed), the signing form, and the exports (print-ready HTML, plain
text). Each action is a form post (CSRF-checked by the page middleware) that redirects back.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Final

from aiohttp import web
from multidict import MultiDict
from pydantic import ValidationError

from node.core.rooms import PairRoomError
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import SharingError
from node.core.store import Role
from node.core.web.app import error_page
from node.core.web.context import current_visit, form_data, render, see_other, staff_of, web_context
from node.core.web.i18n import N_
from node.core.web.routes import PageRoute
from node.features.campaigns.check import CampaignDraft, DraftTarget, check_against_node
from node.features.campaigns.letters import (
    LateSignature,
    LetterNotFound,
    all_letters,
    appendix_entries,
    create_letter,
    export_html,
    export_text,
    letter_of,
    sign_letter,
)
from node.features.campaigns.service import (
    CampaignError,
    CampaignNotFound,
    NotAllowed,
    ResponsesClosed,
    all_proposals,
    close,
    launch,
    leave,
    post,
    propose,
    respond,
    state_of,
)
from schemas.common import RecordRef
from schemas.errors import validation_problems
from schemas.payloads import Proposal
from schemas.typology import Vocabulary

TARGET_ROWS: Final = 3
EXPORT_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_REFUSALS: Final = {
    ResponsesClosed: N_("The deadline has passed: this can no longer be changed."),
    LateSignature: N_("The signing deadline has passed; late signatures are not accepted."),
    NotAllowed: N_("This is not possible for your organisation in the campaign's current state."),
}
STATUS_NAMES: Final = {
    "open": N_("Open for responses"), "launching": N_("Minimum reached: the room is being set up"),
    "expired": N_("Expired below the minimum"), "active": N_("Active campaign"),
    "closed": N_("Closed (archived)"),
}


def _refused(request: web.Request, error: Exception) -> web.Response:
    if isinstance(error, CoalitionNotChosen):
        return error_page(request, 422, (N_("Not understood"), N_(
            "Choose one of this node's coalitions.")))
    if isinstance(error, CampaignNotFound | LetterNotFound):
        return error_page(request, 404)
    if isinstance(error, SharingError | PairRoomError):
        return error_page(request, 503, (N_("Not sent"), N_(
            "The node could not send this now. Nothing was sent; try again later.")))
    message = next((text for kind, text in _REFUSALS.items() if isinstance(error, kind)),
                   N_("This cannot be done in the record's current state. Reload it and try "
                      "again."))
    return error_page(request, 409, (N_("Not possible now"), message))


Action = Callable[[], Awaitable[object]]


async def _act(request: web.Request, action: Action, back: str) -> web.Response:
    try:
        await action()
    except (CampaignError, SharingError, PairRoomError, CoalitionNotChosen) as error:
        return _refused(request, error)
    return see_other(back)


def _deadline(text: str) -> int | None:
    """The end of the given day (UTC) in Unix seconds; None if not a date."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return calendar.timegm(day.timetuple()) + 86_399


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _proposal_data(form: MultiDict[str]) -> dict[str, Any]:
    targets = [{"name": name.strip(), "target_type": kind}
               for name, kind in zip(form.getall("target_name", []),
                                     form.getall("target_type", []), strict=False)
               if name.strip()]
    minimum = form.get("min_organisations", "").strip()
    return {
        "title": form.get("title", "").strip(), "goal": form.get("goal", "").strip(),
        "targets": targets, "countries": [c.upper() for c in _split(form.get("countries", ""))],
        "themes": _split(form.get("themes", "")),
        "timeframe": form.get("timeframe", "").strip() or None,
        "asks": form.getall("asks", []),
        "min_organisations": int(minimum) if minimum.isdigit() else 0,
        "deadline": _deadline(form.get("deadline", "")) or 0,
    }


async def _coalitions(node: Node) -> dict[str, Any]:
    """What the templates need to choose a coalition and to name one (decision 0032): the
    node's active coalitions, and every coalition it is or was in by id."""
    async with node.store.read() as tx:
        known = await tx.coalitions.all(with_left=True)
    return {"coalitions": [c for c in known if c.active],
            "coalitions_known": {c.coalition_id: c for c in known}}


# --- proposals and campaigns ------------------------------------------------------------------


async def proposals_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    states = await all_proposals(ctx.node, ctx.now())
    return render(request, "campaigns/list.html", proposals=states, status_names=STATUS_NAMES,
                  names=await _names(request), **await _coalitions(ctx.node))


async def _names(request: web.Request) -> dict[str, str]:
    ctx = web_context(request)
    async with ctx.node.store.read() as tx:
        members = await tx.orgs.members()
    names = {m.org_id: str(m.entry.get("name") or m.org_id) for m in members}
    names[ctx.node.org_id] = ctx.node.own.name
    return names


async def _form_page(request: web.Request, values: dict[str, Any], **extra: Any
                     ) -> web.Response:
    fmt = current_visit(request).fmt
    return render(request, "campaigns/new.html", values=values, rows=range(TARGET_ROWS),
                  target_types=fmt.choices(Vocabulary.CAMPAIGN_TARGET_TYPE),
                  roles=fmt.choices(Vocabulary.CAMPAIGN_ROLE),
                  **await _coalitions(web_context(request).node), **extra)


async def new_proposal_page(request: web.Request) -> web.StreamResponse:
    return await _form_page(request, {"min_organisations": 2})


async def new_proposal_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    data = _proposal_data(form)
    chosen = form.get("coalition") or None
    shown = {**data, "deadline": form.get("deadline", ""), "countries": form.get("countries", ""),
             "themes": form.get("themes", ""), "coalition": chosen}
    draft = CampaignDraft.model_construct(title=data["title"] or "-",
                                          targets=[DraftTarget.model_construct(name=t["name"])
                                                   for t in data["targets"]],
                                          countries=data["countries"], themes=data["themes"])
    overlaps = await check_against_node(ctx.node, draft, ctx.now())
    try:
        proposal = Proposal.model_validate(data)
    except ValidationError as error:
        return await _form_page(request, shown, overlaps=overlaps, checked=True,
                          problems=[p.path for p in validation_problems(error)], status=422)
    unseen_overlaps = bool(overlaps) and form.get("overlaps_seen") != "yes"
    if form.get("action") != "post" or unseen_overlaps:  # the proposer sees the check first
        return await _form_page(request, shown, overlaps=overlaps, checked=True)
    try:
        state = await propose(ctx.node, proposal, actor=staff_of(request).username,
                              now=ctx.now(), coalition_id=chosen)
    except (CampaignError, SharingError, PairRoomError, CoalitionNotChosen) as error:
        return _refused(request, error)
    return see_other(f"/proposals/{state.issuer}/{state.record_id}")


async def proposal_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    try:
        state = await state_of(ctx.node, issuer, record_id, ctx.now())
    except CampaignError:
        raise web.HTTPNotFound() from None
    fmt = current_visit(request).fmt
    mine = next((r for r in state.responses if r.org_id == ctx.node.org_id), None)
    return render(request, "campaigns/detail.html", state=state, mine=mine,
                  **await _coalitions(ctx.node),
                  own_org=ctx.node.org_id, names=await _names(request),
                  status_names=STATUS_NAMES, is_open=ctx.now() <= state.proposal.deadline,
                  roles=fmt.choices(Vocabulary.CAMPAIGN_ROLE),
                  target_vocab=Vocabulary.CAMPAIGN_TARGET_TYPE,
                  responses=fmt.choices(Vocabulary.PROPOSAL_RESPONSE),
                  post_types=[c for c in fmt.choices(Vocabulary.CAMPAIGN_POST_TYPE)
                              if c[0] not in ("leave", "close_vote")],
                  deadline=_utc(state.proposal.deadline))


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _ids(request: web.Request) -> tuple[str, str, str]:
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    return issuer, record_id, f"/proposals/{issuer}/{record_id}"


async def respond_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id, back = _ids(request)
    form = await form_data(request)
    return await _act(request, lambda: respond(
        ctx.node, issuer, record_id, form.get("response", ""), roles=form.getall("roles", []),
        reason=form.get("reason", "").strip() or None,
        contacts=_split(form.get("contacts", "")), actor=staff_of(request).username,
        now=ctx.now()), back)


async def launch_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    _, record_id, back = _ids(request)
    return await _act(request, lambda: launch(ctx.node, record_id, now=ctx.now()), back)


async def post_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id, back = _ids(request)
    form = await form_data(request)
    return await _act(request, lambda: post(
        ctx.node, issuer, record_id, form.get("post_type", ""),
        title=form.get("title", "").strip() or None, text=form.get("text", "").strip() or None,
        owner=form.get("owner") or None, due=form.get("due", "").strip() or None,
        targets=_split(form.get("targets", "")), actor=staff_of(request).username,
        now=ctx.now()), back)


async def leave_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id, back = _ids(request)
    return await _act(request, lambda: leave(ctx.node, issuer, record_id,
                                             actor=staff_of(request).username,
                                             now=ctx.now()), back)


async def close_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id, back = _ids(request)
    return await _act(request, lambda: close(ctx.node, issuer, record_id,
                                             actor=staff_of(request).username,
                                             now=ctx.now()), back)


# --- letters ----------------------------------------------------------------------------------


async def letters_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    letters = await all_letters(ctx.node, ctx.now())
    campaigns = [s for s in await all_proposals(ctx.node, ctx.now())
                 if s.status == "active" and ctx.node.org_id in s.participants]
    return render(request, "campaigns/letters.html", letters=letters, campaigns=campaigns,
                  names=await _names(request), utc=_utc, **await _coalitions(ctx.node))


async def new_letter_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    form = await form_data(request)
    deadline = _deadline(form.get("deadline", ""))
    title, text = form.get("title", "").strip(), form.get("text", "").strip()
    campaign = None
    if form.get("campaign"):
        campaign_issuer, _, campaign_id = form["campaign"].partition("/")
        campaign = RecordRef(issuer=campaign_issuer, record_id=campaign_id)
    if deadline is None or not title or not text:
        return error_page(request, 422, (N_("Not understood"), N_(
            "A letter needs a title, a text and a signing deadline (a date).")))
    try:
        state = await create_letter(ctx.node, title, text, deadline, campaign,
                                    actor=staff_of(request).username, now=ctx.now(),
                                    coalition_id=form.get("coalition") or None)
    except (CampaignError, SharingError, PairRoomError, ValidationError,
            CoalitionNotChosen) as error:
        if isinstance(error, ValidationError):
            return error_page(request, 422, (N_("Not understood"), N_(
                "A letter needs a title, a text and a signing deadline (a date).")))
        return _refused(request, error)
    return see_other(f"/letters/{state.issuer}/{state.record_id}")


async def letter_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    try:
        state = await letter_of(ctx.node, issuer, record_id, ctx.now())
    except CampaignError:
        raise web.HTTPNotFound() from None
    signed = any(s.org_id == ctx.node.org_id for s in state.signatures)
    return render(request, "campaigns/letter.html", state=state, signed=signed,
                  names=await _names(request), utc=_utc, **await _coalitions(ctx.node))


async def sign_post(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    form = await form_data(request)
    name = form.get("signatory_name", "").strip()
    if not name:
        return error_page(request, 422, (N_("Not understood"), N_(
            "Write the name of the person who signs for your organisation.")))
    return await _act(request, lambda: sign_letter(
        ctx.node, issuer, record_id, name, form.get("signatory_role", "").strip() or None,
        actor=staff_of(request).username, now=ctx.now()), f"/letters/{issuer}/{record_id}")


async def letter_export(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    try:
        state = await letter_of(ctx.node, issuer, record_id, ctx.now())
    except CampaignError:
        raise web.HTTPNotFound() from None
    entries = await appendix_entries(ctx.node, state)
    if request.match_info["format"] == "txt":
        return web.Response(text=export_text(state, entries), content_type="text/plain",
                            charset="utf-8")
    response = web.Response(text=export_html(state, entries), content_type="text/html",
                            charset="utf-8")
    response.headers["Content-Security-Policy"] = EXPORT_CSP
    return response


ROUTES: Final = [
    PageRoute("GET", "/proposals", proposals_page),
    PageRoute("GET", "/proposals/new", new_proposal_page, Role.editor),
    PageRoute("POST", "/proposals/new", new_proposal_post, Role.editor),
    PageRoute("GET", "/proposals/{issuer}/{record_id}", proposal_page),
    PageRoute("POST", "/proposals/{issuer}/{record_id}/respond", respond_post, Role.editor),
    PageRoute("POST", "/proposals/{issuer}/{record_id}/launch", launch_post, Role.editor),
    PageRoute("POST", "/proposals/{issuer}/{record_id}/post", post_post, Role.editor),
    PageRoute("POST", "/proposals/{issuer}/{record_id}/leave", leave_post, Role.editor),
    PageRoute("POST", "/proposals/{issuer}/{record_id}/close", close_post, Role.editor),
    PageRoute("GET", "/letters", letters_page),
    PageRoute("POST", "/letters", new_letter_post, Role.editor),
    PageRoute("GET", "/letters/{issuer}/{record_id}", letter_page),
    PageRoute("POST", "/letters/{issuer}/{record_id}/sign", sign_post, Role.editor),
    PageRoute("GET", r"/letters/{issuer}/{record_id}/export.{format:txt|html}", letter_export),
]
