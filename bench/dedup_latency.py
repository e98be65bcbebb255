"""End-to-end latency of a coalition case check over three federated homeservers (M6).

Usage: .venv/bin/python bench/dedup_latency.py [--runs N] [--cases N]

Members A, B and C each run a node on their own homeserver (three Synapse servers federating),
each with its federation loop and the default sync settings. B and C each hold ``--cases`` cases
(B one about the defender the checks look for). Each run times, from A's ``start_case_check``
call (encode, seal to B and C, queue) until A's store holds both answers (B's possible match
and C's "no match"), read back every few milliseconds. Prints each run, the median, the 95th
percentile and the worst, and last ``all_answers_ms=<median>``. Target: all answers within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.homeserver import start_federation
from node.assembly import node_registry
from node.core.federation_loop import run_federation
from node.core.runtime import Node, open_node
from node.features.cases.casebook import add_case
from node.features.dedup.service import (
    CaseDraft,
    DedupSettings,
    get_check,
    key_state,
    set_dedup_settings,
    start_case_check,
)
from schemas.case import Case
from tests.support.sharing import form_coalition, new_member, passphrase_env

DRAFT = CaseDraft.model_validate({"victims": [{"name": "Maria Jose Quinones"}],
                                  "incident_date": "2024-03-15", "country": "CO"})


def _case(name: str, day: int) -> Case:
    return Case.model_validate({
        "incident_date": f"2024-03-{day:02d}", "country": "CO", "place": "Popayán",
        "narrative": "bench narrative", "violations": ["death_threat"],
        "victims": [{"kind": "individual", "name": name}],
        "consent_level": "coalition", "risk_level": "high"})


@asynccontextmanager
async def _running(node: Node) -> AsyncIterator[None]:
    async with node.transport() as transport:
        task = asyncio.create_task(run_federation(node, transport, node_registry()))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _fill(node: Node, cases: int, defender: bool) -> None:
    async with node.store.transaction() as tx:
        if defender:
            await add_case(tx, issuer=node.org_id, case=_case("María José Quiñones Ortega", 14),
                           author="bench", issued_at=int(time.time()))
        for n in range(cases - int(defender)):
            await add_case(tx, issuer=node.org_id,
                           case=_case(f"Persona Número{n} Apellido{n % 97}", 1 + n % 28),
                           author="bench", issued_at=int(time.time()))


async def _same_key(nodes: list[Node]) -> None:
    for _ in range(600):
        states = [await key_state(n) for n in nodes]
        if all(states) and len({s.key_id for s in states if s}) == 1:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the linkage key did not reach every member")


async def _time_check(a: Node) -> tuple[float, list[str]]:
    started = time.perf_counter()
    check = await start_case_check(a, DRAFT, actor="bench", now=int(time.time()))
    while True:
        state = await get_check(a, check.check_id)
        if state.status == "complete":
            elapsed = time.perf_counter() - started
            return elapsed, [f"{x.org_id[:6]}:{x.score_band}" for x in state.answers]
        await asyncio.sleep(0.005)


async def _bench(scratch: Path, runs: int, cases: int) -> list[float]:
    federation = start_federation(scratch / "servers", 3)
    try:
        names = [("Querying Org", "CO"), ("Holding Org", "CO"), ("Other Org", "PH")]
        configs = [await new_member(server, scratch / f"m{i}", name, country)
                   for i, (server, (name, country)) in enumerate(zip(federation, names,
                                                                     strict=True))]
        await form_coalition(configs)
        with passphrase_env():
            async with AsyncExitStack() as stack:
                nodes = [await stack.enter_async_context(open_node(c)) for c in configs]
                a, b, c = nodes
                await _fill(b, cases, defender=True)
                await _fill(c, cases, defender=False)
                for node in (b, c):
                    await set_dedup_settings(node, DedupSettings(queries_per_hour=10_000))
                for node in nodes:
                    await stack.enter_async_context(_running(node))
                await _same_key(nodes)
                await _time_check(a)  # warm-up: each member builds its index
                timings = []
                for run in range(runs):
                    elapsed, answers = await _time_check(a)
                    timings.append(elapsed)
                    print(f"run {run + 1}: {elapsed * 1000:.1f} ms {answers}", flush=True)
                return timings
    finally:
        federation.stop()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        timings = asyncio.run(_bench(Path(scratch), args.runs, args.cases))
    median = statistics.median(timings) * 1000
    print(f"check -> every answer stored at A: median {median:.1f} ms, "
          f"p95 {_p95(timings) * 1000:.1f} ms, worst {max(timings) * 1000:.1f} ms "
          f"({args.runs} runs, {args.cases} cases at B and at C)")
    print(f"all_answers_ms={median:.0f}")


if __name__ == "__main__":
    main()
