"""De-duplication when one organisation is in two coalitions (M15, decision 0032).

Four real nodes on two federated homeservers. X is in coalition A (with P and Q) and in
coalition B (with P and R): P is in both. Each coalition has its own linkage key. P holds a case
about a defender whose consent covers A only; R holds a case about the same defender (its
consent, from before consent was per coalition, means R's only coalition, B).

- X's check in A asks P and Q under A's key: P may hold the case. X's check in B asks P and R
  under B's key: R may hold it, P answers "no match" (its defender did not consent to B).
- After X leaves B, X holds no key of B and cannot check there; A keeps working.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation
from node.assembly import node_registry
from node.core.coalition import leave_coalition
from node.core.runtime import CoalitionNotChosen
from node.core.store import Role
from node.features.dedup.service import key_state
from tests.features.dedup.test_federated import B_CASE, SAME_PERSON_DRAFT
from tests.support.api_harness import RunningApi
from tests.support.sharing import ORGS, eventually, form_coalition, member_running, new_member


async def _check(api: RunningApi, coalition: str | None) -> dict[str, Any]:
    """Start a case check in ``coalition`` and wait for every answer."""
    body: dict[str, Any] = {"kind": "case", "draft": SAME_PERSON_DRAFT}
    if coalition is not None:
        body["coalition"] = coalition
    check_id = (await api.json("POST", "/dedup/checks", json=body, expect=201))["check_id"]

    async def probe() -> dict[str, Any] | None:
        view: dict[str, Any] = await api.json("GET", f"/dedup/checks/{check_id}", Role.viewer)
        return view if view["status"] == "complete" else None

    return await eventually(probe, what=f"every answer to check {check_id}")


def _matched(view: dict[str, Any]) -> list[str]:
    return [m["org_id"] for m in view["matches"] if m["score_band"] != "none"]


async def test_checks_in_each_coalition_use_its_key_its_members_and_its_consent(
    federation: Federation, tmp_path: Path
) -> None:
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

        async def one_key(coalition: str, members: list[RunningApi]) -> str | None:
            states = [await key_state(m.node, coalition) for m in members]
            ids = {s.key_id for s in states if s is not None}
            return ids.pop() if all(states) and len(ids) == 1 else None

        key_a = await eventually(lambda: one_key(coalition_a, [x, p, q]), what="A's key")
        key_b = await eventually(lambda: one_key(coalition_b, [x, p, r]), what="B's key")
        assert key_a != key_b
        with pytest.raises(CoalitionNotChosen):  # Q is not in B: it holds no key of it
            await key_state(q.node, coalition_b)

        await p.json("POST", "/cases", expect=201,
                     json={**B_CASE, "consent_coalitions": [coalition_a]})
        await r.json("POST", "/cases", json=B_CASE, expect=201)

        unnamed = await x.json("POST", "/dedup/checks", expect=422,
                               json={"kind": "case", "draft": SAME_PERSON_DRAFT})
        assert "body.coalition" in str(unnamed)
        in_a = await _check(x, coalition_a)
        assert (in_a["coalition"], in_a["answered"]) == (coalition_a, sorted([p_id, q_id]))
        assert _matched(in_a) == [p_id] and in_a["refused"] == {}
        in_b = await _check(x, coalition_b)
        assert (in_b["coalition"], in_b["answered"]) == (coalition_b, sorted([p_id, r_id]))
        assert _matched(in_b) == [r_id] and in_b["refused"] == {}  # P's case: A only

        await leave_coalition(x.node, coalition_b, node_registry().after_coalition_left)
        with pytest.raises(CoalitionNotChosen):
            await key_state(x.node, coalition_b)
        gone = await x.json("POST", "/dedup/checks", expect=422, json={
            "kind": "case", "draft": SAME_PERSON_DRAFT, "coalition": coalition_b})
        assert "body.coalition" in str(gone)
        async with x.node.store.read() as tx:
            drops = [e.details for e in await tx.audit.recent(limit=200)
                     if e.action == "dedup.key.drop"]
        assert drops == [{"key_id": key_b, "coalition": coalition_b}]
        again = await _check(x, None)  # A is X's only coalition now
        assert again["coalition"] == coalition_a and _matched(again) == [p_id]
