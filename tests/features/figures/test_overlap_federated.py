"""The coalition's case count counts a case documented by two members once (M9 with M6).

Three members on federated homeservers, each holding six cases about different defenders; the
last member by org id also documents one defender the first member holds (the name written a
little differently). Every member publishes its figures: the first has nobody before it to ask,
the other two ask the members before them about their cases with de-duplication queries, and
publish again once answered. The coalition view then reports the shared case (as "<5": 1 to 4)
and a distinct count whose bounds hold the true 18 - 1 = 17 cases; the summed count stays 18.
No homeserver file holds a defender's name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from node.core.store import Role
from tests.features.dedup.test_federated import three_members
from tests.support.api_harness import RunningApi
from tests.support.sharing import ORGS, eventually, files_under, search

SHARED_DEFENDER = ("Rosa Elvira Cuchimba Yalanda", "Rosa Elvira Cuchimba")
NAMES = [
    ["Tomás Quintero Ibargüen", "Wilson Arango Pérez", "Gloria Inés Chocué Pito",
     "Aurelio Bonilla Mena", "Nelly Patricia Zúñiga", SHARED_DEFENDER[0]],
    ["Kipchumba Otieno Wafula", "Achieng Njeri Mwangi", "Barasa Kiprono Odhiambo",
     "Wanjiku Chebet Kamau", "Nyambura Awino Korir", "Mutua Kipkemboi Onyango"],
    ["Maricel Bayani Dumalagan", "Rodelio Pangilinan Sison", "Jocelyn Macaraeg Tumbaga",
     "Ernesto Dimaculangan Reyes", "Lorna Villacorta Bagsic", SHARED_DEFENDER[1]],
]
PLACES = ["Toribío, Cauca", "Nakuru", "Bukidnon"]


def case(name: str, day: int, place: str) -> dict[str, Any]:
    return {
        "title": "Sntl-ov amenaza", "incident_date": f"2023-0{1 + day % 9}-{10 + day:02d}",
        "country": "CO", "place": place, "narrative": "Sntl-ov hechos documentados.",
        "violations": ["death_threat"], "consent_level": "coalition", "risk_level": "high",
        "victims": [{"kind": "individual", "name": name, "groups": ["indigenous_leader"]}],
    }


def held_cases(position: int) -> list[dict[str, Any]]:
    cases = [case(name, day, PLACES[position]) for day, name in enumerate(NAMES[position])]
    if position in (0, 2):  # the shared defender: the same event, the same day and place
        cases[-1] = case(NAMES[position][-1], 11, "Caldono, Cauca")
    return cases


async def view_with_estimates(api: RunningApi, members: list[str]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view: dict[str, Any] = await api.json("GET", "/coalition/aggregates", Role.viewer)
        distinct = view["distinct_cases"]
        estimated_by = distinct["estimated_by"] if distinct else None
        return view if estimated_by == members else None

    return await eventually(probe, what="every member's figures with its overlap estimate")


async def test_a_case_documented_by_two_members_is_counted_once(
    federation3: Federation, tmp_path: Path
) -> None:
    async with three_members(federation3, tmp_path) as members:
        apis = sorted([members.a, members.b, members.c], key=lambda api: api.node.org_id)
        orgs = [api.node.org_id for api in apis]
        for position, api in enumerate(apis):
            for held in held_cases(position):
                await api.json("POST", "/cases", json=held, expect=201)
        for api in apis:  # the nodes' publishing duties read the real clock: so must the API
            api.clock.value = int(time.time())
            await api.json("POST", "/aggregates/publish", json={})

        view = await view_with_estimates(apis[1], orgs)
        distinct = view["distinct_cases"]
        assert distinct["unknown"] == []
        assert (distinct["counted"]["low"], distinct["counted"]["high"]) == (18, 18)
        assert distinct["shared_low"] >= 1 and distinct["shared_high"] <= 4
        assert distinct["distinct"]["low"] <= 17 <= distinct["distinct"]["high"]
        assert distinct["distinct"]["high"] < 18
        assert distinct["distinct"]["shown"] == "14–17"

        # Each member's own latest publication carries its report: nobody before the first,
        # no shared case for the second, the shared one (as "<5") for the last.
        published = [await api.json("POST", "/aggregates/publish", json={}) for api in apis]
        reports = [p["aggregate"]["overlap"] for p in published]
        assert reports[0]["with_members"] == [] and reports[0]["high"] == 0
        assert reports[1]["with_members"] == orgs[:1] and reports[1]["high"] == 0
        assert reports[2]["with_members"] == orgs[:2]
        assert (reports[2]["estimate"], reports[2]["low"], reports[2]["high"]) == ("<5", 1, 4)
        assert all(report["every_case_checked"] for report in reports)

        # Another member's export: it carries the same figure once that member has every
        # member's publications too (it may still be receiving them when asked first).
        async def exported_figure() -> str | None:
            exported = await apis[0].file("/coalition/aggregates/csv", Role.viewer)
            row = next(line for line in exported.text.splitlines()
                       if line.startswith("distinct_cases,"))
            shown = row.split(",")[5]
            return shown if shown == distinct["distinct"]["shown"] else None

        await eventually(exported_figure, what="the export's distinct-case figure")

    homeserver_files = [p for server in federation3 for p in files_under(server.directory)]
    assert search(homeserver_files, [ORGS[0][0]])  # the search finds what is in clear
    names = [name for held in NAMES for name in held]
    assert search(homeserver_files, names) == []
