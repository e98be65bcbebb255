"""The API against its own OpenAPI document, on a live node (``minga run`` as a process on a
real homeserver), with an admin token: schemathesis generates requests for every operation and
no answer may be a server error (5xx). Examples per operation are bounded so the run stays
well under a minute."""

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
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from deploy.homeserver import Homeserver, free_port
from node.core.runtime import open_node
from node.core.setup import MatrixAccountChoice, init_node
from node.core.store import Role
from tests.support.api_harness import PASSPHRASE

MAX_EXAMPLES = 10
READY_TIMEOUT = 60.0


async def _create(homeserver: Homeserver, directory: Path, port: int) -> tuple[Path, str]:
    result = await init_node(
        data_dir=directory, org_name="Asociación Minga Fuzz", country="PE",
        homeserver_url=homeserver.url, passphrase=PASSPHRASE, http_port=port,
        account=MatrixAccountChoice(registration_secret=homeserver.state.registration_shared_secret),
    )
    os.environ["MINGA_PASSPHRASE"] = PASSPHRASE
    async with open_node(result.config_file) as node, node.store.transaction() as tx:
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


def _server_errors(operation: schemathesis.APIOperation, mode: GenerationMode, base: str,
                   token: str) -> list[str]:
    """Requests generated for one operation; the problems of any that got a 5xx."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(base_url=base + "/api/v1", checks=[not_a_server_error],
                                   headers={"Authorization": f"Bearer {token}"})
        except FailureGroup as group:  # what schemathesis raises when a check fails
            problems = "; ".join(str(e).splitlines()[0] for e in group.exceptions)
            failures.append(f"{operation.label} ({mode.value}): {problems}")

    run()
    return failures


def test_no_operation_answers_with_a_server_error(live_node: tuple[str, str]) -> None:
    base, token = live_node
    api = schemathesis.openapi.from_url(base + "/api/v1/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10  # the document lists the node's operations
    failures = [failure for operation in operations
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                for failure in _server_errors(operation, mode, base, token)]
    assert failures == [], "\n".join(sorted(set(failures)))
