"""After an expulsion (M13): the linkage key moves on, and the expelled member's old key finds
nothing."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.encoding import b64u_encode
from federation.identity import OrgKeys
from federation.linkage import SCHEME, LinkageKey
from federation.roster import member_entry
from node.core.runtime import Node
from node.core.sharing import in_session
from node.features.cases.casebook import add_case
from node.features.dedup.service import (
    KEY_SCHEME,
    KeyState,
    _compare,
    _save_key,
    _take_key,
    case_features,
    distribute_linkage_key,
    encodings_of,
    key_state,
    key_successor,
)
from schemas.case import Case
from schemas.payloads import OrgProfile
from sync.host import VerifiedRecord
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.coalitions import TEST_COALITION, in_coalition
from tests.support.offline_node import make_offline_node

OLD_KEY = LinkageKey(bytes(range(32)))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as running:
        yield running


async def _member(node: Node, *, above: str | None = None, below: str | None = None,
                  coalition_id: str = TEST_COALITION) -> str:
    """A verified member of ``coalition_id`` whose org id sorts above or below the given one."""
    while True:
        keys = OrgKeys.generate()
        if (above is None or keys.org_id > above) and (below is None or keys.org_id < below):
            break
    entry = member_entry(keys, OrgProfile(name="Miembro", country="KE"), "@m:example.org")
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="0000",
                                  matrix_user_id="@m:example.org")
        await in_coalition(tx, node.org_id, keys.org_id, coalition_id=coalition_id)
    node.forget_coalitions()
    return keys.org_id


async def _expel(node: Node, org_id: str) -> None:
    async with node.store.transaction() as tx:
        assert await tx.orgs.mark_revoked(org_id, 1_700_000_000)


async def _holding_key_of(node: Node, issuer: str, coalition_id: str = TEST_COALITION) -> None:
    async with node.store.transaction() as tx:
        await in_coalition(tx, node.org_id, coalition_id=coalition_id)
        await _save_key(tx, coalition_id, KeyState(
            key_id=OLD_KEY.key_id, secret=b64u_encode(OLD_KEY.to_bytes()), issuer=issuer,
            issued_at=100, sent_to=[]))
    node.forget_coalitions()


def _record(issuer: str, claims: dict[str, Any], issued_at: int) -> VerifiedRecord:
    claims = {**claims, "coalition": TEST_COALITION}
    return VerifiedRecord(issuer=issuer, record_id="0190a000-0000-7000-8000-000000000001",
                          version=1, kind="dedup-query", claims=claims,
                          disclosed_paths=frozenset(claims), issued_at=issued_at,
                          room_id=TEST_COALITION, event_id="$e",
                          origin_server_ts=issued_at * 1000)


async def _grant(node: Node, issuer: str, key: LinkageKey, issued_at: int) -> None:
    claims = {"scheme": KEY_SCHEME, "linkage_key_id": key.key_id,
              "encodings": {"key": b64u_encode(key.to_bytes())}}
    async with node.store.transaction() as tx, in_session(tx.session, node) as inner:
        await _take_key(inner, node, _record(issuer, claims, issued_at))


def test_the_successor_is_the_smallest_org_id_whatever_the_order() -> None:
    assert key_successor(["oc", "oa", "ob"]) == key_successor(["ob", "oc", "oa"]) == "oa"


async def test_when_the_expelled_member_issued_the_key_the_successor_issues_a_new_one(
    api: RunningApi
) -> None:
    node = api.node
    expelled = await _member(node)
    other = await _member(node, above=node.org_id)  # this node sorts first: the successor
    await _holding_key_of(node, expelled)
    assert not await distribute_linkage_key(node, 200)  # the issuer is still a member
    await _expel(node, expelled)
    assert await distribute_linkage_key(node, 201)
    taken = await key_state(node)
    assert taken is not None and taken.issuer == node.org_id
    assert taken.key_id != OLD_KEY.key_id and taken.sent_to == [other]
    assert not await distribute_linkage_key(node, 202)  # sent once
    async with node.store.read() as tx:
        actions = [e.action for e in await tx.audit.recent(limit=20)]
    assert "dedup.key.take-over" in actions and "dedup.key.send" in actions


async def test_a_member_that_is_not_the_successor_waits_for_the_successors_key(
    api: RunningApi
) -> None:
    node = api.node
    expelled = await _member(node)
    successor = await _member(node, below=node.org_id)
    await _holding_key_of(node, expelled)
    await _expel(node, expelled)
    assert not await distribute_linkage_key(node, 201)
    other = await _member(node, above=successor)
    await _grant(node, other, LinkageKey.generate(), 300)  # not the successor: ignored
    held = await key_state(node)
    assert held is not None and held.key_id == OLD_KEY.key_id
    new_key = LinkageKey.generate()
    await _grant(node, successor, new_key, 50)  # even dated before the old key
    held = await key_state(node)
    assert held is not None and (held.key_id, held.issuer) == (new_key.key_id, successor)


async def test_a_grant_from_another_member_is_still_refused_while_the_issuer_is_not_revoked(
    api: RunningApi
) -> None:
    node = api.node
    issuer = await _member(node)
    smallest = await _member(node, below=min(issuer, node.org_id))
    await _holding_key_of(node, issuer)
    await _grant(node, smallest, LinkageKey.generate(), 300)
    held = await key_state(node)
    assert held is not None and held.key_id == OLD_KEY.key_id


async def test_a_query_the_expelled_member_sends_with_the_old_key_matches_nothing(
    api: RunningApi
) -> None:
    node = api.node
    expelled = await _member(node)
    await _member(node, above=node.org_id)
    await _holding_key_of(node, expelled)
    case = Case.model_validate(SAMPLE_CASES["nairobi"])
    async with node.store.transaction() as tx:
        await add_case(tx, issuer=node.org_id, case=case, author="t", issued_at=1_717_000_000)
    old_encodings = encodings_of(case_features(case), OLD_KEY)[0].wire_fields()
    claims = {"scheme": SCHEME, "linkage_key_id": OLD_KEY.key_id, "encodings": old_encodings}
    now = int(time.time())
    async with node.store.transaction() as tx:  # under the old key, before: a match
        before = (await _compare(tx, node, _record(expelled, claims, now), now)).payload
    assert before.possible_match
    await _expel(node, expelled)
    assert await distribute_linkage_key(node, now)
    async with node.store.transaction() as tx:
        after = (await _compare(tx, node, dataclasses.replace(
            _record(expelled, claims, now), record_id="0190a000-0000-7000-8000-000000000002"),
            now)).payload
    assert not after.possible_match and after.handle is None and after.contact is None
    assert after.refused is not None and after.refused.startswith("linkage_key_id")



async def test_the_successor_is_chosen_among_the_members_of_that_coalition_only(
    api: RunningApi
) -> None:
    node = api.node
    expelled = await _member(node)
    other = await _member(node, above=node.org_id)
    # A member of another coalition sorts first, but is not in this one: this node takes over.
    await _member(node, below=node.org_id, coalition_id="!elsewhere:test")
    await _holding_key_of(node, expelled)
    await _expel(node, expelled)
    assert await distribute_linkage_key(node, 201, TEST_COALITION)
    taken = await key_state(node, TEST_COALITION)
    assert taken is not None and taken.issuer == node.org_id and taken.sent_to == [other]
