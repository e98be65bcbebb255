"""The API against its own OpenAPI document, on a live node in a coalition (``minga run`` as a
process on a real homeserver), with an admin token: schemathesis generates requests for every
operation, and call sequences that follow the document's links (stateful), and no answer may be
a server error (5xx). Examples are bounded so each run stays around a minute."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response

from deploy.homeserver import Homeserver, free_port
from node.assembly import node_registry
from node.core.api.times import iso_time
from node.core.coalition import create_coalition
from node.core.runtime import open_node
from node.core.setup import MatrixAccountChoice, init_node
from node.core.store import Role
from tests.support.api_harness import PASSPHRASE, SAMPLE_CASES

MAX_EXAMPLES = 10
STATEFUL_EXAMPLES = 40
READY_TIMEOUT = 60.0


async def _create(homeserver: Homeserver, directory: Path, port: int) -> tuple[Path, str]:
    result = await init_node(
        data_dir=directory, org_name="Asociación Minga Fuzz", country="PE",
        homeserver_url=homeserver.url, passphrase=PASSPHRASE, http_port=port,
        account=MatrixAccountChoice(registration_secret=homeserver.state.registration_shared_secret),
    )
    os.environ["MINGA_PASSPHRASE"] = PASSPHRASE
    async with open_node(result.config_file) as node:
        await create_coalition(node, "Minga de prueba", node_registry().after_coalition_created)
        async with node.store.transaction() as tx:
            token = await tx.tokens.create("schemathesis", Role.admin)
    return result.config_file, token


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"minga run exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {READY_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the node's process group; SIGKILL it if it has not stopped in 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def live_node(homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[str, str]]:
    directory = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    before = os.environ.get("MINGA_PASSPHRASE")
    config, token = asyncio.run(_create(homeserver, directory / "node", port))
    log = directory / "node.log"
    env = {**os.environ, "MINGA_PASSPHRASE": PASSPHRASE}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--config", str(config), "run"],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(base + "/api/v1/openapi.json", process, log)
        yield base, token
    finally:
        _stop(process)
        if before is None:
            os.environ.pop("MINGA_PASSPHRASE", None)
        else:
            os.environ["MINGA_PASSPHRASE"] = before


@dataclass
class Seen:
    """What the generated requests got: server errors, and the statuses per operation."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def check(self, case: schemathesis.Case, response: Response, label: str) -> None:
        self.statuses[case.operation.label][response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup as group:  # what schemathesis raises when a check fails
            problems = "; ".join(str(e).splitlines()[0] for e in group.exceptions)
            self.failures.append(f"{case.operation.label} ({label}): {problems} {case.body!r:.500}")


def _generated(operation: schemathesis.APIOperation, mode: GenerationMode, base: str,
               token: str, seen: Seen) -> None:
    """Requests generated for one operation, each answer noted in ``seen``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"})
        seen.check(case, response, mode.value)

    run()


def _document(base: str) -> Any:
    """The node's OpenAPI document, without locking: that stops the node by design
    (tests/features/keys/test_lock_wipe.py covers it), and every request generated after it
    would find no node to answer; and without joining, creating or leaving a coalition: a
    generated room was never an invite, so each call waits its full time for one, and a second
    coalition (or none) would make every later call that acts in a coalition need one named,
    which generated data cannot know (tests/features/coalitions covers them)."""
    return schemathesis.openapi.from_url(base + "/api/v1/openapi.json").exclude(
        method="POST", path="/api/v1/node/lock").exclude(
        method="POST", path="/api/v1/coalitions/join").exclude(
        method="POST", path="/api/v1/coalitions").exclude(
        method="POST", path="/api/v1/coalitions/{coalition_id}/leave")


def test_no_operation_answers_with_a_server_error(live_node: tuple[str, str]) -> None:
    base, token = live_node
    api = _document(base)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10  # the document lists the node's operations
    seen = Seen()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _generated(operation, mode, base, token, seen)
    assert seen.failures == [], "\n".join(sorted(set(seen.failures)))
    # The requests reached the real routes: an operation without path parameters is never
    # "not found", and valid requests were accepted somewhere.
    for operation in operations:
        if "{" not in operation.path:
            assert set(seen.statuses[operation.label]) != {404}, operation.label
    assert sum(n for statuses in seen.statuses.values()
               for status, n in statuses.items() if status < 300) > len(operations)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1,
               max_size=200).filter(str.strip)


def case_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """A sample case with generated text in its free-text fields."""
    return st.builds(lambda case, title, narrative: {**case, "title": title,
                                                     "narrative": narrative},
                     st.sampled_from(list(SAMPLE_CASES.values())), TEXT, TEXT)


def proposal_bodies(now: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "title": TEXT, "goal": TEXT, "min_organisations": st.integers(1, 5),
        "deadline": st.integers(now + 3_600, now + 90 * 86_400).map(iso_time),
        "targets": st.lists(st.fixed_dictionaries({
            "name": TEXT, "target_type": st.sampled_from(["government", "company", "other"])}),
            min_size=1, max_size=3)})


def letter_bodies(now: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "title": TEXT, "text": TEXT,
        "deadline": st.integers(now + 3_600, now + 90 * 86_400).map(iso_time)})


def _starting_with(bodies: st.SearchStrategy[dict[str, Any]]) -> Any:
    def before_generate_body(context: Any, strategy: Any) -> st.SearchStrategy[dict[str, Any]]:
        return bodies

    return before_generate_body


def test_call_sequences_along_the_links_never_get_a_server_error(
    live_node: tuple[str, str],
) -> None:
    base, token = live_node
    api = _document(base)
    # Valid requests with the token, so that sequences get past validation and follow links:
    # the records that start a sequence are drawn from strategies that know the domain's rules
    # (an incident in the past, a deadline in the future), with generated text in them.
    api.config.generation.update(modes=[GenerationMode.POSITIVE], with_security_parameters=False)
    # Only the document's own links: links inferred from list answers (GET /cases) depend on
    # what earlier sequences left on the node, so a sequence would not draw the same twice.
    api.config.phases.stateful.inference.algorithms = []
    now = int(time.time())
    for path, bodies in (("/api/v1/cases", case_bodies()), ("/api/v1/proposals",
                                                              proposal_bodies(now)),
                         ("/api/v1/letters", letter_bodies(now))):
        register = api.hooks.hook
        register.apply_to(method="POST", path=path)
        register(_starting_with(bodies))
    seen = Seen()

    class Sequences(api.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": base, "headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response: Response, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            seen.check(case, response, "stateful")

    Sequences.run(settings=settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck),
        # Sequences depend on the node's answers, so a replay (to shrink) draws differently.
        phases=[Phase.generate]))
    assert seen.failures == [], "\n".join(sorted(set(seen.failures)))
    # The sequences followed links: a record made by one call was found by the next.
    followed = {label for label, statuses in seen.statuses.items()
                if "{" in label and any(status < 300 for status in statuses)}

    def reached(resource: str) -> bool:
        return any(label.split(" ", 1)[1].startswith(resource) for label in followed)

    assert reached("/api/v1/cases/{record_id}") and reached("/api/v1/proposals/"), "\n".join(
        f"{k}: {dict(v)}" for k, v in sorted(seen.statuses.items()))
