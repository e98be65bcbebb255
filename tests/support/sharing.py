"""Member nodes in a coalition on real homeservers, each serving its API and running its sync
loop in this process (or as a real ``minga run`` subprocess), for the sharing tests and bench."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import select

from deploy.homeserver import Homeserver, free_port
from node.assembly import node_registry
from node.core.coalition import create_coalition, invite_member, join_coalition
from node.core.config import StoreSection
from node.core.federation_loop import run_federation
from node.core.runtime import Node, open_node
from node.core.setup import SQLITE_STORE, MatrixAccountChoice, init_node
from node.core.store import Role
from sync.engine import SyncConfig
from sync.retry import Backoff
from sync.tables import Chain
from tests.support.api_harness import (
    PASSPHRASE,
    SAMPLE_CASES,
    FakeClock,
    RunningApi,
    serve_node,
)

FAST = SyncConfig(
    long_poll_ms=1_000,
    backoff=Backoff(first=0.2, cap=2.0),
    idle_seconds=0.3,
    resend_grace_seconds=1.0,
    resend_interval_seconds=3.0,
    resend_min_interval_seconds=1.0,
)
ORGS = [("Corporación Tierra Viva", "CO"), ("Haki Ardhi Trust", "KE"), ("Bantay Katutubo", "PH")]
T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 90, what: str = "condition"
) -> T:
    """The first truthy answer of ``probe``, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def new_member(
    server: Homeserver, directory: Path, name: str, country: str, *, http_port: int = 0,
    store: StoreSection = SQLITE_STORE,
) -> Path:
    """``minga init`` of a member on ``server``; its store as ``store`` says (SQLite by
    default); returns its node.toml."""
    result = await init_node(
        data_dir=directory, org_name=name, country=country, homeserver_url=server.url,
        passphrase=PASSPHRASE, http_port=http_port or free_port(),
        account=MatrixAccountChoice(registration_secret=server.state.registration_shared_secret),
        store=store,
    )
    return result.config_file


async def members_on(homes: Sequence[Homeserver], directory: Path) -> list[Path]:
    """One member per homeserver in ``homes`` (names and countries from ``ORGS``, in order,
    each under ``directory/org<i>``); their node.toml files."""
    return [await new_member(home, directory / f"org{i}", name, country)
            for i, (home, (name, country)) in enumerate(zip(homes, ORGS[:len(homes)], strict=True))]


@contextlib.contextmanager
def passphrase_env() -> Iterator[None]:
    before = os.environ.get("MINGA_PASSPHRASE")
    os.environ["MINGA_PASSPHRASE"] = PASSPHRASE
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINGA_PASSPHRASE", None)
        else:
            os.environ["MINGA_PASSPHRASE"] = before


async def form_coalition(configs: Sequence[Path], name: str = "Minga de prueba") -> str:
    """Create the coalition on the first node; every other node joins; all see all verified."""
    with passphrase_env():
        async with AsyncExitStack() as stack:
            nodes = [await stack.enter_async_context(open_node(c)) for c in configs]
            room = (await create_coalition(nodes[0], name,
                                           node_registry().after_coalition_created)).room_id
            for other in nodes[1:]:
                await invite_member(nodes[0], (await other.matrix_login()).user_id)
                await join_coalition(other, room, wait_seconds=60)
            everyone = {n.org_id for n in nodes}
            for node in nodes:
                await _sees_everyone(node, room, everyone)
    return room


async def _sees_everyone(node: Node, room: str, everyone: set[str]) -> None:
    from node.core.coalition import refresh_roster

    async with node.transport() as transport:
        async def all_verified() -> bool:
            report = await refresh_roster(node, transport, room)
            return {m.org_id for m in report.members} == everyone

        await eventually(all_verified, what="every member verified")


@asynccontextmanager
async def member_running(config: Path, sync: SyncConfig = FAST,
                         clock: FakeClock | None = None) -> AsyncIterator[RunningApi]:
    """The node in ``config`` serving its API (test client) and running its sync loop."""
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(serve_node(config, clock))
        transport = await stack.enter_async_context(api.node.transport())
        task = asyncio.create_task(run_federation(api.node, transport, node_registry(), sync))

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        stack.push_async_callback(stop)
        yield api


async def received(api: RunningApi, *, kind: str | None = "case") -> list[dict[str, Any]]:
    """Every received record (latest versions) the API lists, all pages."""
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        query = f"/received?limit=100&offset={offset}" + (f"&kind={kind}" if kind else "")
        page = await api.json("GET", query, Role.viewer)
        items += page["items"]
        offset = page["next_offset"]
    return items


# --- captured log output ----------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Every log line of this process, formatted, while installed on the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    capture, root = LogCapture(), logging.getLogger()
    before = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(before)


# --- plaintext search --------------------------------------------------------------------------


def needles(values: Iterable[str]) -> dict[str, list[bytes]]:
    """Byte forms in which a value could sit in a file: UTF-8, and JSON with \\u escapes."""
    import json

    found: dict[str, list[bytes]] = {}
    for value in values:
        forms = {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")}
        found[value] = sorted(forms)
    return found


def files_under(directory: Path, suffixes: Sequence[str] = ()) -> list[Path]:
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and (not suffixes or any(p.name.endswith(s) for s in suffixes)))


def search(paths: Iterable[Path], values: Iterable[str]) -> list[tuple[str, str]]:
    """(file, value) for every value found, byte for byte, in any of the files."""
    forms = needles(values)
    hits = []
    for path in paths:
        data = path.read_bytes()
        hits += [(str(path), value) for value, variants in forms.items()
                 if any(variant in data for variant in variants)]
    return hits


# --- `minga run` as a real process -------------------------------------------------------------


@dataclass
class NodeProcess:
    config: Path
    api_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "MINGA_PASSPHRASE": PASSPHRASE, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--config", str(self.config), "run"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)

    async def ready(self, token: str) -> None:
        async def answers() -> bool:
            try:
                await self.call("GET", "/status", token)
            except (aiohttp.ClientError, AssertionError):
                return False
            return True

        await eventually(answers, timeout=60, what="the node's API")

    async def call(self, method: str, path: str, token: str, *, expect: int = 200,
                   **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.api_url + path, headers=headers, **kwargs) as answer,
        ):
            text = await answer.text()
            assert answer.status == expect, f"{method} {path}: {answer.status} {text}"
            return await answer.json(content_type=None) if text else None


async def share_case(sender: RunningApi, key: str, recipients: list[str]) -> str:
    """Record one of the sample cases at ``sender`` and share its country with ``recipients``;
    its record id."""
    made = await sender.json("POST", "/cases", json=SAMPLE_CASES[key], expect=201)
    await sender.json("POST", f"/cases/{made['record_id']}/share",
                      json={"recipients": recipients, "fields": ["country"]})
    return str(made["record_id"])


async def arrives_verified(api: RunningApi, issuer: str, record_id: str) -> None:
    """Wait until ``api``'s node holds ``issuer``'s record, verified."""
    async def there() -> bool:
        answer = await api.call("GET", f"/received/{issuer}/{record_id}", Role.viewer)
        return answer.status == 200 and (await answer.json())["verification"] == "verified"

    await eventually(there, what=f"{record_id} from {issuer}")


async def quarantined_count(api: RunningApi) -> int:
    return int((await api.json("GET", "/status", Role.viewer))["sync"]["quarantined"])


async def chain_gaps(api: RunningApi, issuer: str) -> list[str]:
    """The missing ranges of ``issuer``'s chains at ``api``'s node (none when all is held)."""
    async with api.node.store.read() as tx:
        rows = await tx.session.scalars(select(Chain.missing).where(Chain.issuer == issuer))
        return [missing for missing in rows if missing != "[]"]
