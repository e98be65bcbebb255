"""Urgent alert pages (M8): the list (unacknowledged first), sending, one alert, answering.

An alert page shows the alert's text as first sent, then its updates in order (a reopening
marked, with its reason), and every answer and offer with its time ("time unknown" where the node
saved it before answers had times). Updating, closing and reopening are one form; reopening a
closed alert without a reason is refused on the page, naming the field. An alert goes to one
coalition (decision 0032): picked on the form when the node is in several; every alert shows
the coalition it went through, "(left)" for one this node left.

Every page works without JavaScript (plain links and forms). With JavaScript, the list and the
alert pages follow ``/alerts/events`` (server-sent events): when an alert arrives or changes,
the list is re-fetched from ``/alerts/fragment``, a banner says so and a short tone plays,
unless the person turned the sound off (kept in the browser). Those pages alone allow the
node's own script and connections (``script-src 'self'; connect-src 'self'``); no inline script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from node.core.runtime import CoalitionNotChosen
from node.core.sharing import SharingError
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.core.web.app import SECURITY_HEADERS
from node.core.web.context import current_visit, form_data, render, see_other, staff_of, web_context
from node.core.web.i18n import N_, Formatter
from node.core.web.presenters import member_names
from node.core.web.routes import PageRoute
from node.features.alerts.room import AlertRoomError
from node.features.alerts.service import (
    HELPING,
    SEEN,
    WITHHOLDABLE,
    AlertError,
    AlertState,
    UnknownAlert,
    alert_timeline,
    bus_of,
    get_alert,
    list_alerts,
    respond,
    send_alert,
    update_alert,
)
from node.features.alerts.timeline import AnswerEvent, OfferEntry
from schemas.payloads import Alert
from schemas.typology import Vocabulary, codes

LIVE_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
KEEPALIVE_SECONDS: Final = 15.0
STATUS_NAMES: Final = {
    "sent": N_("No answer yet"),
    "delivered": N_("Delivered"),
    "seen": N_("Seen"),
    "helping": N_("Helping"),
}
WITHHOLD_NAMES: Final = {
    "country": N_("Country"),
    "place": N_("Place"),
    "case": N_("Case link"),
}
SEND_REFUSED: Final = N_("The alert was not sent: %(reason)s")
REASON_NEEDED: Final = N_("Reason: a closed alert is reopened only with a reason.")
UPDATE_REFUSED: Final = N_("The alert was not updated: %(reason)s")
TIME_UNKNOWN: Final = N_("time unknown")
IN_COALITION: Final = N_("In coalition %(coalition)s")
IN_LEFT_COALITION: Final = N_("In coalition %(coalition)s (left)")


@dataclass(frozen=True)
class Timed:
    """Something shown with its time (``when`` is "time unknown" where it was not kept)."""

    text: str
    when: str


@dataclass(frozen=True)
class UpdateRow:
    seq: int
    status_text: str
    text: str | None
    reason: str | None
    reopened: bool
    when: str
    by_name: str


@dataclass(frozen=True)
class AnswerRow:
    org_id: str
    name: str
    status: str
    status_text: str
    offers: tuple[Timed, ...]
    history: tuple[Timed, ...]
    matches_ask: bool
    resends: int


@dataclass(frozen=True)
class AlertCard:
    issuer: str
    record_id: str
    own: bool
    from_name: str
    type_text: str
    urgency_text: str
    status: str
    status_text: str
    country: str
    place: str | None
    asks: tuple[str, ...]
    text: str
    issued: str
    late: bool
    unacknowledged: bool
    answer: str | None
    answer_offers: tuple[Timed, ...]
    answer_history: tuple[Timed, ...]
    answers: tuple[AnswerRow, ...]
    updates: tuple[UpdateRow, ...]
    missing_updates: tuple[int, ...]
    coalition_text: str = ""
    """Which coalition it went through ("(left)" for one this node left)."""

    @property
    def href(self) -> str:
        return f"/alerts/{self.issuer}/{self.record_id}"


def _terms(fmt: Formatter, vocabulary: Vocabulary, values: Any) -> tuple[str, ...]:
    listed = values if isinstance(values, list) else []
    return tuple(fmt.term(vocabulary, str(v)) for v in listed)


def _when(fmt: Formatter, unix: int | None) -> str:
    if unix is None:
        return fmt.gettext(TIME_UNKNOWN)
    return fmt.datetime(datetime.fromtimestamp(unix, UTC))


def _offers(fmt: Formatter, offers: Sequence[OfferEntry]) -> tuple[Timed, ...]:
    return tuple(Timed(fmt.term(Vocabulary.CAPABILITY, o.capability), _when(fmt, o.at))
                 for o in offers)


def _history(fmt: Formatter, answers: Sequence[AnswerEvent]) -> tuple[Timed, ...]:
    return tuple(Timed(fmt.gettext(STATUS_NAMES.get(a.status, a.status)), _when(fmt, a.at))
                 for a in answers)


def _updates(state: AlertState, names: dict[str, str], fmt: Formatter) -> tuple[UpdateRow, ...]:
    return tuple(UpdateRow(
        seq=e.update.seq, status_text=fmt.term(Vocabulary.ALERT_STATUS, e.update.status),
        text=e.update.text, reason=e.update.reason, reopened=e.reopened,
        when=_when(fmt, e.update.at), by_name=names.get(e.update.by, e.update.by))
        for e in alert_timeline(state))


def coalition_text(fmt: Formatter, coalition_id: str | None,
                   coalitions: dict[str, Coalition]) -> str:
    """ "In coalition X", or "In coalition X (left)"; nothing on a node in no coalition."""
    if coalition_id is None:
        return ""
    known = coalitions.get(coalition_id)
    label = known.label if known else coalition_id
    left = known is not None and not known.active
    return fmt.gettext(IN_LEFT_COALITION if left else IN_COALITION) % {"coalition": label}


def alert_card(state: AlertState, names: dict[str, str], fmt: Formatter,
               coalitions: dict[str, Coalition] | None = None) -> AlertCard:
    claims = state.claims
    return AlertCard(
        issuer=state.issuer, record_id=state.record_id, own=state.own,
        from_name=names.get(state.issuer, state.issuer),
        type_text=fmt.term(Vocabulary.ALERT_TYPE, str(claims.get("alert_type", "other"))),
        urgency_text=fmt.term(Vocabulary.RISK_LEVEL, str(claims.get("urgency", "critical"))),
        status=state.status, status_text=fmt.term(Vocabulary.ALERT_STATUS, state.status),
        country=fmt.country(claims.get("country")) if claims.get("country") else "",
        place=claims.get("place") if isinstance(claims.get("place"), str) else None,
        asks=_terms(fmt, Vocabulary.ALERT_ASK, claims.get("asks")),
        text=str(claims.get("text", "")),
        issued=_when(fmt, state.issued_at),
        late=state.late, unacknowledged=state.unacknowledged,
        answer=state.answer, answer_offers=_offers(fmt, state.answer_offers),
        answer_history=_history(fmt, state.answers),
        answers=tuple(AnswerRow(
            org_id=r.org_id, name=names.get(r.org_id, r.org_id), status=r.status,
            status_text=fmt.gettext(STATUS_NAMES.get(r.status, r.status)),
            offers=_offers(fmt, r.offers), history=_history(fmt, r.answers),
            matches_ask=r.matches_ask, resends=r.resends) for r in state.recipients),
        updates=_updates(state, names, fmt), missing_updates=tuple(state.missing_updates),
        coalition_text=coalition_text(fmt, state.coalition_id, coalitions or {}),
    )


def _live(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = LIVE_POLICY
    return response


async def _names(request: web.Request) -> tuple[dict[str, str], dict[str, Coalition]]:
    async with web_context(request).node.store.read() as tx:
        coalitions = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
        return await tx.orgs.names(), coalitions


async def _cards(request: web.Request) -> list[AlertCard]:
    fmt = current_visit(request).fmt
    names, coalitions = await _names(request)
    return [alert_card(s, names, fmt, coalitions)
            for s in await list_alerts(web_context(request).node)]


async def waiting_alerts_panel(request: web.Request) -> dict[str, Any] | None:
    """Alerts still waiting for an answer, for the dashboard (first thing on it)."""
    waiting = [card for card in await _cards(request) if card.unacknowledged]
    return {"alerts": waiting} if waiting else None


async def alerts_page(request: web.Request) -> web.StreamResponse:
    return _live(render(request, "alerts/list.html", alerts=await _cards(request)))


async def alerts_fragment(request: web.Request) -> web.StreamResponse:
    return render(request, "alerts/_cards.html", alerts=await _cards(request))


def _choices(fmt: Formatter, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    return [(code, fmt.term(vocabulary, code)) for code in codes(vocabulary)]


async def _form(request: web.Request, *, values: dict[str, Any] | None = None,
                problem: str | None = None, status: int = 200) -> web.Response:
    fmt = current_visit(request).fmt
    ctx = web_context(request)
    coalitions = await ctx.node.coalitions()
    async with ctx.node.store.read() as tx:
        members = [m for m in await tx.orgs.members(verified_only=True)
                   if m.org_id != ctx.node.org_id]
        memberships = await tx.coalitions.memberships()
    names = member_names(members)
    if len(coalitions) > 1:  # each member named with the coalitions it shares with this node
        names = {org_id: f"{name} ({', '.join(shared)})" for org_id, name in names.items()
                 if (shared := sorted(c.label for c in coalitions
                                      if org_id in memberships.get(c.coalition_id, ())))}
    return render(
        request, "alerts/new.html", status=status, values=values or {}, problem=problem,
        types=_choices(fmt, Vocabulary.ALERT_TYPE), urgencies=_choices(fmt, Vocabulary.RISK_LEVEL),
        asks=_choices(fmt, Vocabulary.ALERT_ASK),
        withholdable=[(f, fmt.gettext(WITHHOLD_NAMES[f])) for f in WITHHOLDABLE],
        members=sorted(names.items(), key=lambda item: item[1]),
        coalitions=[(c.coalition_id, c.label) for c in coalitions])


async def new_alert_page(request: web.Request) -> web.StreamResponse:
    return await _form(request)


def _posted_alert(form: Any) -> dict[str, Any]:
    return {"alert_type": form.get("alert_type", ""), "urgency": form.get("urgency", ""),
            "country": form.get("country", "").strip().upper(),
            "place": form.get("place", "").strip() or None, "asks": form.getall("asks", []),
            "text": form.get("text", "").strip()}


async def send_alert_form(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    values = _posted_alert(form)
    visit = current_visit(request)
    recipients = form.getall("recipients", [])
    withhold = form.getall("withhold", [])
    coalition = form.get("coalition", "").strip() or None
    shown = {**values, "recipients": recipients, "withhold": withhold, "coalition": coalition}
    try:
        alert = Alert.model_validate(values)
    except ValidationError as error:
        fields = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
        return await _form(request, values=shown, status=422, problem=visit.gettext(
            SEND_REFUSED, reason=", ".join(fields)))
    node = web_context(request).node
    try:
        state = await send_alert(node, alert, recipients=recipients or None, withhold=withhold,
                                 coalition_id=coalition, actor=staff_of(request).username,
                                 now=int(time.time()))
    except CoalitionNotChosen as error:
        return await _form(request, values=shown, status=422,
                           problem=visit.gettext(SEND_REFUSED, reason=str(error)))
    except (AlertError, AlertRoomError, SharingError) as error:
        return await _form(request, values=shown, status=409,
                           problem=visit.gettext(SEND_REFUSED, reason=str(error)))
    return see_other(f"/alerts/{state.issuer}/{state.record_id}")


async def _state(request: web.Request) -> AlertState:
    node = web_context(request).node
    try:
        return await get_alert(node, request.match_info["issuer"], request.match_info["record_id"])
    except UnknownAlert:
        raise web.HTTPNotFound() from None


async def alert_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, await _state(request))


async def _detail(request: web.Request, state: AlertState, *, problem: str | None = None,
                  values: dict[str, str] | None = None, status: int = 200
                  ) -> web.StreamResponse:
    fmt = current_visit(request).fmt
    names, coalitions = await _names(request)
    card = alert_card(state, names, fmt, coalitions)
    return _live(render(request, "alerts/detail.html", status=status, alert=card,
                        problem=problem, values=values or {},
                        statuses=_choices(fmt, Vocabulary.ALERT_STATUS),
                        capabilities=_choices(fmt, Vocabulary.CAPABILITY)))


async def answer_form(request: web.Request) -> web.StreamResponse:
    state = await _state(request)
    form = await form_data(request)
    answer = HELPING if form.get("answer") == HELPING else SEEN
    try:
        await respond(web_context(request).node, state.issuer, state.record_id, answer=answer,
                      offers=form.getall("offers", []) if answer == HELPING else [],
                      actor=staff_of(request).username, now=int(time.time()))
    except (AlertError, SharingError):
        raise web.HTTPConflict() from None
    return see_other(f"/alerts/{state.issuer}/{state.record_id}")


async def status_form(request: web.Request) -> web.StreamResponse:
    state = await _state(request)
    form = await form_data(request)
    if not state.own or form.get("status") not in codes(Vocabulary.ALERT_STATUS):
        raise web.HTTPConflict()
    values = {name: form.get(name, "") for name in ("status", "text", "reason")}
    try:
        await update_alert(web_context(request).node, state.record_id, status=values["status"],
                           text=values["text"], reason=values["reason"],
                           actor=staff_of(request).username, now=int(time.time()))
    except AlertError as error:
        if error.field != "reason":
            raise web.HTTPConflict() from None
        return await _detail(request, state, values=values, status=422,
                             problem=current_visit(request).gettext(REASON_NEEDED))
    except ValidationError as error:
        fields = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
        return await _detail(request, state, values=values, status=422,
                             problem=current_visit(request).gettext(
                                 UPDATE_REFUSED, reason=", ".join(fields)))
    except SharingError:
        raise web.HTTPConflict() from None
    return see_other(f"/alerts/{state.issuer}/{state.record_id}")


def fingerprint(states: Sequence[AlertState]) -> dict[str, Any]:
    """What a live page needs to know changed: ids and counters, no alert content."""
    return {
        "alerts": [f"{s.issuer}/{s.record_id}/{s.version}/{s.updated_at}" for s in states],
        "unacknowledged": sum(1 for s in states if s.unacknowledged),
        "newest": max((s.arrived_at for s in states if not s.own), default=0),
    }


async def alert_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``alerts`` event now and one after every change."""
    node = web_context(request).node
    response = web.StreamResponse(headers={
        **SECURITY_HEADERS, "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    last: dict[str, Any] | None = None
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        bus = bus_of(node)
        async with bus.listen() as changed:
            while not bus.closed:
                changed.clear()
                current = fingerprint(await list_alerts(node))
                if current != last:
                    await response.write(
                        f"event: alerts\ndata: {json.dumps(current)}\n\n".encode())
                    last = current
                else:
                    await response.write(b": still here\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
    return response


ROUTES: Final = [
    PageRoute("GET", "/alerts", alerts_page),
    PageRoute("GET", "/alerts/fragment", alerts_fragment),
    PageRoute("GET", "/alerts/events", alert_events),
    PageRoute("GET", "/alerts/new", new_alert_page, Role.editor),
    PageRoute("POST", "/alerts/new", send_alert_form, Role.editor),
    PageRoute("GET", "/alerts/{issuer}/{record_id}", alert_page),
    PageRoute("POST", "/alerts/{issuer}/{record_id}/answer", answer_form, Role.editor),
    PageRoute("POST", "/alerts/{issuer}/{record_id}/status", status_form, Role.editor),
]
