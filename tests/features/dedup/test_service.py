"""De-duplication on one node, without a homeserver (M6): decoding and refusing queries, the rate
limit, the index kept up to date with the store, answers, key grants, and the API; each
coalition with its own key and index (decision 0032)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from federation.encoding import b64u_encode
from federation.identity import OrgKeys
from federation.linkage import (
    SCHEME,
    SCHEME_V1,
    SCHEME_V2,
    SCHEMES,
    LinkageKey,
    encode_case_features,
)
from federation.roster import member_entry
from federation.transport import MatrixTransport
from node.core.registry import build_registry
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import in_session
from node.core.store import Role
from node.core.store.pair_rooms import PairRoomRepository
from node.features.cases.casebook import add_case, amend_case, delete_case
from node.features.dedup import DedupFeature
from node.features.dedup.service import (
    HANDLE_PREFIX,
    KEY_SCHEME,
    LINKAGE_SETTING,
    MAX_DEFENDERS,
    CaseDraft,
    DedupSettings,
    HandleState,
    IndexHolder,
    KeyState,
    QueryRefused,
    RateLimiter,
    _compare,
    _current_index,
    _digest,
    _load_key,
    _save_key,
    _take_key,
    decode_query,
    distribute_linkage_key,
    distribute_linkage_keys,
    draft_features,
    encodings_of,
    key_state,
    matchable_cases,
    on_dedup_query,
    set_dedup_settings,
    start_case_check,
    start_linkage_key,
    warm_index,
)
from schemas.case import Case
from schemas.payloads import OrgProfile
from schemas.typology import ConsentLevel
from sync.host import VerifiedRecord
from sync.tables import OutboxItem
from tests.support.api_harness import RunningApi, serve_node
from tests.support.coalitions import TEST_COALITION, in_coalition
from tests.support.offline_node import make_offline_node

T0 = 1_717_000_000  # 2024-05-29: the cases happened before
KEY = LinkageKey(bytes(range(32)))
DEFENDER_CASE: dict[str, Any] = {
    "incident_date": "2024-03-14", "country": "CO", "place": "Popayán",
    "narrative": "Hombres armados rodearon la casa.", "violations": ["death_threat"],
    "victims": [{"kind": "individual", "name": "María José Quiñones Ortega"}],
    "consent_level": "coalition", "risk_level": "high",
}
DRAFT = CaseDraft.model_validate({"victims": [{"name": "Maria Jose Quinones"}],
                                  "incident_date": "2024-03-15", "country": "CO"})


def _wire(draft: CaseDraft = DRAFT, key: LinkageKey = KEY) -> dict[str, str]:
    return encodings_of(draft_features(draft), key)[0].wire_fields()


def _claims(encodings: Any, *, key_id: str = KEY.key_id, **extra: Any) -> dict[str, Any]:
    return {"scheme": SCHEME, "linkage_key_id": key_id, "encodings": encodings, **extra}


# --- pure parts ---------------------------------------------------------------------------------


def test_a_well_formed_query_decodes_to_one_encoding_per_defender() -> None:
    other = CaseDraft.model_validate({"victims": [{"name": "Luz Dary Cifuentes"}],
                                      "country": "CO"})
    decoded = decode_query(_claims(_wire(), more_encodings=[_wire(other)]), KEY.key_id)
    assert [e.wire_fields() for e in decoded] == [_wire(), _wire(other)]


@pytest.mark.parametrize(("claims", "reason"), [
    (_claims({"country": "AA", "date": "AA"}), "encodings.name: missing"),
    (_claims({"name": "AA"}), "encodings.country: missing"),
    (_claims("not an object"), "encodings: must be an object"),
    (_claims(_wire(), more_encodings=["x"]), "more_encodings.0: must be an object"),
    (_claims(_wire(), more_encodings=[_wire()] * MAX_DEFENDERS), "more_encodings: at most"),
    (_claims(_wire(), key_id="another-key"), "linkage_key_id: not the coalition's current"),
])
def test_malformed_queries_are_refused_naming_the_field(claims: dict[str, Any],
                                                        reason: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        decode_query(claims, KEY.key_id)
    assert str(refused.value).startswith(reason)


def test_an_oversized_field_is_refused() -> None:
    wire = {**_wire(), "name": b64u_encode(bytes(40_000))}
    with pytest.raises(QueryRefused, match=r"^encodings\.name: "):
        decode_query(_claims(wire), KEY.key_id)


def test_without_a_key_every_query_is_refused() -> None:
    with pytest.raises(QueryRefused, match="holds no linkage key"):
        decode_query(_claims(_wire()), None)


def test_the_rate_limit_counts_each_organisation_over_a_sliding_hour() -> None:
    limiter = RateLimiter()
    assert [limiter.allow("a", 1000 + i, 3) for i in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 1004, 3)  # another organisation has its own count
    assert not limiter.allow("a", 1000 + 3599, 3)
    assert limiter.allow("a", 1000 + 3600, 3)  # the first query left the window


def test_draft_features_take_every_named_defender_and_skip_the_unnamed() -> None:
    draft = CaseDraft.model_validate({
        "victims": [{"name": "Ана Петрова", "romanised_name": "Ana Petrova"}, {},
                    {"native_name": "محمد"}],
        "incident_date": "2024-03", "country": "RU", "place": "Moscow", "narrative": "ignored"})
    features = draft_features(draft)
    assert [f.names for f in features] == [["Ана Петрова", "Ana Petrova"], ["محمد"]]
    assert {(f.date, f.place, f.country) for f in features} == {("2024-03", "Moscow", "RU")}


# --- on a node ----------------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path, store_location: Path | str) -> AsyncIterator[RunningApi]:
    config = await make_offline_node(tmp_path / "node", store_at=store_location)
    async with serve_node(config) as running:
        yield running


async def _join(node: Node, coalition_id: str = TEST_COALITION, *org_ids: str) -> None:
    """This node is in ``coalition_id`` (its room the same id), with ``org_ids`` as members."""
    async with node.store.transaction() as tx:
        await in_coalition(tx, node.org_id, *org_ids, coalition_id=coalition_id)
    node.forget_coalitions()


async def _querier(node: Node, coalition_id: str = TEST_COALITION) -> str:
    """A verified member of ``coalition_id`` that sends us queries."""
    keys = OrgKeys.generate()
    entry = member_entry(keys, OrgProfile(name="Querying Org", country="KE"), "@q:example.org")
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="0000",
                                  matrix_user_id="@q:example.org")
        await in_coalition(tx, node.org_id, keys.org_id, coalition_id=coalition_id)
    node.forget_coalitions()
    return keys.org_id


def _query(issuer: str, claims: dict[str, Any], record_id: str = "0190a000-0000-7000-8000-"
           "000000000001", coalition_id: str = TEST_COALITION) -> VerifiedRecord:
    """A record as the sync host hands it over: it names the coalition it came through, in
    that coalition's room."""
    now = int(time.time())
    claims = {**claims, "coalition": coalition_id}
    return VerifiedRecord(issuer=issuer, record_id=record_id, version=1, kind="dedup-query",
                          claims=claims, disclosed_paths=frozenset(claims), issued_at=now,
                          room_id=coalition_id, event_id="$e", origin_server_ts=now * 1000)


def _key_state(key: LinkageKey, issuer: str, **more: Any) -> KeyState:
    return KeyState(key_id=key.key_id, secret=b64u_encode(key.to_bytes()), issuer=issuer,
                    issued_at=1, **more)


async def _hold_key(node: Node, key: LinkageKey = KEY, issuer: str = "someone",
                    coalition_id: str = TEST_COALITION) -> None:
    await _join(node, coalition_id)
    async with node.store.transaction() as tx:
        await _save_key(tx, coalition_id, _key_state(key, issuer))


async def _answer(node: Node, record: VerifiedRecord) -> Any:
    async with node.store.transaction() as tx:
        return (await _compare(tx, node, record, int(time.time()))).payload


async def test_the_index_follows_every_write_to_the_store(api: RunningApi) -> None:
    node = api.node
    await _hold_key(node)
    query = encodings_of(draft_features(DRAFT), KEY)
    async with node.store.transaction() as tx:
        stored = await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                                author="t", issued_at=T0 + 1)
    async with node.store.read() as tx:
        found = (await _current_index(tx, node, TEST_COALITION, KEY)).best(query)
    assert found is not None and found[0] == stored.record_id

    async with node.store.transaction() as tx:
        await amend_case(tx, stored.record_id, {"victims": [
            {"kind": "individual", "name": "Pedro Pablo Restrepo"}]}, author="t", issued_at=T0 + 2)
    async with node.store.read() as tx:
        assert (await _current_index(tx, node, TEST_COALITION, KEY)).best(query) is None

    async with node.store.transaction() as tx:
        again = await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                               author="t", issued_at=T0 + 3)
        await delete_case(tx, again.record_id, author="t")
    async with node.store.read() as tx:
        local = await _current_index(tx, node, TEST_COALITION, KEY)
    assert local.best(query) is None and list(local.versions) == [stored.record_id]


async def test_a_case_whose_consent_was_withdrawn_stops_matching(api: RunningApi) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    query = encodings_of(draft_features(DRAFT), KEY)
    async with node.store.transaction() as tx:
        stored = await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                                author="t", issued_at=T0 + 1)
    assert (await _answer(node, _query(querier, _claims(_wire())))).possible_match
    async with node.store.transaction() as tx:
        await amend_case(tx, stored.record_id, {"consent_level": "none",
                                                "consent_partners": None},
                         author="t", issued_at=T0 + 2)
    async with node.store.read() as tx:
        assert (await _current_index(tx, node, TEST_COALITION, KEY)).best(query) is None
    assert not (await _answer(node, _query(querier, _claims(_wire())))).possible_match
    withdrawn = Case.model_validate({**DEFENDER_CASE, "consent_level": "none",
                                     "consent_partners": []})
    assert matchable_cases({"x": withdrawn}, KEY) == {}


async def test_an_answer_holds_a_band_a_fresh_handle_and_the_contact_only(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    async with node.store.transaction() as tx:
        stored = await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                                author="t", issued_at=T0 + 1)
    first = await _answer(node, _query(querier, _claims(_wire())))
    second = await _answer(node, _query(querier, _claims(_wire())))
    assert first.possible_match and first.score_band in ("low", "medium", "high")
    assert first.contact == node.own.name and first.refused is None
    assert first.handle != second.handle  # two queries cannot be linked to one case
    text = str(first.model_dump())
    assert stored.record_id not in text and "Quiñones" not in text
    async with node.store.read() as tx:
        given = await tx.settings.get(HANDLE_PREFIX + _digest(first.handle))
    assert HandleState.model_validate(given).record_id == stored.record_id

    nobody = CaseDraft.model_validate({"victims": [{"name": "Luz Dary Cifuentes"}],
                                       "incident_date": "2024-03-15", "country": "CO"})
    miss = await _answer(node, _query(querier, _claims(_wire(nobody))))
    assert (miss.possible_match, miss.score_band, miss.handle, miss.contact) == (
        False, "none", None, None)


async def test_refusals_are_answers_and_every_answer_is_audited(api: RunningApi) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    await set_dedup_settings(node, DedupSettings(queries_per_hour=2))
    broken = await _answer(node, _query(querier, _claims({"name": "AA"})))
    assert broken.refused == "encodings.country: missing"
    assert (await _answer(node, _query(querier, _claims(_wire())))).refused is None
    limited = await _answer(node, _query(querier, _claims(_wire())))  # the broken one counted
    assert limited.refused.startswith("rate limit") and not limited.possible_match
    other_scheme = await _answer(node, _query(querier, {**_claims(_wire()), "scheme": "x:1"}))
    assert other_scheme.refused.startswith("scheme:")

    async with node.store.read() as tx:
        audit = [e for e in await tx.audit.recent(limit=50) if e.action == "dedup.answer"]
    assert len(audit) == 4 and {e.target for e in audit} == {querier}
    assert all(set(e.details) <= {"query", "band", "refused", "coalition"} for e in audit)
    assert {e.details["coalition"] for e in audit} == {TEST_COALITION}


async def test_a_query_is_answered_in_the_inbox_transaction(api: RunningApi) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    query = _query(querier, _claims(_wire()))
    async with node.store.transaction() as tx:
        await tx.received.add(querier, query.record_id, 1, "dedup-query", query.claims,
                              "verified")
        await on_dedup_query(tx.session, node, query)
        outbox_rows = await tx.session.scalar(select(func.count()).select_from(OutboxItem))
    assert outbox_rows == 1
    async with node.store.read() as tx:
        kept = await tx.received.latest(querier, query.record_id)
    assert kept is not None and kept.claims is None  # the encodings are not kept


async def test_an_answer_goes_in_the_pair_room_with_the_querier_when_there_is_one(
        api: RunningApi) -> None:
    """Not in the coalition room, where every other member would receive and examine it
    (decision 0033); without a pair room, in the room the query came in."""
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    rooms = []
    for number, pair in enumerate((None, "!pair-with-querier:example.org"), 1):
        if pair is not None:
            async with node.store.transaction() as tx:
                await PairRoomRepository(tx.session).remember(
                    querier, pair, created_by_us=False, at=datetime.now(UTC))
        query = _query(querier, _claims(_wire()), record_id=f"0190a000-0000-7000-8000-"
                       f"00000000000{number}")
        async with node.store.transaction() as tx:
            await tx.received.add(querier, query.record_id, 1, "dedup-query", query.claims,
                                  "verified")
            await on_dedup_query(tx.session, node, query)
            rooms = list(await tx.session.scalars(select(OutboxItem.room_id)
                                                  .order_by(OutboxItem.id)))
    assert rooms == [TEST_COALITION, "!pair-with-querier:example.org"]


async def test_key_grants_come_only_from_the_first_issuer_and_never_go_back(
    api: RunningApi
) -> None:
    node = api.node
    creator, intruder = await _querier(node), await _querier(node)
    first, newer, rogue = LinkageKey.generate(), LinkageKey.generate(), LinkageKey.generate()

    async def grant(issuer: str, key: LinkageKey, issued_at: int, key_id: str = "") -> None:
        claims = {"scheme": KEY_SCHEME, "linkage_key_id": key_id or key.key_id,
                  "encodings": {"key": b64u_encode(key.to_bytes())}}
        record = dataclasses.replace(_query(issuer, claims), issued_at=issued_at)
        async with node.store.transaction() as tx, in_session(tx.session, node) as inner:
            await _take_key(inner, node, record)

    await grant(creator, first, 100)
    await grant(intruder, rogue, 200)
    await grant(creator, newer, 50)  # older than the key held
    await grant(creator, newer, 300, key_id="not-its-id")
    held = await key_state(node)
    assert held is not None and (held.key_id, held.issuer) == (first.key_id, creator)
    await grant(creator, newer, 300)
    held = await key_state(node)
    assert held is not None and held.key_id == newer.key_id


async def test_the_api_starts_checks_and_refuses_without_a_key(api: RunningApi) -> None:
    draft = {"victims": [{"name": "Maria Jose Quinones"}], "country": "CO"}
    alone = await api.json("POST", "/dedup/checks", json={"kind": "case", "draft": draft},
                           expect=409)
    assert alone["error"]["code"] == "no_coalition"
    await _join(api.node)
    refused = await api.json("POST", "/dedup/checks", json={"kind": "case", "draft": draft},
                             expect=409)
    assert refused["error"]["code"] == "no_linkage_key"
    bad = await api.json("POST", "/dedup/checks",
                         json={"kind": "case", "draft": {"victims": [], "country": "CO"}},
                         expect=422)
    assert "body.draft.victims" in str(bad)
    await start_linkage_key(api.node, 1)
    lonely = await api.json("POST", "/dedup/checks", json={"kind": "case", "draft": draft},
                            expect=422)
    assert "no other verified member" in str(lonely)

    made = await api.json("POST", "/dedup/checks", expect=201, json={
        "kind": "campaign",
        "draft": {"title": "Stop the dam", "targets": [{"name": "Hydro Corp"}]}})
    view = await api.json("GET", f"/dedup/checks/{made['check_id']}", Role.viewer)
    assert (view["kind"], view["status"], view["matches"]) == ("campaign", "complete", [])
    await api.json("GET", "/dedup/checks/nope", Role.viewer, expect=404)
    assert (await api.json("GET", "/dedup/settings", Role.admin))["queries_per_hour"] == 60
    await api.json("GET", "/dedup/settings", Role.editor, expect=403)


def test_an_encoding_under_another_key_is_unrelated() -> None:
    features = draft_features(DRAFT)[0]
    other = LinkageKey.generate()
    assert encode_case_features(features, KEY).name != encode_case_features(features, other).name


async def test_the_creator_sends_the_key_and_rotates_it_when_the_roster_changes(
    api: RunningApi
) -> None:
    node = api.node
    await _join(node)
    first = await start_linkage_key(node, 100)
    assert not await distribute_linkage_key(node, 101)  # nobody to send it to yet
    one = await _querier(node)
    assert await distribute_linkage_key(node, 102)
    sent = await key_state(node)
    assert sent is not None and (sent.key_id, sent.sent_to) == (first.key_id, [one])
    assert not await distribute_linkage_key(node, 103)  # the roster did not change

    await _hold_key(node, KEY, issuer=node.org_id)  # an index under the current key
    async with node.store.transaction() as tx:
        await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                       author="t", issued_at=T0 + 1)
    async with node.store.transaction() as tx:
        await _save_key(tx, TEST_COALITION, sent.model_copy(update={
            "key_id": KEY.key_id, "secret": b64u_encode(KEY.to_bytes())}))
    two = await _querier(node)
    assert await distribute_linkage_key(node, 104)
    rotated = await key_state(node)
    assert rotated is not None and rotated.key_id not in (KEY.key_id, first.key_id)
    assert sorted(rotated.sent_to) == sorted([one, two]) and rotated.issued_at == 104
    # Our own cases are re-encoded under the new key: a query under it finds them.
    querier = await _querier(node)
    answer = await _answer(node, _query(querier, _claims(
        _wire(key=rotated.key()), key_id=rotated.key_id)))
    assert answer.possible_match
    stale = await _answer(node, _query(querier, _claims(_wire())))
    assert stale.refused.startswith("linkage_key_id")
    async with node.store.read() as tx:
        actions = [e.action for e in await tx.audit.recent(limit=50)]
    assert actions.count("dedup.key.send") == 2  # the first send and the rotation


# --- encoding schemes ---------------------------------------------------------------------------


async def test_a_node_answers_each_query_in_the_scheme_it_was_asked_in(api: RunningApi) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    async with node.store.transaction() as tx:
        await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                       author="t", issued_at=T0 + 1)
    for scheme in SCHEMES:
        wire = encodings_of(draft_features(DRAFT), KEY, scheme)[0].wire_fields()
        answer = await _answer(node, _query(querier, {**_claims(wire), "scheme": scheme}))
        assert answer.possible_match and answer.refused is None, scheme
        nobody = CaseDraft.model_validate({"victims": [{"name": "Luz Dary Cifuentes"}],
                                           "incident_date": "2024-03-15", "country": "CO"})
        miss = encodings_of(draft_features(nobody), KEY, scheme)[0].wire_fields()
        assert not (await _answer(node, _query(querier, {**_claims(miss), "scheme": scheme}))
                    ).possible_match
    async with node.store.read() as tx:
        v1 = await _current_index(tx, node, TEST_COALITION, KEY, SCHEME_V1)
        v2 = await _current_index(tx, node, TEST_COALITION, KEY, SCHEME_V2)
    assert (v1.index.scheme, v2.index.scheme) == (SCHEME_V1, SCHEME_V2)


async def test_a_query_in_one_scheme_never_meets_the_other_schemes_encodings(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node)
    querier = await _querier(node)
    async with node.store.transaction() as tx:
        await add_case(tx, issuer=node.org_id, case=Case.model_validate(DEFENDER_CASE),
                       author="t", issued_at=T0 + 1)
    # Scheme v2 encodings sent as if they were v1's: the v1 index holds nothing like them.
    v2_wire = encodings_of(draft_features(DRAFT), KEY, SCHEME_V2)[0].wire_fields()
    answer = await _answer(node, _query(querier, {**_claims(v2_wire), "scheme": SCHEME_V1}))
    assert not answer.possible_match
    unknown = await _answer(node, _query(querier, {**_claims(v2_wire), "scheme": "minga.clk:9"}))
    assert unknown.refused == f"scheme: not one of {', '.join(SCHEMES)}"


async def test_the_key_grant_names_its_scheme_and_old_grants_are_scheme_v1(
    api: RunningApi
) -> None:
    node = api.node
    creator = await _querier(node)

    async def grant(key: LinkageKey, issued_at: int, **named: str) -> KeyState:
        encodings = {"key": b64u_encode(key.to_bytes()),
                     **{k: b64u_encode(v.encode()) for k, v in named.items()}}
        claims = {"scheme": KEY_SCHEME, "linkage_key_id": key.key_id, "encodings": encodings}
        record = dataclasses.replace(_query(creator, claims), issued_at=issued_at)
        async with node.store.transaction() as tx, in_session(tx.session, node) as inner:
            await _take_key(inner, node, record)
        held = await key_state(node)
        assert held is not None and held.key_id == key.key_id
        return held

    assert (await grant(LinkageKey.generate(), 100)).scheme == SCHEME_V1
    assert (await grant(LinkageKey.generate(), 200, scheme=SCHEME_V2)).scheme == SCHEME_V2
    # A scheme newer than this software: it queries in its own newest.
    assert (await grant(LinkageKey.generate(), 300, scheme="minga.clk:9")).scheme == SCHEME


async def test_the_creator_rotates_the_key_to_bring_a_new_scheme(api: RunningApi) -> None:
    node = api.node
    await _join(node)
    await start_linkage_key(node, 100)
    member = await _querier(node)
    assert await distribute_linkage_key(node, 101)
    sent = await key_state(node)
    assert sent is not None and sent.scheme == SCHEME
    # As if the key had been sent by an older version of this software, in scheme v1.
    async with node.store.transaction() as tx:
        await _save_key(tx, TEST_COALITION, sent.model_copy(update={"scheme": SCHEME_V1}))
    assert await distribute_linkage_key(node, 102)
    rotated = await key_state(node)
    assert rotated is not None and rotated.key_id != sent.key_id
    assert (rotated.scheme, rotated.sent_to) == (SCHEME, [member])
    assert not await distribute_linkage_key(node, 103)


# --- one key, one index and one set of queries per coalition (decision 0032) --------------------

A, B = "!coalition-a:test", "!coalition-b:test"


async def test_each_coalition_has_its_own_key_sent_to_its_own_members(api: RunningApi) -> None:
    node = api.node
    await _join(node, A)
    await _join(node, B)
    in_a, in_b = await _querier(node, A), await _querier(node, B)
    key_a = await start_linkage_key(node, 100, A)
    key_b = await start_linkage_key(node, 100, B)
    assert key_a.key_id != key_b.key_id and key_a.secret != key_b.secret
    with pytest.raises(CoalitionNotChosen):  # several coalitions: one must be named
        await key_state(node)
    assert await distribute_linkage_keys(node, 101)
    sent_a, sent_b = await key_state(node, A), await key_state(node, B)
    assert sent_a is not None and sent_b is not None
    assert (sent_a.key_id, sent_a.sent_to) == (key_a.key_id, [in_a])
    assert (sent_b.key_id, sent_b.sent_to) == (key_b.key_id, [in_b])
    async with node.store.read() as tx:
        sends = [e.details for e in await tx.audit.recent(limit=50)
                 if e.action == "dedup.key.send"]
    assert sorted((d["coalition"], tuple(d["members"])) for d in sends) == sorted(
        [(A, (in_a,)), (B, (in_b,))])
    # A new member of B alone rotates B's key only.
    await _querier(node, B)
    assert await distribute_linkage_keys(node, 102)
    assert (await key_state(node, A)) == sent_a
    rotated = await key_state(node, B)
    assert rotated is not None and rotated.key_id != sent_b.key_id


async def test_a_query_is_answered_only_with_the_key_of_its_coalition(api: RunningApi) -> None:
    node = api.node
    key_b = LinkageKey.generate()
    await _hold_key(node, KEY, coalition_id=A)
    await _hold_key(node, key_b, coalition_id=B)
    querier = await _querier(node, A)
    async with node.store.transaction() as tx:
        await in_coalition(tx, querier, coalition_id=B)
        await add_case(tx, issuer=node.org_id, case=Case.model_validate(
            {**DEFENDER_CASE, "consent_coalitions": [A, B]}), author="t", issued_at=T0 + 1)

    in_a = await _answer(node, _query(querier, _claims(_wire()), coalition_id=A))
    assert in_a.possible_match and in_a.refused is None
    # B's key asked through A, and A's key asked through B, are refused: not that coalition's.
    crossed = await _answer(node, _query(querier, _claims(_wire(key=key_b), key_id=key_b.key_id),
                                         coalition_id=A))
    assert crossed.refused.startswith("linkage_key_id") and not crossed.possible_match
    wrong = await _answer(node, _query(querier, _claims(_wire()), coalition_id=B))
    assert wrong.refused.startswith("linkage_key_id") and not wrong.possible_match
    in_b = await _answer(node, _query(querier, _claims(_wire(key=key_b), key_id=key_b.key_id),
                                      coalition_id=B))
    assert in_b.possible_match
    async with node.store.read() as tx:
        given = await tx.settings.get(HANDLE_PREFIX + _digest(in_b.handle))
        index_a = await _current_index(tx, node, A, KEY)
    assert HandleState.model_validate(given).coalition_id == B
    assert (index_a.key_id, index_a.index.key_id) == (KEY.key_id, KEY.key_id)


async def test_the_answer_goes_back_in_the_room_and_coalition_it_came_through(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node, KEY, coalition_id=A)
    await _hold_key(node, LinkageKey.generate(), coalition_id=B)
    querier = await _querier(node, A)
    async with node.store.transaction() as tx:
        await in_coalition(tx, querier, coalition_id=B)
    query = _query(querier, _claims(_wire()), coalition_id=A)
    async with node.store.transaction() as tx:
        await tx.received.add(querier, query.record_id, 1, "dedup-query", query.claims,
                              "verified")
        await on_dedup_query(tx.session, node, query)
        rooms = list(await tx.session.scalars(select(OutboxItem.room_id)))
    assert rooms == [A]


async def test_a_case_matches_only_in_the_coalitions_its_consent_covers(api: RunningApi) -> None:
    node = api.node
    key_b = LinkageKey.generate()
    await _hold_key(node, KEY, coalition_id=A)  # A is the node's first coalition
    await _hold_key(node, key_b, coalition_id=B)
    async with node.store.transaction() as tx:
        only_a = await add_case(tx, issuer=node.org_id, case=Case.model_validate(
            {**DEFENDER_CASE, "consent_coalitions": [A]}), author="t", issued_at=T0 + 1)
    async with node.store.read() as tx:
        found_a = (await _current_index(tx, node, A, KEY)).best(
            encodings_of(draft_features(DRAFT), KEY))
        found_b = (await _current_index(tx, node, B, key_b)).best(
            encodings_of(draft_features(DRAFT), key_b))
    assert found_a is not None and found_a[0] == only_a.record_id and found_b is None

    # A case recorded before consent was per coalition meant the node's first coalition.
    async with node.store.transaction() as tx:
        await amend_case(tx, only_a.record_id, {"consent_coalitions": None}, author="t",
                         issued_at=T0 + 2)
    async with node.store.read() as tx:
        assert (await _current_index(tx, node, A, KEY)).best(
            encodings_of(draft_features(DRAFT), KEY)) is not None
        assert (await _current_index(tx, node, B, key_b)).best(
            encodings_of(draft_features(DRAFT), key_b)) is None
    # Public consent reaches everyone, in every coalition.
    public = Case.model_validate({**DEFENDER_CASE, "consent_level": "public",
                                  "consent_coalitions": []})
    assert matchable_cases({"x": public}, key_b, coalition_id=B) != {}
    within_a = public.model_copy(update={"consent_level": ConsentLevel.COALITION})
    assert matchable_cases({"x": within_a}, key_b, coalition_id=B) == {}


async def test_a_key_saved_before_coalitions_were_many_is_the_first_coalitions(
    api: RunningApi
) -> None:
    node = api.node
    await _join(node, A)
    await _join(node, B)
    async with node.store.transaction() as tx:
        await tx.settings.set(LINKAGE_SETTING, _key_state(KEY, "someone").model_dump())
    held = await key_state(node, A)
    assert held is not None and held.key_id == KEY.key_id
    assert await key_state(node, B) is None
    async with node.store.transaction() as tx:  # once the first coalition's key is written,
        await _save_key(tx, A, _key_state(LinkageKey.generate(), "someone"))
        assert await tx.settings.get(LINKAGE_SETTING) is None  # the old setting is not read
    held = await key_state(node, A)
    assert held is not None and held.key_id != KEY.key_id


async def test_leaving_a_coalition_drops_its_key_and_stops_answering_there(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node, KEY, coalition_id=A)
    await _hold_key(node, LinkageKey.generate(), coalition_id=B)
    querier = await _querier(node, A)
    async with node.store.transaction() as tx:
        await add_case(tx, issuer=node.org_id, case=Case.model_validate(
            {**DEFENDER_CASE, "consent_coalitions": [A, B]}), author="t", issued_at=T0 + 1)
    await warm_index(node)
    assert {c for c, _ in node.part(IndexHolder).local} == {A, B}

    registry = build_registry([DedupFeature()])
    async with node.store.transaction() as tx:
        await tx.coalitions.mark_left(A)
        left = await tx.coalitions.get(A)
    node.forget_coalitions()
    await registry.after_coalition_left(node, cast(MatrixTransport, None), left)

    async with node.store.read() as tx:
        assert await _load_key(tx, A) is None
        assert await _load_key(tx, B) is not None
    assert {c for c, _ in node.part(IndexHolder).local} == {B}
    with pytest.raises(CoalitionNotChosen):
        await key_state(node, A)
    query = _query(querier, _claims(_wire()), coalition_id=A)
    async with node.store.transaction() as tx:
        await on_dedup_query(tx.session, node, query)
        queued = await tx.session.scalar(select(func.count()).select_from(OutboxItem))
    assert queued == 0  # nothing answered there any more
    with pytest.raises(CoalitionNotChosen):
        await start_case_check(node, DRAFT, actor="t", now=T0, coalition_id=A)
    async with node.store.read() as tx:
        drops = [e for e in await tx.audit.recent(limit=50) if e.action == "dedup.key.drop"]
    assert [e.details["coalition"] for e in drops] == [A]


async def test_the_running_node_drops_the_index_of_a_coalition_left_elsewhere(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node, KEY, coalition_id=A)
    await _hold_key(node, LinkageKey.generate(), coalition_id=B)
    await warm_index(node)
    async with node.store.transaction() as tx:  # as `minga coalition leave` does, elsewhere
        await tx.coalitions.mark_left(A)
    node.forget_coalitions()
    await distribute_linkage_keys(node, T0)
    assert {c for c, _ in node.part(IndexHolder).local} == {B}


async def test_the_api_asks_for_the_coalition_when_the_node_is_in_several(
    api: RunningApi
) -> None:
    node = api.node
    await _hold_key(node, KEY, coalition_id=A)
    await _hold_key(node, LinkageKey.generate(), coalition_id=B)
    in_b = await _querier(node, B)
    draft = {"victims": [{"name": "Maria Jose Quinones"}], "country": "CO"}
    unnamed = await api.json("POST", "/dedup/checks", json={"kind": "case", "draft": draft},
                             expect=422)
    assert "body.coalition" in str(unnamed)
    unknown = await api.json("POST", "/dedup/checks", expect=422, json={
        "kind": "case", "draft": draft, "coalition": "!elsewhere:test"})
    assert "body.coalition" in str(unknown)
    made = await api.json("POST", "/dedup/checks", expect=201, json={
        "kind": "case", "draft": draft, "coalition": B})
    view = await api.json("GET", f"/dedup/checks/{made['check_id']}", Role.viewer)
    assert (view["coalition"], view["asked"]) == (B, [in_b])
    async with node.store.read() as tx:
        rooms = list(await tx.session.scalars(select(OutboxItem.room_id)))
    assert rooms == [B]
