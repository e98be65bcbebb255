"""De-duplication checks between three members, each on its own federated homeserver (M6).

B holds a case about a defender; C holds a case about someone else. A drafts a case about B's
defender written differently (accents dropped, second surname dropped, a day later): A's check
reports B's possible match and C's "no match"; a different person matches nobody. Contact is
asked for, accepted, and a pair room follows. Queries over the rate limit and malformed queries
are refused with a reason. No answer or stored state holds another member's case content, and
no homeserver file holds a name.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from federation.linkage import SCHEME
from node.core.rooms import pair_room_of
from node.core.sharing import share_in_room
from node.core.store import Role
from node.features.dedup.service import (
    CHECK_PREFIX,
    CheckState,
    DedupSettings,
    _digest,
    _save,
    key_state,
    set_dedup_settings,
)
from schemas.ids import new_record_id
from schemas.payloads import DedupQuery
from schemas.records import build_record
from tests.support.api_harness import RunningApi
from tests.support.sharing import (
    ORGS,
    eventually,
    files_under,
    form_coalition,
    member_running,
    new_member,
    received,
    search,
)

DEFENDER = "María José Quiñones Ortega"
B_CASE: dict[str, Any] = {
    "title": "Sntl-dd hostigamiento a defensora ambiental",
    "incident_date": "2024-03-14",
    "country": "CO",
    "place": "Popayán, Cauca",
    "narrative": "Sntl-dd narrativa: hombres armados rodearon la casa de la defensora.",
    "violations": ["death_threat"],
    "victims": [{"kind": "individual", "name": DEFENDER, "gender": "woman",
                 "groups": ["woman_hrd"]}],
    "consent_level": "coalition",
    "risk_level": "high",
}
C_CASE: dict[str, Any] = {
    **B_CASE,
    "title": "Sntl-dd detención de sindicalista",
    "narrative": "Sntl-dd otra narrativa: el sindicalista fue detenido sin orden.",
    "victims": [{"kind": "individual", "name": "Joaquín Andrés Mosquera Rentería",
                 "groups": ["trade_unionist"]}],
}
SAME_PERSON_DRAFT: dict[str, Any] = {
    "victims": [{"name": "Maria Jose Quinones"}], "incident_date": "2024-03-15",
    "country": "CO", "place": "Popayan",
}
OTHER_PERSON_DRAFT: dict[str, Any] = {
    "victims": [{"name": "Luz Dary Cifuentes Ospina"}], "incident_date": "2024-03-15",
    "country": "CO", "place": "Popayan",
}


@dataclass
class Members:
    a: RunningApi
    b: RunningApi
    c: RunningApi
    directories: list[Path]


@asynccontextmanager
async def three_members(federation: Federation, tmp_path: Path) -> AsyncIterator[Members]:
    """A, B and C, each on its own homeserver, in one coalition, all holding the same key."""
    directories = [tmp_path / f"org{i}" for i in range(3)]
    configs = [await new_member(server, directory, name, country)
               for server, directory, (name, country)
               in zip(federation, directories, ORGS, strict=True)]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a, b, c = [await stack.enter_async_context(member_running(config)) for config in configs]

        async def one_key() -> bool:
            states = [await key_state(m.node) for m in (a, b, c)]
            return all(states) and len({s.key_id for s in states if s}) == 1

        await eventually(one_key, what="the linkage key at every member")
        yield Members(a, b, c, directories)


async def start_check(api: RunningApi, kind: str, draft: dict[str, Any]) -> str:
    created = await api.json("POST", "/dedup/checks", json={"kind": kind, "draft": draft},
                             expect=201)
    return str(created["check_id"])


async def completed(api: RunningApi, check_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view: dict[str, Any] = await api.json("GET", f"/dedup/checks/{check_id}", Role.viewer)
        return view if view["status"] == "complete" else None

    return await eventually(probe, what=f"every answer to check {check_id}")


async def _send_raw_query(a: RunningApi, to: str, encodings: dict[str, str]) -> str:
    """A query as a broken or hostile member would send it, bypassing the encoder."""
    node = a.node
    (coalition,) = await node.coalitions()
    key = await key_state(node, coalition.coalition_id)
    assert key is not None
    query = DedupQuery(scheme=SCHEME, linkage_key_id=key.key_id, encodings=encodings)
    now = int(time.time())
    record = build_record(node.org_id, query, record_id=new_record_id(), issued_at=now)
    check = CheckState(check_id=record.record_id, kind="case", created_at=now, asked=[to],
                       coalition_id=coalition.coalition_id)

    async def remember(tx: Any) -> None:
        await _save(tx, CHECK_PREFIX + _digest(check.check_id), check)

    await share_in_room(node, [record], [to], coalition.room_id, actor="test", issued_at=now,
                        also=remember, coalition_id=coalition.coalition_id)
    return record.record_id


async def _received_views(api: RunningApi, kind: str | None = None) -> list[dict[str, Any]]:
    """Every record ``api``'s node received, with its claims."""
    return [await api.json("GET", f"/received/{item['issuer']}/{item['record_id']}",
                           Role.viewer) for item in await received(api, kind=kind)]


def _case_text(case: dict[str, Any]) -> set[str]:
    values = {case["title"], case["narrative"], case["place"]}
    return values | {v["name"] for v in case["victims"]}


async def test_a_check_finds_the_same_defender_at_one_member_and_nothing_else(
    federation3: Federation, tmp_path: Path
) -> None:
    async with three_members(federation3, tmp_path) as m:
        b_org, c_org = m.b.node.org_id, m.c.node.org_id
        b_case = await m.b.json("POST", "/cases", json=B_CASE, expect=201)
        await m.c.json("POST", "/cases", json=C_CASE, expect=201)

        same = await completed(m.a, await start_check(m.a, "case", SAME_PERSON_DRAFT))
        assert same["asked"] == same["answered"] == sorted([b_org, c_org])
        (coalition,) = await m.a.node.coalitions()
        assert same["coalition"] == coalition.coalition_id
        assert [(x["org_id"], x["score_band"] != "none") for x in same["matches"]] == [
            (b_org, True)]
        assert same["refused"] == {}
        handle = same["matches"][0]["handle"]
        assert handle and b_case["record_id"] not in str(same)
        assert same["matches"][0]["contact"] == ORGS[1][0]

        other = await completed(m.a, await start_check(m.a, "case", OTHER_PERSON_DRAFT))
        assert other["answered"] == sorted([b_org, c_org]) and other["matches"] == []

        # The contact handshake: A asks, B's staff accept, both get the pair room.
        asked = await m.a.json("POST", f"/dedup/checks/{same['check_id']}/contact",
                               json={"handle": handle})
        assert asked["matches"][0]["contact_status"] == "requested"

        async def request_at_b() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (await m.b.json("GET", "/dedup/contacts"))["items"]
            return [i for i in items if i["status"] == "pending"]

        (pending,) = await eventually(request_at_b, what="the contact request at B")
        assert pending["querier"] == m.a.node.org_id
        assert pending["matched_case"] == b_case["record_id"]  # B's staff see which case
        assert pending["coalition"] == coalition.coalition_id
        decided = await m.b.json("POST", f"/dedup/contacts/{pending['request_id']}",
                                 json={"accept": True})
        assert decided["status"] == "accepted" and decided["pair_room"]

        async def accepted_at_a() -> bool:
            view = await m.a.json("GET", f"/dedup/checks/{same['check_id']}")
            return bool(view["matches"][0]["contact_status"] == "accepted")

        await eventually(accepted_at_a, what="B's acceptance at A")
        await eventually(lambda: pair_room_of(m.a.node, b_org), what="the pair room at A")

        # Nothing A holds or was told contains B's or C's case content.
        views = [same, other, await m.a.json("GET", f"/dedup/checks/{same['check_id']}")]
        everything_at_a = str(views) + str(await _received_views(m.a))
        secrets = _case_text(B_CASE) | _case_text(C_CASE)
        assert [s for s in secrets if s in everything_at_a] == []
        # After the handshake B shares its case through the normal path, in the pair room.
        shared = await m.b.json("POST", f"/cases/{b_case['record_id']}/share",
                                json={"recipients": [m.a.node.org_id],
                                      "fields": ["country", "incident_date"]})
        assert shared["recipients"][0]["room_id"] == decided["pair_room"]

        async def case_at_a() -> list[dict[str, Any]]:
            return [v for v in await _received_views(m.a) if v["kind"] == "case"]

        (arrived,) = await eventually(case_at_a, what="B's shared case at A")
        assert arrived["claims"]["incident_date"] == B_CASE["incident_date"]
        assert "victims" not in arrived["claims"]

        # Members keep no copy of the queries' encodings nor of the key grant.
        for member in (m.b, m.c):
            views = await _received_views(member, kind="dedup-query")
            assert len(views) >= 3 and all(v["claims"] is None for v in views)
        for member in (m.a, m.b, m.c):
            await member.node.store.checkpoint()
    homeserver_files = [p for server in federation3 for p in files_under(server.directory)
                        if ".db" in p.name or "log" in p.name or p.name.endswith(".stdout")
                        or "media_store" in p.parts]
    assert search(homeserver_files, [ORGS[0][0]])  # the search finds what is in clear
    node_files = [p for d in m.directories for p in files_under(d)]
    assert search(homeserver_files + node_files, secrets | {"Maria Jose Quinones"}) == []


async def test_queries_over_the_rate_limit_and_malformed_queries_are_refused(
    federation3: Federation, tmp_path: Path
) -> None:
    async with three_members(federation3, tmp_path) as m:
        b_org, c_org = m.b.node.org_id, m.c.node.org_id
        await m.b.json("POST", "/cases", json=B_CASE, expect=201)
        await set_dedup_settings(m.c.node, DedupSettings(queries_per_hour=1))

        first = await completed(m.a, await start_check(m.a, "case", SAME_PERSON_DRAFT))
        assert first["refused"] == {}
        second = await completed(m.a, await start_check(m.a, "case", SAME_PERSON_DRAFT))
        assert list(second["refused"]) == [c_org]
        assert second["refused"][c_org].startswith("rate limit")
        assert [x["org_id"] for x in second["matches"]] == [b_org]  # B still answers

        async with m.c.node.store.read() as tx:
            audit = await tx.audit.recent(limit=100)
        answered = [e for e in audit if e.action == "dedup.answer"]
        assert [(e.target, e.details["band"]) for e in answered] == [(m.a.node.org_id, "none")] * 2
        assert [bool(e.details.get("refused")) for e in answered].count(True) == 1
        assert all(set(e.details) <= {"query", "band", "refused", "coalition"}
                   for e in answered)

        good = (await m.a.json("GET", f"/dedup/checks/{first['check_id']}"))
        assert good["matches"]
        broken = {"country": "AAAAAAAAAAA", "name": "AAAA", "date": "AA"}
        broken_id = await _send_raw_query(m.a, b_org, broken)
        refused = await completed(m.a, broken_id)
        assert refused["matches"] == []
        assert refused["refused"][b_org].startswith("encodings.")
        oversized = {"country": "A" * 11, "name": "A" * 40_000, "date": "A" * 100}
        too_big = await completed(m.a, await _send_raw_query(m.a, b_org, oversized))
        assert "encodings.name" in too_big["refused"][b_org]
