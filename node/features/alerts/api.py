"""Urgent alerts over HTTP (M8).

- ``POST /alerts`` sends a new alert to one coalition (``coalition``, needed when the node is
  in several; decision 0032): to every verified member of it (or ``recipients``), withholding
  any of country, place and case link; ``GET /alerts`` lists this node's alerts and those it
  received, those still unacknowledged first; ``GET /alerts/{issuer}/{record_id}`` shows one,
  per recipient delivered / seen / helping for our own. Each alert names its coalition (and
  whether this node left it).
- ``POST /alerts/{record_id}/status`` updates our alert ("released"), closes it, or reopens it
  (with a ``reason``); the alert keeps its text and gains one update in its ordered list.
- ``POST /alerts/{issuer}/{record_id}/answer`` is our staff's answer: "seen" or "helping".
- ``GET|PUT /alerts/settings`` (admins): escalation and lateness thresholds.
- ``GET|PUT /alerts/watchers`` (admins): staff Matrix accounts invited into every alert room,
  so that an ordinary Matrix client pushes each alert's content-free notice.

Alert times are read from the wall clock, not the API's injectable clock: lateness and
escalation compare them with real arrival times. Times are ISO 8601 (``null`` where a node saved
state before it kept times: unknown); organisations are named beside their ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.core.api.answers import sharing_answers
from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    Link,
    NoBody,
    NoQuery,
    field_problems,
    invalid,
    setting_endpoints,
)
from node.core.api.times import OptionalTime, Time
from node.core.runtime import Node
from node.core.store import Role
from node.core.store.coalitions import Coalition
from node.features.alerts.room import AlertRoomError
from node.features.alerts.service import (
    WITHHOLDABLE,
    AlertError,
    AlertSettings,
    AlertState,
    UnknownAlert,
    alert_settings,
    alert_timeline,
    get_alert,
    list_alerts,
    respond,
    send_alert,
    set_alert_settings,
    update_alert,
)
from node.features.alerts.watchers import AlertWatchers, alert_watchers, set_alert_watchers
from schemas.codes import (
    AlertAskCode,
    AlertStatusCode,
    AlertTypeCode,
    CapabilityCode,
)
from schemas.common import LongText, OrgId, RecordRef, ShortText
from schemas.countries import CountryCode
from schemas.payloads import Alert
from schemas.typology import RiskLevel

TAGS = ("alerts",)


class SendAlertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_type: AlertTypeCode
    urgency: RiskLevel = RiskLevel.CRITICAL
    country: CountryCode
    place: ShortText | None = None
    asks: list[AlertAskCode] = Field(default_factory=list)
    case: RecordRef | None = None
    text: LongText
    recipients: Annotated[list[OrgId], Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="org ids; default every verified member")
    withhold: list[Annotated[str, Field(max_length=16)]] = Field(
        default_factory=list, description=f"any of {', '.join(WITHHOLDABLE)}")
    coalition: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="the coalition's id; needed when this node is in several")


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AlertStatusCode
    text: LongText | None = Field(default=None, description="what changed, shown in order")
    reason: ShortText | None = Field(default=None,
                                     description="why; needed to reopen a closed alert")


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Annotated[str, Field(pattern="^(seen|helping)$")]
    offers: list[CapabilityCode] = Field(default_factory=list)


class UpdateView(BaseModel):
    seq: int = Field(description="order number: 1, 2, ...")
    status: str
    text: str | None
    reason: str | None = Field(description="why (given when a closed alert was reopened)")
    reopened: bool = Field(description="this update reopened a closed alert")
    at: Time
    by: str
    by_name: str | None = Field(description="the organisation's name, if known")


class AnswerView(BaseModel):
    status: str = Field(description="delivered, seen or helping")
    at: OptionalTime = Field(description="when it was answered; null: time unknown")


class OfferView(BaseModel):
    capability: str
    at: OptionalTime = Field(description="when it was first offered; null: time unknown")


class RecipientView(BaseModel):
    org_id: str
    name: str | None = Field(description="the organisation's name, if known")
    status: str = Field(description="sent, delivered, seen or helping")
    answered_at: OptionalTime = Field(description="when the current answer was given")
    answers: list[AnswerView] = Field(description="every answer, oldest first")
    offers: list[OfferView] = Field(description="everything offered so far, oldest first")
    matches_ask: bool = Field(description="its directory capabilities match an ask")
    resends: int = Field(description="times re-sent by escalation")


class AlertView(BaseModel):
    issuer: str
    issuer_name: str | None = Field(description="the organisation's name, if known")
    record_id: str
    version: int
    own: bool
    coalition: str | None = Field(description="the id of the coalition it went through")
    coalition_name: str | None = Field(description="that coalition's name (or id)")
    coalition_left: bool = Field(description="this node has left that coalition")
    status: str = Field(description="the latest update's status")
    text: str | None = Field(description="the alert's text as first sent")
    unacknowledged: bool
    late: bool
    issued_at: Time
    arrived_at: Time
    updated_at: Time
    claims: dict[str, Any] = Field(
        description="the alert fields disclosed to this node (its updates: see updates)")
    updates: list[UpdateView] = Field(description="every update, in order")
    missing_updates: list[int] = Field(
        description="order numbers not known here: not arrived yet, or made before alerts "
                    "kept their updates")
    recipients: list[RecipientView] = Field(description="our own alerts only")
    answer: str | None = Field(description="received alerts: our answer")
    answers: list[AnswerView] = Field(description="received alerts: our answers, oldest first")
    answer_offers: list[OfferView] = Field(description="received alerts: what we offered")


class AlertList(BaseModel):
    items: list[AlertView] = Field(description="unacknowledged first, then newest first")


def alert_view(state: AlertState, names: dict[str, str],
               coalitions: dict[str, Coalition] | None = None) -> AlertView:
    text = state.claims.get("text")
    coalition = (coalitions or {}).get(state.coalition_id or "")
    return AlertView(
        issuer=state.issuer, issuer_name=names.get(state.issuer), record_id=state.record_id,
        version=state.version, own=state.own, coalition=state.coalition_id,
        coalition_name=coalition.label if coalition else None,
        coalition_left=coalition is not None and not coalition.active, status=state.status,
        text=text if isinstance(text, str) else None, unacknowledged=state.unacknowledged,
        late=state.late, issued_at=state.issued_at, arrived_at=state.arrived_at,
        updated_at=state.updated_at,
        claims={k: v for k, v in state.claims.items() if k != "updates"},
        updates=[UpdateView(seq=e.update.seq, status=e.update.status, text=e.update.text,
                            reason=e.update.reason, reopened=e.reopened, at=e.update.at,
                            by=e.update.by, by_name=names.get(e.update.by))
                 for e in alert_timeline(state)],
        missing_updates=state.missing_updates,
        recipients=[RecipientView(
            org_id=r.org_id, name=names.get(r.org_id), status=r.status,
            answered_at=r.answered_at,
            answers=[AnswerView(status=a.status, at=a.at) for a in r.answers],
            offers=[OfferView(capability=o.capability, at=o.at) for o in r.offers],
            matches_ask=r.matches_ask, resends=r.resends) for r in state.recipients],
        answer=state.answer,
        answers=[AnswerView(status=a.status, at=a.at) for a in state.answers],
        answer_offers=[OfferView(capability=o.capability, at=o.at)
                       for o in state.answer_offers])


@contextmanager
def alert_answers() -> Iterator[None]:
    """Alert refusals as API errors (ids and field names only)."""
    with sharing_answers():
        try:
            yield
        except UnknownAlert as error:
            raise ApiError(404, "not_found", str(error)) from None
        except AlertRoomError as error:
            raise ApiError(503, "homeserver_unavailable", str(error)) from None
        except AlertError as error:
            field = "body" if error.field is None else f"body.{error.field}"
            raise invalid([FieldProblem(field=field, problem=str(error))], str(error)) \
                from None
        except ValidationError as error:  # rules of the alert record beyond the request's
            raise invalid(field_problems(error, "body")) from None


def alert_payload(body: SendAlertRequest) -> Alert:
    """The alert record's payload; ``ValidationError`` for rules the request does not check
    (an ask listed twice...)."""
    return Alert.model_validate(body.model_dump(mode="json",
                                                exclude={"recipients", "withhold",
                                                         "coalition"},
                                                exclude_none=True))


class AlertEndpoints:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def _names(self) -> tuple[dict[str, str], dict[str, Coalition]]:
        async with self._node.store.read() as tx:
            coalitions = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
            return await tx.orgs.names(), coalitions

    async def _view(self, state: AlertState) -> AlertView:
        return alert_view(state, *await self._names())

    async def alert_send(self, call: Call[SendAlertRequest, NoQuery]) -> AlertView:
        with alert_answers():
            payload = alert_payload(call.body)
            state = await send_alert(self._node, payload,
                                     recipients=call.body.recipients,
                                     withhold=call.body.withhold,
                                     coalition_id=call.body.coalition,
                                     actor=call.principal.user,
                                     now=int(time.time()))
        return await self._view(state)

    async def alert_list(self, call: Call[NoBody, NoQuery]) -> AlertList:
        states = await list_alerts(self._node)
        names, coalitions = await self._names()
        return AlertList(items=[alert_view(s, names, coalitions) for s in states])

    async def alert_get(self, call: Call[NoBody, NoQuery]) -> AlertView:
        with alert_answers():
            state = await get_alert(self._node, call.path["issuer"], call.path["record_id"])
        return await self._view(state)

    async def alert_set_status(self, call: Call[StatusRequest, NoQuery]) -> AlertView:
        with alert_answers():
            state = await update_alert(self._node, call.path["record_id"],
                                       status=call.body.status, text=call.body.text,
                                       reason=call.body.reason, actor=call.principal.user,
                                       now=int(time.time()))
        return await self._view(state)

    async def alert_answer(self, call: Call[AnswerRequest, NoQuery]) -> AlertView:
        with alert_answers():
            state = await respond(self._node, call.path["issuer"], call.path["record_id"],
                                  answer=call.body.answer, offers=call.body.offers,
                                  actor=call.principal.user, now=int(time.time()))
        return await self._view(state)

    def endpoints(self) -> list[Endpoint]:
        one = "/alerts/{issuer}/{record_id}"
        node = self._node
        return [
            Endpoint("POST", "/alerts", self.alert_send,
                     "Send an urgent alert to a coalition (or chosen members of it)", Role.editor,
                     body=SendAlertRequest, response=AlertView, status=201,
                     errors=(503,), tags=TAGS, links=(
                         Link("GetAlert", "GET", one, {"issuer": "issuer",
                                                       "record_id": "record_id"}),
                         Link("UpdateAlert", "POST", "/alerts/{record_id}/status",
                              {"record_id": "record_id"}))),
            Endpoint("GET", "/alerts", self.alert_list,
                     "Alerts sent and received, unacknowledged first", response=AlertList,
                     tags=TAGS),
            *setting_endpoints(
                "/alerts/settings", AlertSettings, lambda: alert_settings(node),
                lambda chosen, _actor: set_alert_settings(node, chosen),
                read="Escalation and lateness thresholds",
                change="Change the escalation and lateness thresholds", tags=TAGS),
            *setting_endpoints(
                "/alerts/watchers", AlertWatchers, lambda: alert_watchers(node),
                lambda chosen, actor: set_alert_watchers(node, chosen, actor=actor),
                read="Staff Matrix accounts invited into every alert room for push notices",
                change="Choose the staff Matrix accounts invited into every alert room",
                tags=TAGS),
            Endpoint("GET", one, self.alert_get,
                     "One alert; for our own, delivered / seen / helping per member",
                     response=AlertView, errors=(404,), tags=TAGS),
            Endpoint("POST", "/alerts/{record_id}/status", self.alert_set_status,
                     "Update our alert (released), close it, or reopen it with a reason",
                     Role.editor,
                     body=StatusRequest, response=AlertView, errors=(404, 503), tags=TAGS),
            Endpoint("POST", one + "/answer", self.alert_answer,
                     "Our answer to a received alert: seen, or helping with what",
                     Role.editor, body=AnswerRequest, response=AlertView, errors=(404,),
                     tags=TAGS),
        ]
