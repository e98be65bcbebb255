"""One organisation in two coalitions with partly overlapping members (M15, decision 0032).

Four real nodes on two federated homeservers. X is in coalition A (with P and Q) and in
coalition B (with P and R): P is in both, Q only in A, R only in B.

- A case whose defender consented to sharing within A only is refused for B (even for P,
  through B) and reaches P and Q through A, marked as come through A.
- X and P share one pair room whatever the coalition.
- An alert to A reaches P and Q, never R.
- Figures of A and B stay apart; the SDG report for B holds only B's.
- After X leaves B: A keeps working, what X received through B stays (marked as from a
  coalition it left), B's members stop counting X, and R forgets its pair room with X.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from node.assembly import node_registry
from node.core.coalition import leave_coalition
from node.core.store import Role
from node.core.store.pair_rooms import PairRoomRepository
from tests.support.api_harness import SAMPLE_CASES, RunningApi
from tests.support.sharing import (
    ORGS,
    eventually,
    form_coalition,
    member_running,
    new_member,
    received,
)

FIELDS = ["country", "violations", "victims.groups"]


async def _holds(api: RunningApi, issuer: str, record_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        return next((item for item in await received(api)
                     if item["issuer"] == issuer and item["record_id"] == record_id), None)

    return await eventually(probe, what=f"record {record_id} at {api.node.org_id}")


async def _alert_at(api: RunningApi, record_id: str) -> dict[str, Any] | None:
    listed = await api.json("GET", "/alerts", Role.viewer)
    return next((item for item in listed["items"] if item["record_id"] == record_id), None)


async def _acknowledged_by(api: RunningApi, record_id: str, members: set[str]) -> None:
    """Every recipient of our alert acknowledged it, and its recipients are ``members``."""
    async def probe() -> bool:
        alert = await api.json("GET", f"/alerts/{api.node.org_id}/{record_id}", Role.viewer)
        recipients = {item["org_id"]: item["status"] for item in alert["recipients"]}
        assert set(recipients) == members
        return all(status != "sent" for status in recipients.values())

    await eventually(probe, what="acknowledgements")


def _alert(text: str) -> dict[str, Any]:
    return {"alert_type": "arrest", "urgency": "critical", "country": "CO", "text": text}


async def test_one_organisation_in_two_coalitions(federation: Federation, tmp_path: Path) -> None:
    homes = [federation[0], federation[1], federation[0], federation[1]]
    orgs = [*ORGS, ("Red Wayuu de Defensoras", "CO")]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, orgs, strict=True))]
    x_config, p_config, q_config, r_config = configs
    coalition_a = await form_coalition([x_config, p_config, q_config], "Coalición A")
    coalition_b = await form_coalition([x_config, p_config, r_config], "Coalición B")
    async with AsyncExitStack() as stack:
        x, p, q, r = [await stack.enter_async_context(member_running(c)) for c in configs]
        p_id, q_id, r_id = p.node.org_id, q.node.org_id, r.node.org_id

        # Consent per coalition: a case consented for A only.
        case = {**SAMPLE_CASES["cauca"], "consent_coalitions": [coalition_a]}
        record_id = (await x.json("POST", "/cases", json=case, expect=201))["record_id"]
        share = f"/cases/{record_id}/share"
        refused = await x.json("POST", share, json={
            "recipients": [r_id], "fields": FIELDS, "coalition": coalition_b}, expect=409)
        assert refused["error"]["code"] == "consent_refused"
        await x.json("POST", share, json={  # P is in B too, but consent is for A only
            "recipients": [p_id], "fields": FIELDS, "coalition": coalition_b}, expect=409)
        not_member = await x.json("POST", share, json={
            "recipients": [r_id], "fields": FIELDS, "coalition": coalition_a}, expect=422)
        assert r_id in not_member["error"]["message"]
        await x.json("POST", share, json={
            "recipients": [p_id, q_id], "fields": FIELDS, "coalition": coalition_a})
        at_p, at_q = await _holds(p, x.node.org_id, record_id), \
            await _holds(q, x.node.org_id, record_id)
        assert at_p["coalition_id"] == at_q["coalition_id"] == coalition_a
        assert at_p["coalition"] == "Coalición A" and at_p["coalition_left"] is False

        # A case consented for both goes to P through B: still the one pair room they share.
        both = (await x.json("POST", "/cases", json={
            **SAMPLE_CASES["nairobi"], "consent_coalitions": [coalition_a, coalition_b]},
            expect=201))["record_id"]
        await x.json("POST", f"/cases/{both}/share", json={
            "recipients": [p_id], "fields": FIELDS, "coalition": coalition_b})
        assert (await _holds(p, x.node.org_id, both))["coalition_id"] == coalition_b
        for node, other in ((x.node, p_id), (p.node, x.node.org_id)):
            async with node.store.read() as tx:
                rooms = [pair for pair in await PairRoomRepository(tx.session).all()
                         if pair.org_id == other]
            assert len(rooms) == 1

        # R shares a case with X through B, the only coalition they share.
        r_case = (await r.json("POST", "/cases", json=SAMPLE_CASES["nairobi"],
                               expect=201))["record_id"]
        await r.json("POST", f"/cases/{r_case}/share", json={
            "recipients": [x.node.org_id], "fields": FIELDS})
        from_r = await _holds(x, r_id, r_case)
        assert from_r["coalition_id"] == coalition_b

        # An alert to A reaches P and Q and is acknowledged by both; R never holds it.
        to_a = (await x.json("POST", "/alerts", json={
            **_alert("Detención en Suba"), "coalition": coalition_a}, expect=201))["record_id"]
        await _acknowledged_by(x, to_a, {p_id, q_id})
        # An alert to B after it: once R holds the later one, the earlier would have arrived.
        to_b = (await x.json("POST", "/alerts", json={
            **_alert("Allanamiento en Riohacha"), "coalition": coalition_b},
            expect=201))["record_id"]
        await _acknowledged_by(x, to_b, {p_id, r_id})
        assert await _alert_at(r, to_a) is None
        assert await _alert_at(q, to_b) is None
        assert (await _alert_at(r, to_b)) is not None

        # Figures stay apart: Q publishes to A, R to B; X's views and SDG reports per coalition.
        for api, held in ((q, "cauca"), (r, "nairobi")):
            await api.json("POST", "/cases", json=SAMPLE_CASES[held], expect=201)
        await q.json("POST", "/aggregates/publish", json={"coalition": coalition_a})
        await r.json("POST", "/aggregates/publish", json={"coalition": coalition_b})

        async def contributors(coalition: str, expected: str) -> set[str]:
            async def probe() -> set[str] | None:
                view = await x.json("GET", f"/coalition/aggregates?coalition={coalition}",
                                    Role.viewer)
                found = {c["org_id"] for c in view["contributors"]}
                return found if expected in found else None

            return await eventually(probe, what=f"{expected}'s figures")

        assert r_id not in await contributors(coalition_a, q_id)
        assert q_id not in await contributors(coalition_b, r_id)
        sdg_b = await x.json("GET", f"/coalition/reports/sdg?coalition={coalition_b}&country=KE",
                             Role.viewer)
        assert r_id in {c["org_id"] for c in sdg_b["contributors"]}
        assert q_id not in {c["org_id"] for c in sdg_b["contributors"]}

        # X leaves B.
        await leave_coalition(x.node, coalition_b, node_registry().after_coalition_left)

        async def r_no_longer_counts_x() -> bool:
            async with r.node.store.read() as tx:
                return x.node.org_id not in await tx.coalitions.member_ids(coalition_b)

        await eventually(r_no_longer_counts_x, what="X gone from B's roster at R")
        again = await r.json("POST", f"/cases/{r_case}/share", json={
            "recipients": [x.node.org_id], "fields": FIELDS}, expect=422)
        assert x.node.org_id in again["error"]["message"]
        kept = await _holds(x, r_id, r_case)
        assert kept["coalition_id"] == coalition_b and kept["coalition_left"] is True
        async with x.node.transport() as transport:
            joined = set(await transport.joined_rooms())
        assert coalition_b not in joined
        async with x.node.store.read() as tx:
            assert await tx.coalitions.shared_with(r_id) == []
            assert await PairRoomRepository(tx.session).for_org(r_id) is None

        async def r_forgot_the_pair_room() -> bool:  # X left it: R leaves and forgets it too
            async with r.node.store.read() as tx:
                return await PairRoomRepository(tx.session).for_org(x.node.org_id) is None

        await eventually(r_forgot_the_pair_room, what="R forgetting its pair room with X")
        # A keeps working: a new case through A, and an alert to A (now X's only coalition).
        second = (await x.json("POST", "/cases", json={
            **SAMPLE_CASES["nairobi"], "consent_coalitions": [coalition_a]},
            expect=201))["record_id"]
        await x.json("POST", f"/cases/{second}/share", json={
            "recipients": [q_id], "fields": FIELDS})
        assert (await _holds(q, x.node.org_id, second))["coalition_id"] == coalition_a
        after = (await x.json("POST", "/alerts", json=_alert("Nueva detención"),
                              expect=201))["record_id"]
        await _acknowledged_by(x, after, {p_id, q_id})
        assert await _alert_at(r, after) is None
