"""``minga alert status``: updates, and reopening only with a reason (a node without Matrix)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from federation.identity import OrgKeys, sign_member_entry
from node.cli import main
from node.core.runtime import open_node
from node.features.alerts.service import (
    AlertState,
    RecipientState,
    _fields,
    get_alert,
    save_state,
)
from tests.support.coalitions import TEST_COALITION, in_coalition
from tests.support.offline_node import make_offline_node, passphrase_in_environment

RECORD_ID = "0190a5c4-0000-7000-8000-0000000000aa"
ISSUED = 1_780_000_000


async def _node_with_a_closed_alert(directory: Path) -> Path:
    config = await make_offline_node(directory)
    member = OrgKeys.generate()
    with passphrase_in_environment():
        async with open_node(config) as node, node.store.transaction() as tx:
            await tx.orgs.save_member(member.org_id, sign_member_entry(member, {
                "name": "Haki Ardhi Trust", "country": "KE"}), verified=True, safety_code="s",
                matrix_user_id="@member:hs")
            await in_coalition(tx, member.org_id)
            closing = {"seq": 1, "status": "closed", "at": ISSUED + 60, "by": node.org_id}
            await save_state(tx, AlertState(
                issuer=node.org_id, record_id=RECORD_ID, version=2, own=True,
                claims={"alert_type": "arrest", "urgency": "critical", "country": "CO",
                        "text": "Sntl detenida", "status": "closed", "updates": [closing]},
                updates=[closing], issued_at=ISSUED, arrived_at=ISSUED, room_id="!r:x",
                coalition_id=TEST_COALITION, updated_at=ISSUED, fields=_fields([]),
                recipients=[RecipientState(org_id=member.org_id, last_sent_at=ISSUED)]))
    return config


async def _state(config: Path) -> AlertState:
    with passphrase_in_environment():
        async with open_node(config) as node:
            return await get_alert(node, node.org_id, RECORD_ID)


def _alert(config: Path, *arguments: str) -> int:
    with passphrase_in_environment():
        return main(["--config", str(config), "alert", "status", RECORD_ID, *arguments])


async def test_reopening_from_the_command_line_needs_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = await _node_with_a_closed_alert(tmp_path / "node")
    assert await asyncio.to_thread(_alert, config, "active") == 2
    assert "--reason: a closed alert is reopened only with a reason" in capsys.readouterr().err
    assert await asyncio.to_thread(_alert, config, "released", "--reason", " ") == 2
    assert "--reason" in capsys.readouterr().err
    assert (await _state(config)).version == 2  # nothing was sent

    assert await asyncio.to_thread(_alert, config, "active", "--reason", "detenida otra vez",
                                   "--text", "Sntl volvió a ser detenida") == 0
    state = await _state(config)
    assert state.status == "active" and state.claims["text"] == "Sntl detenida"
    [_, reopening] = state.updates
    assert (reopening.seq, reopening.reason, reopening.text) == (
        2, "detenida otra vez", "Sntl volvió a ser detenida")


async def test_the_command_line_names_the_coalition_of_each_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = await _node_with_a_closed_alert(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(config) as node, node.store.transaction() as tx:
            await in_coalition(tx, coalition_id="!second:test")

    def send(*arguments: str) -> int:
        with passphrase_in_environment():
            return main(["--config", str(config), "alert", "send", "--type", "arrest",
                         "--country", "CO", "--text", "Sntl detenida", *arguments])

    assert await asyncio.to_thread(send) == 2  # in two coalitions: which one?
    assert "several coalitions" in capsys.readouterr().err
    assert await asyncio.to_thread(send, "--coalition", "!second:test") == 2
    assert "no other verified member" in capsys.readouterr().err

    def listing() -> str:
        with passphrase_in_environment():
            assert main(["--config", str(config), "alert", "list"]) == 0
        return capsys.readouterr().out

    assert f"in {TEST_COALITION} [" in await asyncio.to_thread(listing)
    with passphrase_in_environment():
        async with open_node(config) as node, node.store.transaction() as tx:
            await tx.coalitions.mark_left(TEST_COALITION)
    assert f"in {TEST_COALITION} (left) [" in await asyncio.to_thread(listing)
