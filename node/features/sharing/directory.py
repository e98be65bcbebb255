"""What other members sent (received records) and who they are (the members directory)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from federation.consent import ATTACHMENTS
from node.core.coalition import safety_code_changes, safety_code_compared
from node.core.expulsion import pending_expulsions
from node.core.sharing import disclosed_fields
from node.core.store import InvalidRecordId, Role, StoreTransaction
from node.core.store.coalitions import Coalition
from node.core.store.received import MAX_PAGE, ReceivedRecord
from node.core.web.context import current_visit, render, see_other, staff_of, web_context
from node.core.web.i18n import Formatter
from node.core.web.labels import KIND_NAMES
from node.core.web.presenters import member_card, received_card
from node.core.web.routes import PageRoute
from node.features.evidence import human_size, received_files_of
from schemas.common import ORG_ID_PATTERN
from schemas.typology import Vocabulary

RECEIVED_VIEWED: Final = "received.view"
PAGE_SIZE: Final = 20
DEFAULT_KIND: Final = "case"
"""What the received list shows first: cases, not the protocol records around them."""


async def known_coalitions(tx: StoreTransaction) -> dict[str, Coalition]:
    """Every coalition this node is or was in, by id: received records name theirs."""
    return {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}


def _offset(request: web.Request) -> int:
    text = request.query.get("offset", "0")
    return min(int(text), 1_000_000) if text.isdigit() else 0


async def received_list(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    offset = _offset(request)
    wanted = request.query.get("kind")  # absent: cases; empty ("All kinds"): every kind
    kind = DEFAULT_KIND if wanted is None else wanted or None
    if kind is not None and kind not in KIND_NAMES:
        kind = None
    async with ctx.node.store.read() as tx:
        records = await tx.received.list_latest(kind=kind, limit=min(PAGE_SIZE + 1, MAX_PAGE),
                                                offset=offset)
        members = {m.org_id: m for m in await tx.orgs.members()}
        coalitions = await known_coalitions(tx)
    page = records[:PAGE_SIZE]
    kind_names = {code: fmt.gettext(name) for code, name in KIND_NAMES.items()}
    return render(
        request, "received/list.html",
        received=[received_card(r, members, fmt, disclosed_fields(r.claims),
                                coalitions=coalitions) for r in page],
        kind=kind, kinds=sorted(kind_names.items(), key=lambda pair: pair[1]),
        kind_names=kind_names, offset=offset,
        next_offset=offset + PAGE_SIZE if len(records) > PAGE_SIZE else None,
        previous_offset=max(0, offset - PAGE_SIZE) if offset else None,
    )


async def received_detail(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    issuer, record_id = request.match_info["issuer"], request.match_info["record_id"]
    try:
        async with ctx.node.store.read() as tx:
            versions = await tx.received.versions(issuer, record_id)
            members = {m.org_id: m for m in await tx.orgs.members()}
            coalitions = await known_coalitions(tx)
            retraction = (await tx.received.retraction_of(issuer, record_id)
                          if versions and versions[-1].retracted else None)
    except InvalidRecordId:
        versions = []
    if not versions:
        raise web.HTTPNotFound()
    latest = versions[-1]
    async with ctx.node.store.transaction() as tx:
        await tx.audit.append(staff_of(request).username, RECEIVED_VIEWED,
                              target=latest.record_id,
                              details={"issuer": issuer, "version": latest.version})
    kind_names = {code: fmt.gettext(name) for code, name in KIND_NAMES.items()}
    shown = replace(latest, claims=without_files(latest.claims))
    return render(
        request, "received/detail.html",
        item=received_card(shown, members, fmt, disclosed_fields(latest.claims),
                           with_facts=True, coalitions=coalitions),
        files=await received_files_of(ctx.node, issuer, latest.record_id),
        human_size=human_size,
        versions=[(v.version, fmt.datetime(v.received_at)) for v in reversed(versions)],
        kind_names=kind_names, tombstone=_tombstone(retraction, fmt),
    )


def without_files(claims: dict[str, Any] | None) -> dict[str, Any] | None:
    """The claims to show as facts: files are shown on their own, from the evidence store."""
    if claims is None:
        return None
    return {name: value for name, value in claims.items() if name != ATTACHMENTS}


def _tombstone(retraction: ReceivedRecord | None, fmt: Formatter) -> dict[str, str] | None:
    """Why and when the issuer retracted a record, from its signed retraction."""
    if retraction is None or retraction.claims is None:
        return None
    claims = retraction.claims
    issued_at = claims.get("issued_at")
    when = (fmt.datetime(datetime.fromtimestamp(issued_at, UTC))
            if isinstance(issued_at, int) else fmt.datetime(retraction.received_at))
    reason = claims.get("reason")
    note = claims.get("note")
    return {"reason": fmt.term(Vocabulary.RETRACTION_REASON, reason)
            if isinstance(reason, str) else "", "when": when,
            "note": note if isinstance(note, str) else ""}


async def members_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    fmt = current_visit(request).fmt
    async with ctx.node.store.read() as tx:
        members = await tx.orgs.members()
    cards = sorted((member_card(m, fmt) for m in members if m.org_id != ctx.node.org_id),
                   key=lambda card: card.name.casefold())
    changes = {org_id: {"previous": change.previous,
                        "at": fmt.datetime(datetime.fromtimestamp(change.at, UTC))}
               for org_id, change in (await safety_code_changes(ctx.node)).items()}
    names = {card.org_id: card.name for card in cards}
    names[ctx.node.org_id] = ctx.node.own.name
    expulsions = [{"key": p.key, "target": names.get(p.target, p.target),
                   "reason": p.reason, "proposer": names.get(p.proposer, p.proposer),
                   "approvals": len(p.signers), "threshold": p.threshold,
                   "signed_here": ctx.node.org_id in p.signers,
                   "against_us": p.target == ctx.node.org_id}
                  for p in await pending_expulsions(ctx.node)]
    coalitions = await ctx.node.coalitions()
    async with ctx.node.store.read() as tx:
        memberships = await tx.coalitions.memberships()
    # This node's view only: which of its own coalitions each member is verified in.
    member_coalitions = {card.org_id: [c for c in coalitions
                                       if card.org_id in memberships.get(c.coalition_id, ())]
                         for card in cards}
    # A coalition's id is the room it was made in: another room means it moved (0025).
    moved = [{"name": c.label, "room": c.room_id, "from": c.coalition_id}
             for c in coalitions if c.room_id != c.coalition_id]
    return render(request, "members.html", members=cards, changes=changes,
                  expulsions=expulsions, moved=moved, coalitions=coalitions,
                  member_coalitions=member_coalitions,
                  own_safety_code=ctx.node.keys.public().safety_code(),
                  own_country=fmt.country(ctx.node.own.country),
                  done=request.query.get("done"),
                  can_publish_revocation=staff_of(request).role == Role.admin)


async def compared(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    await safety_code_compared(ctx.node, request.match_info["org_id"],
                               actor=staff_of(request).username)
    return see_other("/members", done="compared")


ROUTES: Final = [
    PageRoute("GET", "/received", received_list),
    PageRoute("GET", "/received/{issuer:" + ORG_ID_PATTERN.strip("^$") + "}/{record_id}",
              received_detail),
    PageRoute("GET", "/members", members_page),
    PageRoute("POST", "/members/{org_id:" + ORG_ID_PATTERN.strip("^$") + "}/compared", compared,
              Role.editor),
]
