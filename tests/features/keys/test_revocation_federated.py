"""A seized node (issue M13): the organisation revokes its keys from another machine with its
offline revocation key, another member publishes the revocation, and every member refuses what
the seized keys sign from then on, back-dated or not, with the reason.

Four members on two federated homeservers: S (seized) and the three others A, B and C. Prints
the time from publishing the revocation to the last of A, B and C refusing the seized keys.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation, free_port
from federation.keys import KeyNotTrusted
from node.cli import main
from node.core.api.times import iso_time
from node.core.keys import rotate_own_keys
from node.core.runtime import Node
from node.core.setup import MatrixAccountChoice, init_node
from node.core.store import Role
from node.core.sync_host import roster_trust
from tests.support.api_harness import PASSPHRASE, SAMPLE_CASES, FakeClock, RunningApi, WallClock
from tests.support.sharing import ORGS, eventually, form_coalition, member_running

DRAWER = "the passphrase of the revocation key in the drawer"


class ShiftedClock(FakeClock):
    """The wall clock moved by ``offset`` seconds: what an attacker's node writes as a date."""

    offset = 0

    def __call__(self) -> int:
        self.value = int(time.time()) + self.offset
        return self.value


async def _member(federation: Federation, index: int, directory: Path, name: str,
                  country: str) -> tuple[Path, str]:
    server = federation[index % 2]
    result = await init_node(
        data_dir=directory, org_name=name, country=country, homeserver_url=server.url,
        passphrase=PASSPHRASE, http_port=free_port(), revocation_passphrase=DRAWER,
        account=MatrixAccountChoice(registration_secret=server.state.registration_shared_secret))
    return result.config_file, result.revocation_key_form


async def _share(sender: RunningApi, key: str, recipients: list[str]) -> str:
    made = await sender.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)
    await sender.json("POST", f"/cases/{made['record_id']}/share",
                      json={"recipients": recipients, "fields": ["country"]})
    return str(made["record_id"])


async def _received(api: RunningApi, issuer: str, record_id: str) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        answer = await api.call("GET", f"/received/{issuer}/{record_id}", Role.viewer)
        return await answer.json() if answer.status == 200 else None

    return await eventually(arrived, what=f"{record_id} at a member")


async def _refuses(node: Node, issuer: str, kid: str) -> bool:
    try:
        (await roster_trust(node)).resolver.signing_key_for(issuer, kid, int(time.time()))
    except KeyNotTrusted:
        return True
    return False


async def _quarantined_reasons(api: RunningApi) -> list[tuple[str, str]]:
    items = (await api.json("GET", "/quarantine", Role.admin))["items"]
    return [(item["reason"], item["detail"]) for item in items]


async def test_a_published_revocation_cuts_the_seized_keys_off_everywhere(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orgs = [("Colectivo Incautado", "GT"), *ORGS]
    made = [await _member(federation, i, tmp_path / f"org{i}", name, country)
            for i, (name, country) in enumerate(orgs)]
    configs = [config for config, _ in made]
    # A, not the seized member, makes the coalition room: a revoked creator's room is left
    # behind (decision 0025, tests/core/test_coalition_move_federated.py), and this test
    # watches what the seized keys still try in the coalition room.
    await form_coalition([*configs[1:], configs[0]])
    attacker_clock = ShiftedClock()
    async with AsyncExitStack() as stack:
        s = await stack.enter_async_context(member_running(configs[0], clock=attacker_clock))
        members = [await stack.enter_async_context(member_running(c, clock=WallClock()))
                   for c in configs[1:]]
        a, b, c = members
        s_org, seized_kid = s.node.org_id, s.node.keys.signing_kid
        others = [m.node.org_id for m in members]

        before = await _share(s, "nairobi", others)  # legitimate, before the seizure
        for member in members:
            await _received(member, s_org, before)
        since = int(time.time())
        while int(time.time()) == since:
            time.sleep(0.05)
        # The node is seized: the attacker signs with its keys before anyone revoked them.
        early = await _share(s, "cauca", others)
        for member in members:
            await _received(member, s_org, early)

        # From another machine, with the offline key: the signed revocation.
        key_file, statement_file = tmp_path / "drawer.txt", tmp_path / "revocation.json"
        key_file.write_text(made[0][1])
        monkeypatch.setenv("MINGA_REVOCATION_PASSPHRASE", DRAWER)
        assert main(["keys", "revoke", "--revocation-key", str(key_file), "--since",
                     iso_time(since), "--out", str(statement_file)]) == 0
        statement = json.loads(statement_file.read_text())

        # B publishes it for S; the clock runs until the last of A, B, C refuses S's keys.
        started = time.monotonic()
        published = await b.json("POST", "/revocations", Role.admin,
                                 json={"statement": statement}, expect=201)
        assert published["org_id"] == s_org and published["revoked_at"] == iso_time(since)
        for member in members:
            async def refuses(m: RunningApi = member) -> bool:
                return await _refuses(m.node, s_org, seized_kid)

            await eventually(refuses, what="a member refusing the seized keys")
        elapsed = time.monotonic() - started
        with capsys.disabled():
            print(f"\nrevocation published -> refused by the last of 3 members in"
                  f" {elapsed:.2f} s")

        # What the attacker signs now is refused everywhere, dated now or back-dated.
        after = await _share(s, "minsk", others)
        attacker_clock.offset = -7200  # before `since`
        backdated = await _share(s, "addis", others)
        for member in members:
            async def refused(m: RunningApi = member) -> bool:
                reasons = await _quarantined_reasons(m)
                return sum("revoked" in detail for _, detail in reasons) >= 2

            await eventually(refused, what="the attacker's envelopes refused with the reason")
            for record_id in (after, backdated):
                answer = await member.call("GET", f"/received/{s_org}/{record_id}", Role.viewer)
                assert answer.status == 404

        # Records received before the revocation: flagged if signed after `since`.
        for member in members:
            assert (await _received(member, s_org, before))["signed_after_revocation"] is False
            flagged = await _received(member, s_org, early)
            assert flagged["signed_after_revocation"] is True
            assert flagged["issuer_revoked_at"] == iso_time(since)
            listed = (await member.json("GET", "/members", Role.viewer))["members"]
            assert next(m for m in listed if m["org_id"] == s_org)["revoked_at"] == iso_time(
                since)

        # Nothing new is sealed to the seized keys.
        record = await a.json("POST", "/cases", json=SAMPLE_CASES["nairobi"], expect=201)
        await a.json("POST", f"/cases/{record['record_id']}/share",
                     json={"recipients": [s_org], "fields": ["country"]}, expect=422)

        # A roster change signed by the seized keys (a rotation to escape) is refused.
        await rotate_own_keys(s.node, attacker_clock, actor="attacker")

        async def entry_refused() -> bool:
            status = await c.json("GET", "/status", Role.viewer)
            return any(r["state_key"] == s_org for r in status["rejected_roster_entries"])

        await eventually(entry_refused, what="the attacker's new roster entry refused")
        applied = await c.json("GET", "/revocations", Role.viewer)
        assert [r["org_id"] for r in applied["revocations"]] == [s_org]
