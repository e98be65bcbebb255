"""The node's sync host (node.sync_host) on a real store: delivery, versions, retractions,
trust from the stored roster, pair rooms. No homeserver here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from federation.identity import OrgKeys, sign_member_entry
from federation.keys import KeyNotTrusted
from federation.secretbox import FAST_TEST_PARAMS
from federation.transport import TimelineEvent, TransportError
from node.assembly import node_registry
from node.core.rooms import PAIR_EVENT_TYPE, InviteHandler
from node.core.runtime import Node
from node.core.store import create_data_key, open_store
from node.core.store.pair_rooms import PairRoomRepository
from node.core.store.received import Incoming
from node.core.sync_host import NodeSyncHost, coalition_problem
from schemas.ids import new_record_id
from sync.host import Quarantined, VerifiedRecord
from tests.support.coalitions import TEST_COALITION, in_coalition

OWN, ISSUER, STRANGER = OrgKeys.generate(), OrgKeys.generate(), OrgKeys.generate()
RECORD_ID = new_record_id()


@pytest.fixture
async def host(store_location: Path | str, tmp_path: Path) -> AsyncIterator[NodeSyncHost]:
    store = await open_store(store_location, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS))
    async with store.transaction() as tx:
        for keys in (OWN, ISSUER):
            entry = sign_member_entry(keys, {"name": "x", "country": "KE"})
            await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="s",
                                      matrix_user_id=f"@{keys.org_id[:8]}:hs")
        await in_coalition(tx, OWN.org_id, ISSUER.org_id)
    node = Node(config=cast(Any, None), store=store, keys=OWN, own=cast(Any, None))
    try:
        yield await NodeSyncHost.open(node, node_registry())
    finally:
        await store.close()


def _record(version: int, claims: dict[str, Any], *, kind: str = "case",
            record_id: str = RECORD_ID, issuer: str = ISSUER.org_id,
            room_id: str = "!r:hs") -> VerifiedRecord:
    return VerifiedRecord(
        issuer=issuer, record_id=record_id, version=version, kind=kind,
        claims={"record_id": record_id, "version": version, "kind": kind, **claims},
        disclosed_paths=frozenset(claims), issued_at=1, room_id=room_id, event_id=f"$e{version}",
        origin_server_ts=1,
    )


def _retraction(target: str = RECORD_ID, issuer: str = ISSUER.org_id) -> VerifiedRecord:
    return _record(1, {"target": {"issuer": issuer, "record_id": target},
                       "reason": "error"}, kind="retraction", record_id=new_record_id(),
                   issuer=ISSUER.org_id)


async def _deliver(host: NodeSyncHost, *records: VerifiedRecord) -> None:
    """Each record in a transaction of its own, as if each came in its own envelope."""
    for record in records:
        async with host.transaction() as session:
            await host.deliver(session, [record])


async def _latest(host: NodeSyncHost, record_id: str = RECORD_ID) -> Any:
    async with host.node.store.read() as tx:
        return await tx.received.latest(ISSUER.org_id, record_id)


async def test_delivery_is_idempotent_and_a_late_older_version_is_not_shown(
    host: NodeSyncHost,
) -> None:
    await _deliver(host, _record(2, {"country": "KE"}), _record(2, {"country": "KE"}),
                   _record(1, {"country": "UG"}))
    latest = await _latest(host)
    assert (latest.version, latest.claims["country"], latest.retracted) == (2, "KE", False)
    async with host.node.store.read() as tx:
        versions = await tx.received.versions(ISSUER.org_id, RECORD_ID)
        assert [v.version for v in versions] == [1, 2]
        assert await tx.received.count() == 1


async def test_retraction_wipes_every_version_and_later_versions_arrive_wiped(
    host: NodeSyncHost,
) -> None:
    await _deliver(host, _record(1, {"narrative": "held"}), _retraction(),
                   _record(2, {"narrative": "late"}))
    latest = await _latest(host)
    assert (latest.version, latest.claims, latest.retracted) == (2, None, True)
    async with host.node.store.read() as tx:
        versions = await tx.received.versions(ISSUER.org_id, RECORD_ID)
    assert all(v.claims is None and v.retracted for v in versions)


async def test_retraction_before_its_target_leaves_a_tombstone(host: NodeSyncHost) -> None:
    other = new_record_id()
    await _deliver(host, _retraction(other))
    await _deliver(host, _record(1, {"narrative": "too late"}, record_id=other))
    latest = await _latest(host, other)
    assert (latest.version, latest.claims, latest.retracted) == (1, None, True)


async def test_a_retraction_of_another_issuers_record_is_ignored(host: NodeSyncHost) -> None:
    await _deliver(host, _record(1, {"narrative": "kept"}))
    await _deliver(host, _retraction(issuer=STRANGER.org_id))
    latest = await _latest(host)
    assert latest.claims == {"record_id": RECORD_ID, "version": 1, "kind": "case",
                             "narrative": "kept", "coalition": TEST_COALITION}


async def _envelope(host: NodeSyncHost, *records: VerifiedRecord) -> None:
    """Every record in one call, as the inbox delivers the records of one envelope."""
    async with host.transaction() as session:
        await host.deliver(session, list(records))


async def _versions(host: NodeSyncHost, record_id: str) -> list[tuple[int, Any]]:
    async with host.node.store.read() as tx:
        versions = await tx.received.versions(ISSUER.org_id, record_id)
    return [(v.version, v.claims and v.claims.get("country")) for v in versions]


async def test_one_envelope_of_new_duplicate_and_older_versions_stores_each_version_once(
    host: NodeSyncHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled: list[tuple[str, int]] = []

    async def note(session: object, node: object, record: VerifiedRecord) -> None:
        handled.append((record.record_id, record.version))

    monkeypatch.setitem(host.features.record_handlers, "case", note)
    held, fresh = new_record_id(), new_record_id()
    await _envelope(host, _record(3, {"country": "KE"}, record_id=held))
    envelope = [
        _record(1, {"country": "UG"}, record_id=fresh),
        _record(1, {"country": "TZ"}, record_id=fresh),  # the same version again: ignored
        _record(3, {"country": "CO"}, record_id=held),  # already stored: kept as it was
        _record(2, {"country": "GT"}, record_id=held),  # older, late: stored, not shown
        _record(4, {"country": "BR"}, record_id=held),
    ]
    await _envelope(host, *envelope)
    await _envelope(host, *envelope)  # the whole envelope again, as after a crash
    assert await _versions(host, fresh) == [(1, "UG")]
    assert await _versions(host, held) == [(2, "GT"), (3, "KE"), (4, "BR")]
    assert (await _latest(host, held)).version == 4
    async with host.node.store.read() as tx:
        assert await tx.received.count() == 2
    # Every record goes to its kind's handler, in envelope order, each time it is delivered.
    expected = [(r.record_id, r.version) for r in envelope]
    assert handled == [(held, 3), *expected, *expected]


async def test_one_envelope_with_retractions_before_and_after_their_targets(
    host: NodeSyncHost,
) -> None:
    first, second = new_record_id(), new_record_id()
    await _envelope(host, _record(1, {"country": "KE"}, record_id=first), _retraction(first),
                    _record(2, {"country": "UG"}, record_id=first),
                    _retraction(second), _record(1, {"country": "TZ"}, record_id=second))
    for record_id, versions in ((first, [1, 2]), (second, [1])):
        latest = await _latest(host, record_id)
        assert (latest.version, latest.claims, latest.retracted) == (versions[-1], None, True)
        assert [v for v, _ in await _versions(host, record_id)][-len(versions):] == versions
        assert all(country is None for _, country in await _versions(host, record_id))


async def test_adding_many_counts_only_what_is_new(host: NodeSyncHost) -> None:
    records = [Incoming(ISSUER.org_id, new_record_id(), 1, "case", {"n": n}) for n in range(900)]
    async with host.node.store.transaction() as tx:
        assert await tx.received.add_many(records[:500], "verified") == 500
        assert await tx.received.add_many(records, "verified") == 400
        assert await tx.received.add_many([*records[:3], *records[:3]], "verified") == 0
        assert not await tx.received.add(ISSUER.org_id, records[0].record_id, 1, "case", {},
                                         "verified")
        assert await tx.received.count() == 900


async def test_trust_is_the_stored_roster(host: NodeSyncHost) -> None:
    trust = await host.trust()
    assert trust.recipient_key(ISSUER.org_id).kid == ISSUER.encryption_kid
    assert trust.node_user(ISSUER.org_id) == f"@{ISSUER.org_id[:8]}:hs"
    assert trust.node_user(STRANGER.org_id) is None
    with pytest.raises(KeyNotTrusted):
        trust.recipient_key(STRANGER.org_id)
    assert trust.resolver.signing_key_for(ISSUER.org_id, ISSUER.signing_kid, 5) is not None
    async with host.node.store.transaction() as tx:
        entry = sign_member_entry(STRANGER, {"name": "y", "country": "KE"})
        await tx.orgs.save_member(STRANGER.org_id, entry, verified=True, safety_code="s",
                                  matrix_user_id="@s:hs")
    assert (await host.trust()).node_user(STRANGER.org_id) == "@s:hs"


async def test_trust_is_rebuilt_only_when_the_roster_changes(host: NodeSyncHost) -> None:
    first = await host.trust()
    assert await host.trust() is first
    async with host.node.store.transaction() as tx:
        entry = sign_member_entry(STRANGER, {"name": "y", "country": "KE"})
        await tx.orgs.save_member(STRANGER.org_id, entry, verified=True, safety_code="s",
                                  matrix_user_id="@s:hs")
        inside = await host.trust(tx.session)  # sees its own transaction's roster
        assert inside is not first and inside.node_user(STRANGER.org_id) == "@s:hs"
    assert await host.trust() is inside
    async with host.node.store.transaction() as tx:
        await tx.orgs.save_member(STRANGER.org_id, entry, verified=False, safety_code="s",
                                  matrix_user_id="@s:hs")
    with pytest.raises(KeyNotTrusted):
        (await host.trust()).recipient_key(STRANGER.org_id)
    assert (await host.trust()).recipient_key(ISSUER.org_id).kid == ISSUER.encryption_kid


async def test_pair_rooms_expect_every_envelope_addressed(host: NodeSyncHost) -> None:
    assert not host.expects_all_addressed("!pair:hs")
    async with host.node.store.transaction() as tx:
        await PairRoomRepository(tx.session).remember(ISSUER.org_id, "!pair:hs",
                                                      created_by_us=False,
                                                      at=datetime.now(UTC))
    await host.trust()
    assert host.expects_all_addressed("!pair:hs")
    assert not host.expects_all_addressed("!coalition:hs")


def test_at_rest_cipher_binds_the_context(host: NodeSyncHost) -> None:
    sealed = host.cipher.encrypt_at_rest(b"token", ("outbox", "abc"))
    assert host.cipher.decrypt_at_rest(sealed, ("outbox", "abc")) == b"token"
    with pytest.raises(Exception, match="does not decrypt"):
        host.cipher.decrypt_at_rest(sealed, ("outbox", "abd"))


class FakeTransport:
    """Joins fail a given number of times; room state is what a pair room creator set."""

    def __init__(self, failures: int, states: dict[str, list[TimelineEvent]]) -> None:
        self.failures, self.states, self.joins = failures, states, 0
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(self, room_id: str, event_type: str, content: dict[str, Any],
                   txn_id: str) -> str:
        self.sent.append((room_id, event_type, content))
        return "$sent"

    async def join(self, room_id: str) -> str:
        self.joins += 1
        if self.failures:
            self.failures -= 1
            raise TransportError("join", "M_FORBIDDEN You are not invited to this room.")
        return room_id

    async def room_state(self, room_id: str) -> list[TimelineEvent]:
        return self.states[room_id]


def _state(room: str, creator: str, orgs: list[str]) -> list[TimelineEvent]:
    return [TimelineEvent(room, "$c", creator, "m.room.create", {}, 1, ""),
            TimelineEvent(room, "$p", creator, PAIR_EVENT_TYPE, {"orgs": orgs}, 1, "")]


async def test_invites_are_retried_and_only_true_pair_rooms_recognised(
    host: NodeSyncHost,
) -> None:
    issuer_user = f"@{ISSUER.org_id[:8]}:hs"
    states = {
        "!pair:hs": _state("!pair:hs", issuer_user, sorted([OWN.org_id, ISSUER.org_id])),
        "!forged:hs": _state("!forged:hs", "@someone-else:hs", [OWN.org_id, ISSUER.org_id]),
        "!other:hs": _state("!other:hs", issuer_user, [ISSUER.org_id, STRANGER.org_id]),
    }
    transport = FakeTransport(failures=1, states=states)
    handler = InviteHandler(host.node, host.features.recognise_room, host)
    await handler.handle(cast(Any, transport), {"!pair:hs": issuer_user})  # the join fails once
    assert not host.expects_all_addressed("!pair:hs")
    await handler.handle(cast(Any, transport), {})  # retried without a new invite
    await handler.handle(cast(Any, transport), {"!forged:hs": issuer_user,
                                                "!other:hs": issuer_user})
    assert transport.joins == 4
    # Invites from accounts that are not member nodes are not joined at all.
    await handler.handle(cast(Any, transport), {"!junk:hs": "@someone-else:hs",
                                                "!unsaid:hs": None})
    await handler.handle(cast(Any, transport), {})
    assert transport.joins == 4
    async with host.node.store.read() as tx:
        rooms = await PairRoomRepository(tx.session).all()
    assert [(r.room_id, r.org_id, r.created_by_us) for r in rooms] == [
        ("!pair:hs", ISSUER.org_id, False)]
    assert host.expects_all_addressed("!pair:hs")
    # Having joined, it asks the creator for what was posted before the join.
    assert transport.sent == [("!pair:hs", "org.minga.resend",
                               {"issuer": ISSUER.org_id, "ranges": [[1, 1000]]})]


async def test_an_invite_from_a_member_the_roster_learns_later_is_joined(
    host: NodeSyncHost,
) -> None:
    newcomer_user = "@newcomer:hs"
    states = {"!late:hs": _state("!late:hs", newcomer_user, [])}
    transport = FakeTransport(failures=0, states=states)
    handler = InviteHandler(host.node, host.features.recognise_room, host)
    await handler.handle(cast(Any, transport), {"!late:hs": newcomer_user})
    assert transport.joins == 0
    async with host.node.store.transaction() as tx:
        entry = sign_member_entry(STRANGER, {"name": "y", "country": "KE"})
        await tx.orgs.save_member(STRANGER.org_id, entry, verified=True, safety_code="s",
                                  matrix_user_id=newcomer_user)
    handler._last_recheck = float("-inf")  # the recheck is due
    await handler.handle(cast(Any, transport), {})  # the held invite is looked at again
    await handler.handle(cast(Any, transport), {})  # and joined on the next round
    assert transport.joins == 1


async def test_what_a_revoked_members_account_still_posts_is_audited(host: NodeSyncHost) -> None:
    account = f"@{ISSUER.org_id[:8]}:hs"
    refused = [Quarantined("!r:hs", "$before", account, "untrusted-key", "revoked"),
               Quarantined("!r:hs", "$other", "@someone:hs", "malformed", "x")]
    async with host.transaction() as session:
        await host.note_quarantined(session, refused)
    async with host.node.store.transaction() as tx:
        assert await tx.orgs.mark_revoked(ISSUER.org_id, 1_700_000_000)
    async with host.transaction() as session:
        await host.note_quarantined(session, refused)
    async with host.node.store.read() as tx:
        audited = [e for e in await tx.audit.recent() if e.action == "revoked-member.post"]
    assert [(e.target, e.details) for e in audited] == [
        (ISSUER.org_id, {"room_id": "!r:hs", "event_id": "$before", "reason": "untrusted-key"})]


# --- the coalition each record came through (decision 0032) ------------------------------------

SECOND, WITHOUT_ISSUER, LEFT = "!second:hs", "!without-issuer:hs", "!left:hs"


async def test_each_record_is_stored_with_its_coalition_or_refused_and_audited(
    host: NodeSyncHost,
) -> None:
    async with host.node.store.transaction() as tx:
        await in_coalition(tx, OWN.org_id, ISSUER.org_id, coalition_id=SECOND,
                           room_id="!second-room:hs")
        await in_coalition(tx, OWN.org_id, coalition_id=WITHOUT_ISSUER)
        await in_coalition(tx, OWN.org_id, ISSUER.org_id, coalition_id=LEFT)
        await tx.coalitions.mark_left(LEFT)
    host.node.forget_coalitions()
    named, in_room, first = new_record_id(), new_record_id(), new_record_id()
    await _envelope(
        host,
        _record(1, {"coalition": SECOND}, record_id=named),  # named: through a pair room
        _record(1, {}, record_id=in_room, room_id="!second-room:hs"),  # older issuer: its room
        _record(1, {}, record_id=first),  # older issuer in a pair room: the first coalition
        _record(1, {"coalition": "!unknown:hs"}, record_id=new_record_id()),
        _record(1, {"coalition": LEFT}, record_id=new_record_id()),
        _record(1, {"coalition": TEST_COALITION}, record_id=new_record_id(),
                room_id="!second-room:hs"),
        _record(1, {"coalition": WITHOUT_ISSUER}, record_id=new_record_id()),
        _record(1, {"coalition": ["!second:hs"]}, record_id=new_record_id()),
    )
    async with host.node.store.read() as tx:
        assert await tx.received.count() == 3
        stored = {record_id: (await tx.received.latest(ISSUER.org_id, record_id))
                  for record_id in (named, in_room, first)}
        refused = [e for e in await tx.audit.recent() if e.action == "record.refused"]
    assert {record_id: (r.coalition_id, r.claims["coalition"])
            for record_id, r in stored.items()} == {
        named: (SECOND, SECOND), in_room: (SECOND, SECOND),
        first: (TEST_COALITION, TEST_COALITION)}
    assert sorted(e.details["reason"] for e in refused) == [
        "issuer-not-in-coalition", "malformed-coalition", "not-in-coalition",
        "not-in-coalition", "wrong-coalition-room"]
    assert all(e.target == ISSUER.org_id for e in refused)


async def test_a_retraction_without_a_coalition_reaches_its_target_wherever_it_came(
    host: NodeSyncHost,
) -> None:
    async with host.node.store.transaction() as tx:
        await in_coalition(tx, OWN.org_id, ISSUER.org_id, coalition_id=SECOND)
    host.node.forget_coalitions()
    await _deliver(host, _record(1, {"narrative": "held", "coalition": SECOND}), _retraction())
    latest = await _latest(host)
    assert (latest.coalition_id, latest.claims, latest.retracted) == (SECOND, None, True)


async def test_a_node_in_no_coalition_refuses_every_record(host: NodeSyncHost) -> None:
    async with host.node.store.transaction() as tx:
        await tx.coalitions.mark_left(TEST_COALITION)
    host.node.forget_coalitions()
    await _deliver(host, _record(1, {"country": "KE"}), _record(2, {"coalition": TEST_COALITION}))
    assert await _latest(host) is None


def test_coalition_problem_names_the_first_reason_to_refuse() -> None:
    members = frozenset({ISSUER.org_id})
    active = {TEST_COALITION, SECOND}
    assert coalition_problem(TEST_COALITION, None, active, members, ISSUER.org_id) is None
    assert coalition_problem(TEST_COALITION, TEST_COALITION, active, members,
                             ISSUER.org_id) is None
    assert coalition_problem(None, None, active, members, ISSUER.org_id) == "not-in-coalition"
    assert coalition_problem(LEFT, None, active, members, ISSUER.org_id) == "not-in-coalition"
    assert coalition_problem(LEFT, SECOND, active, frozenset(),
                             ISSUER.org_id) == "not-in-coalition"
    assert coalition_problem(TEST_COALITION, SECOND, active, members,
                             ISSUER.org_id) == "wrong-coalition-room"
    assert coalition_problem(TEST_COALITION, SECOND, active, frozenset(),
                             ISSUER.org_id) == "wrong-coalition-room"
    assert coalition_problem(SECOND, None, active, frozenset({OWN.org_id}),
                             ISSUER.org_id) == "issuer-not-in-coalition"
