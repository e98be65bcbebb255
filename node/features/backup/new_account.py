"""A restored node takes a new Matrix account and new keys (issue M13 item 5, decision 0023).

After a seizure the old account and the old keys may be in other hands. On the new machine,
after ``minga backup restore``, ``minga backup new-account`` logs into (or registers) a new
account, possibly on another homeserver, and:

- saves the new login and points node.toml's ``[homeserver]`` at it;
- forgets the old account's sync token (the inbox starts with an initial sync and pages each
  room back to the last event it handled, so what peers shared meanwhile arrives);
- holds every room it sent or queued anything in (:mod:`sync.resume`): nothing is sealed there
  until the new account is back in the room and the chain continues from what peers accepted;
- rotates the keys (:func:`node.core.keys.rotate_own_keys`), published once the new account
  is back in the coalition room: a member compares the new safety code and invites the account
  (``minga coalition invite``), the node joins (``minga coalition join``) and posts its roster
  entry, signed by the rotation chain and naming the new account, and every member's node then
  lets the new account into the rooms it may invite to (node.core.coalition).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from federation.transport import MatrixLogin
from node.core.keys import rotate_own_keys
from node.core.runtime import MATRIX_LOGIN_SETTING, Node
from sync.resume import forget_sync_position, hold_rooms

ACTOR = "minga backup new-account"
_SECTION = re.compile(r"^\s*\[\s*homeserver\s*\]\s*(#.*)?$")
_ANY_SECTION = re.compile(r"^\s*\[")
_OUR_KEYS = re.compile(r"^\s*(url|user_id)\s*=")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_homeserver(config_text: str, url: str, user_id: str) -> str:
    """``config_text`` with ``[homeserver] url`` and ``user_id`` replaced (the rest kept)."""
    settings = [f"url = {_toml_string(url)}", f"user_id = {_toml_string(user_id)}"]
    lines = config_text.splitlines()
    start = next((n for n, line in enumerate(lines) if _SECTION.match(line)), None)
    if start is None:
        return config_text.rstrip("\n") + "\n\n[homeserver]\n" + "\n".join(settings) + "\n"
    end = next((n for n in range(start + 1, len(lines)) if _ANY_SECTION.match(lines[n])),
               len(lines))
    kept = [line for line in lines[start + 1:end] if not _OUR_KEYS.match(line)]
    return "\n".join([*lines[:start + 1], *settings, *kept, *lines[end:]]) + "\n"


@dataclass(frozen=True)
class NewAccount:
    previous_user_id: str | None
    user_id: str
    held_rooms: int
    safety_code: str
    coalition_rooms: tuple[str, ...]
    """The room of every coalition the node is in, to join again (decision 0032)."""


async def adopt_new_account(node: Node, config_file: Path, login: MatrixLogin,
                            now: Callable[[], int]) -> NewAccount:
    """Switch the restored ``node`` to ``login`` and new keys (see the module's doc)."""
    previous = await node.matrix_login() if await _has_login(node) else None
    async with node.store.transaction() as tx:
        await tx.settings.set(MATRIX_LOGIN_SETTING, {
            "user_id": login.user_id, "device_id": login.device_id,
            "access_token": login.access_token})
        await forget_sync_position(tx.session)
        held = await hold_rooms(tx.session)
        await tx.audit.append(ACTOR, "restore.new-account", target=login.user_id, details={
            "previous_user_id": previous.user_id if previous else None,
            "held_rooms": len(held)})
    config_file.write_text(with_homeserver(config_file.read_text(encoding="utf-8"),
                                           login.homeserver_url, login.user_id),
                           encoding="utf-8")
    rotated = await rotate_own_keys(node, now, actor=ACTOR, publish=False)
    return NewAccount(previous.user_id if previous else None, login.user_id, len(held),
                      rotated.safety_code, tuple(c.room_id for c in await node.coalitions()))


async def _has_login(node: Node) -> bool:
    async with node.store.read() as tx:
        return await tx.settings.get(MATRIX_LOGIN_SETTING) is not None
