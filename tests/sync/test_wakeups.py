"""What needs sending wakes the outbox: nothing waits for its idle poll.

Both nodes run with an outbox that polls only once an hour, so a record can leave only if it
was handed to the outbox at once: an alert as soon as its transaction commits, and the
recipient's automatic acknowledgement as soon as the inbox has committed the alert.
Real homeservers, federated.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from federation.transport import MatrixTransport
from node.core.runtime import Node
from node.features.alerts.room import ensure_alert_room
from node.features.alerts.service import DELIVERED, AlertState, list_alerts, send_alert
from schemas.payloads import Alert
from tests.support.sharing import (
    FAST,
    ORGS,
    eventually,
    form_coalition,
    member_running,
    new_member,
)

NO_POLL = dataclasses.replace(FAST, idle_seconds=3600)


async def _joined(transport: MatrixTransport, room_id: str) -> bool:
    return room_id in await transport.joined_rooms()


async def _own_alert(node: Node, record_id: str) -> AlertState | None:
    return next((s for s in await list_alerts(node)
                 if s.own and s.record_id == record_id), None)


async def test_an_alert_and_its_automatic_acknowledgement_leave_without_a_poll(
    federation: Federation, tmp_path: Path
) -> None:
    configs = [await new_member(federation[0], tmp_path / "a", *ORGS[0]),
               await new_member(federation[1], tmp_path / "b", *ORGS[1])]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(member_running(configs[0], NO_POLL))
        b = await stack.enter_async_context(member_running(configs[1], NO_POLL))
        async with a.node.transport() as transport:  # B in A's alert room before the alert
            room = await ensure_alert_room(a.node, transport, [b.node.org_id])
        async with b.node.transport() as transport:
            await eventually(lambda: _joined(transport, room), what="B in A's alert room")
        alert = Alert.model_validate({"alert_type": "arrest", "urgency": "critical",
                                      "country": "CO", "asks": ["legal_support"],
                                      "text": "detenida esta mañana"})
        sent = await send_alert(a.node, alert, actor="test", now=int(time.time()))

        async def acknowledged() -> AlertState | None:
            state = await _own_alert(a.node, sent.record_id)
            recipient = state.recipient(b.node.org_id) if state else None
            return state if recipient is not None and recipient.status == DELIVERED else None

        await eventually(acknowledged, what="B's automatic acknowledgement at A")
        [at_b] = [s for s in await list_alerts(b.node) if s.record_id == sent.record_id]
        assert at_b.answer == DELIVERED and not at_b.own
