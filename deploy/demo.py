"""The demo network behind ``minga demo`` and ``make demo``.

It starts two federated Matrix homeservers on loopback and the nodes of three invented member
organisations (based in Colombia, Kenya and the Philippines; two on the first homeserver, one on
the second), forms a coalition, loads sample cases through each node's API, prints how to reach
each node and writes the same to ``DIR/demo.json``. Then it runs until Ctrl-C, SIGTERM or the
caller's ``stop`` event, and stops everything it started.

``deploy`` never imports ``node`` (docs/architecture.md §1): nodes are created, joined and run
through the
``minga`` command, each as its own process.

Running it again on the same directory restarts the demo found there (same nodes, tokens and
cases) when that demo was set up completely, i.e. ``demo.json`` was written. A directory whose
setup was interrupted is moved aside to ``DIR/old/<time>/`` and a fresh demo is built.

Layout of ``DIR``::

    demo.json          what the demo prints: nodes, API addresses, admin tokens, homeservers
    passphrase         the passphrase of all three demo nodes (MINGA_PASSPHRASE)
    homeservers/hs1/   each Synapse's data, configuration and homeserver.log
    nodes/<key>/       each node's data directory and node.toml
    logs/              each node's log (<key>.log), pid file, and setup.log (the setup commands)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from deploy.homeserver import (
    LOOPBACK,
    Homeserver,
    HomeserverError,
    PortInUseError,
    free_port,
    http_json,
    start_federation,
)
from deploy.processes import die_with_parent, process_alive, runs_command, terminate_group

SAMPLE_CASES_DIR = Path(__file__).resolve().parent / "demo_cases"
COALITION_NAME = "Minga demo coalition"
ADMIN_USER = "demo-admin"
STAFF_USER = "admin"
"""The staff account of the web interface created on every demo node (``minga user add``)."""
STAFF_LOGIN_FILE = "staff-login.json"

COMMAND_TIMEOUT = 180.0
"""Seconds one setup command (``minga init``, ``coalition join``...) may take."""
JOIN_WAIT = 120
"""Seconds ``minga coalition join`` waits for an invite to arrive over federation."""
NODE_READY_TIMEOUT = 90.0
"""Seconds all three nodes together may take until their APIs answer."""
DEMO_SHARES_PER_ORG = 2
"""How many of its sample cases each demo org shares with the other two."""
DEMO_SHARE_FIELDS = ("country", "incident_date", "violations", "victims.groups", "place")
"""The fields shared (those consent allows every recipient, at least two, or none at all)."""
STOP_GRACE = 15.0
"""Seconds a node may take to stop after SIGTERM before it is killed."""


class DemoError(RuntimeError):
    """The demo could not be set up or started; the message says what and where to look."""


@dataclass(frozen=True)
class DemoOrg:
    """One invented member organisation of the demo coalition."""

    key: str
    name: str
    country: str
    homeserver: int  # index into the demo's homeservers

    @property
    def sample_cases(self) -> Path:
        return SAMPLE_CASES_DIR / f"{self.key}.json"


DEMO_ORGS: tuple[DemoOrg, ...] = (
    DemoOrg("colombia", "Corporación Semillas de Dignidad", "CO", homeserver=0),
    DemoOrg("kenya", "Ushirika wa Walinzi wa Haki", "KE", homeserver=0),
    DemoOrg("philippines", "Tanglaw Defenders Collective", "PH", homeserver=1),
)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoOrgEntry(_Entry):
    name: str
    org_id: str
    api: str
    token: str
    web: str
    homeserver: str


class DemoHomeserverEntry(_Entry):
    url: str
    server_name: str
    data_dir: str


class DemoInfo(_Entry):
    """The content of ``DIR/demo.json``."""

    orgs: list[DemoOrgEntry]
    homeservers: list[DemoHomeserverEntry]


@dataclass(frozen=True)
class DemoLayout:
    """Where everything of one demo lives inside its directory."""

    root: Path

    @property
    def demo_json(self) -> Path:
        return self.root / "demo.json"

    @property
    def passphrase(self) -> Path:
        return self.root / "passphrase"

    @property
    def lock(self) -> Path:
        return self.root / "demo.lock"

    @property
    def homeservers(self) -> Path:
        return self.root / "homeservers"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def setup_log(self) -> Path:
        return self.logs / "setup.log"

    @property
    def old(self) -> Path:
        return self.root / "old"

    def node_dir(self, org: DemoOrg) -> Path:
        return self.root / "nodes" / org.key

    def node_config(self, org: DemoOrg) -> Path:
        return self.node_dir(org) / "node.toml"

    def node_log(self, org: DemoOrg) -> Path:
        return self.logs / f"{org.key}.log"

    def node_pid(self, org: DemoOrg) -> Path:
        return self.logs / f"{org.key}.pid"

    def is_complete(self) -> bool:
        """A previous setup ran to the end (it writes demo.json last)."""
        return (
            self.demo_json.is_file()
            and self.passphrase.is_file()
            and all(self.node_config(org).is_file() for org in DEMO_ORGS)
        )


_DEMO_ENTRIES = frozenset({"demo.json", "passphrase", "demo.lock", "homeservers", "nodes", "logs",
                           "old", "homeserver"})
"""What a demo directory may hold; ``homeserver`` is left by the homeserver-only demo of M1."""


def _say(line: str = "") -> None:
    print(line, flush=True)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, replacing ``path`` atomically."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def _log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = text.strip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail)


# ----- the ``minga`` command ----------------------------------------------------------------


def minga_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *args]


@dataclass
class MingaRunner:
    """Runs setup commands of the ``minga`` CLI, recording them in ``setup.log``."""

    env: dict[str, str]
    log: Path

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT, secret_output: bool = False,
            ) -> str:
        described = "minga " + " ".join(args)
        try:
            done = subprocess.run(
                minga_command(*args), env=self.env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"`{described}` did not finish within {timeout:.0f} s") from None
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"$ {described}\n")
            log.write("(output not logged: it holds a secret)\n" if secret_output else done.stdout)
            log.write(done.stderr)
        if done.returncode != 0:
            problem = done.stderr.strip() or f"exit code {done.returncode}"
            raise DemoError(f"`{described}` failed: {problem}")
        return done.stdout

    def run_json(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        output = self.run(*args, timeout=timeout)
        try:
            parsed = json.loads(output)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise DemoError(f"`minga {' '.join(args)}` did not print a JSON object")
        return parsed


# ----- node processes -----------------------------------------------------------------------


@dataclass
class NodeProcess:
    """One ``minga run`` in its own process group, logging to ``logs/<key>.log``."""

    org: DemoOrg
    layout: DemoLayout
    env: dict[str, str]
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.layout.node_log(self.org)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def reap_stale(self) -> None:
        """Stop a node left running from this directory by a demo that crashed."""
        pid_file = self.layout.node_pid(self.org)
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        config = str(self.layout.node_config(self.org))
        if process_alive(pid) and runs_command(pid, "node.cli", config):
            terminate_group(pid, timeout=STOP_GRACE)
        pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        self.reap_stale()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                minga_command("--config", str(self.layout.node_config(self.org)), "run"),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.layout.node_pid(self.org).write_text(f"{self._process.pid}\n")

    def wait_until_answering(self, entry: DemoOrgEntry, deadline: float) -> None:
        """Return once ``GET status`` answers with the admin token; raise naming the log."""
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise DemoError(
                    f"the node of {self.org.name} exited (code {code}) before its API answered;"
                    f" see {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            if _api_answers(entry):
                return
            time.sleep(0.2)
        raise DemoError(
            f"the API of {self.org.name} at {entry.api} did not answer within"
            f" {NODE_READY_TIMEOUT:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        """SIGTERM the node's process group; SIGKILL it after :data:`STOP_GRACE` seconds."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Children the node may have started share its group: make sure none outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.layout.node_pid(self.org).unlink(missing_ok=True)


def _api_answers(entry: DemoOrgEntry) -> bool:
    try:
        http_json(entry.api, "GET", "/status", access_token=entry.token, timeout=2)
    except (HomeserverError, OSError, ValueError):
        return False
    return True


@dataclass
class RunningDemo:
    """Everything the demo started, so that all of it can be stopped."""

    homeservers: list[Homeserver] = field(default_factory=list)
    nodes: list[NodeProcess] = field(default_factory=list)
    _reported: set[str] = field(default_factory=set)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for server in self.homeservers:
            server.stop()

    def report_failures(self) -> None:
        """Say once about each node or homeserver that stopped while the demo runs."""
        for node in self.nodes:
            code = node.exit_code()
            if code is not None and node.org.key not in self._reported:
                self._reported.add(node.org.key)
                _say(f"WARNING: the node of {node.org.name} stopped (exit code {code});"
                     f" see {node.log_path}")
        for server in self.homeservers:
            if not server.running and server.server_name not in self._reported:
                self._reported.add(server.server_name)
                _say(f"WARNING: homeserver {server.server_name} stopped; see {server.log_path}")


# ----- setting up a fresh demo --------------------------------------------------------------


@dataclass(frozen=True)
class _CreatedOrg:
    org: DemoOrg
    entry: DemoOrgEntry
    matrix_user_id: str
    config: Path


def _node_env(passphrase: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "MINGA_CONFIG"}
    return env | {"MINGA_PASSPHRASE": passphrase, "PYTHONUNBUFFERED": "1"}


def _registration_secret_file(server: Homeserver) -> Path:
    path = server.directory / "registration-secret"
    if not path.exists():
        _write_private(path, server.state.registration_shared_secret)
    return path


def _create_org(
    runner: MingaRunner, layout: DemoLayout, org: DemoOrg, server: Homeserver
) -> _CreatedOrg:
    _say(f"Creating the node of {org.name} ({org.country}) on {server.server_name} ...")
    port = free_port()
    created = runner.run_json(
        "init", "--org-name", org.name, "--country", org.country, "--homeserver", server.url,
        "--data-dir", str(layout.node_dir(org)), "--http-port", str(port),
        "--registration-secret-file", str(_registration_secret_file(server)), "--json",
    )
    config = layout.node_config(org)
    token = runner.run("--config", str(config), "token", "create", "--user", ADMIN_USER,
                       "--role", "admin", secret_output=True).strip()
    if not token:
        raise DemoError(f"`minga token create` printed no token for {org.name}")
    _create_staff_login(runner, layout, org, config)
    entry = DemoOrgEntry(
        name=org.name,
        org_id=str(created["org_id"]),
        api=f"http://{LOOPBACK}:{port}/api/v1",
        token=token,
        web=f"http://{LOOPBACK}:{port}/",
        homeserver=server.url,
    )
    return _CreatedOrg(org, entry, str(created["matrix_user_id"]), config)


def _create_staff_login(runner: MingaRunner, layout: DemoLayout, org: DemoOrg,
                        config: Path) -> None:
    """An admin account for the web pages, its password and TOTP secret kept in the node's
    directory (owner-only) so that every start of the demo can print them."""
    password_file = layout.node_dir(org) / "staff-password"
    _write_private(password_file, secrets.token_urlsafe(12))
    output = runner.run("--config", str(config), "user", "add", STAFF_USER, "--role", "admin",
                        "--password-file", str(password_file), "--json", secret_output=True)
    try:
        secret = json.loads(output)["totp_secret"]
    except (ValueError, KeyError, TypeError):
        raise DemoError(f"`minga user add` printed no TOTP secret for {org.name}") from None
    login = {"user": STAFF_USER, "password": password_file.read_text(encoding="utf-8"),
             "totp_secret": secret}
    _write_private(layout.node_dir(org) / STAFF_LOGIN_FILE, json.dumps(login) + "\n")
    password_file.unlink()


def _staff_login_lines(layout: DemoLayout, org: DemoOrg) -> list[str]:
    try:
        login = json.loads((layout.node_dir(org) / STAFF_LOGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # a demo set up before the web interface existed
    code_command = f"{sys.executable} -m node.features.accounts.totp_now {login['totp_secret']}"
    return [f"    staff login: {login['user']} / {login['password']}",
            f"      6-digit code: {code_command}",
            f"      (or add {login['totp_secret']} to an authenticator app)"]


def _form_coalition(runner: MingaRunner, founder: _CreatedOrg,
                    members: Sequence[_CreatedOrg]) -> None:
    _say(f"Forming the coalition: {founder.org.name} creates it and invites the others ...")
    room = runner.run_json("--config", str(founder.config), "coalition", "create",
                           COALITION_NAME, "--json")
    room_id = room.get("room_id")
    if not isinstance(room_id, str):
        raise DemoError("`minga coalition create` printed no room_id")
    for member in members:
        runner.run("--config", str(founder.config), "coalition", "invite", member.matrix_user_id)
    for member in members:
        _say(f"  {member.org.name} joins ...")
        runner.run("--config", str(member.config), "coalition", "join", room_id,
                   "--wait", str(JOIN_WAIT))


def _sample_cases(org: DemoOrg) -> list[dict[str, Any]]:
    cases = json.loads(org.sample_cases.read_text(encoding="utf-8"))
    if not isinstance(cases, list) or not all(isinstance(case, dict) for case in cases):
        raise DemoError(f"{org.sample_cases} must hold a JSON list of case objects")
    return cases


def _load_sample_cases(org: DemoOrg, entry: DemoOrgEntry) -> int:
    cases = _sample_cases(org)
    for number, case in enumerate(cases, start=1):
        try:
            http_json(entry.api, "POST", "/cases", case, access_token=entry.token)
        except (HomeserverError, OSError) as error:
            raise DemoError(
                f"the node of {org.name} refused sample case {number} of {org.sample_cases}:"
                f" {error}"
            ) from None
    return len(cases)


def _publish_figures(org: DemoOrg, entry: DemoOrgEntry) -> None:
    """Publish the node's aggregate figures now, so the coalition's figures page and its
    charts have every member's numbers from the first visit."""
    try:
        http_json(entry.api, "POST", "/aggregates/publish", {}, access_token=entry.token)
    except (HomeserverError, OSError) as error:
        raise DemoError(f"the node of {org.name} could not publish its figures: {error}") \
            from None


def _share_sample_cases(sharer: DemoOrgEntry, others: Sequence[DemoOrgEntry]) -> int:
    """Share a few of ``sharer``'s cases with ``others`` through its API: for each case, the
    fields of :data:`DEMO_SHARE_FIELDS` that consent allows every recipient (the share dialog's
    preview says which), if there are at least two; cases consent keeps home are skipped."""
    recipients = [other.org_id for other in others]
    cases = http_json(sharer.api, "GET", "/cases?limit=50", access_token=sharer.token)["items"]
    shared = 0
    for case in reversed(cases):  # oldest first, the order they were loaded in
        if shared == DEMO_SHARES_PER_ORG:
            break
        path = f"/cases/{case['record_id']}/share"
        request = {"recipients": recipients, "fields": list(DEMO_SHARE_FIELDS)}
        preview = http_json(sharer.api, "POST", path + "/preview", request,
                            access_token=sharer.token)
        allowed = [set(r["allowed_fields"]) for r in preview["recipients"]]
        fields = [f for f in DEMO_SHARE_FIELDS if all(f in offer for offer in allowed)]
        if len(fields) < 2:
            continue
        try:
            http_json(sharer.api, "POST", path, {"recipients": recipients, "fields": fields},
                      access_token=sharer.token)
        except (HomeserverError, OSError) as error:
            raise DemoError(f"the node of {sharer.name} could not share a sample case: {error}")\
                from None
        shared += 1
    return shared


def _set_up(layout: DemoLayout, running: RunningDemo) -> DemoInfo:
    for directory in (layout.root / "nodes", layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    passphrase = secrets.token_urlsafe(18)
    _write_private(layout.passphrase, passphrase + "\n")
    _say("Starting two federated Matrix homeservers on loopback ...")
    federation = start_federation(layout.homeservers, 2)
    running.homeservers.extend(federation)
    for server in federation:
        _say(f"  {server.server_name} at {server.url}")
    env = _node_env(passphrase)
    runner = MingaRunner(env, layout.setup_log)
    created = [_create_org(runner, layout, org, federation[org.homeserver]) for org in DEMO_ORGS]
    _form_coalition(runner, created[0], created[1:])
    entries = [org.entry for org in created]
    _start_nodes(layout, running, env, entries)
    for org in created:
        count = _load_sample_cases(org.org, org.entry)
        _say(f"Loaded {count} sample cases into the node of {org.org.name}")
    for org in created:
        shared = _share_sample_cases(org.entry, [o.entry for o in created if o is not org])
        _say(f"{org.org.name} shared {shared} cases with the other two members")
    for org in created:
        _publish_figures(org.org, org.entry)
        _say(f"{org.org.name} published its figures to the coalition")
    info = DemoInfo(orgs=entries, homeservers=[_homeserver_entry(s) for s in federation])
    _write_private(layout.demo_json, info.model_dump_json(indent=2) + "\n")
    return info


def _homeserver_entry(server: Homeserver) -> DemoHomeserverEntry:
    return DemoHomeserverEntry(url=server.url, server_name=server.server_name,
                               data_dir=str(server.directory))


def _start_nodes(layout: DemoLayout, running: RunningDemo, env: dict[str, str],
                 entries: Sequence[DemoOrgEntry]) -> None:
    _say("Starting the three nodes (`minga run`) ...")
    nodes = [NodeProcess(org, layout, env) for org in DEMO_ORGS]
    for node in nodes:
        running.nodes.append(node)
        node.start()
    deadline = time.monotonic() + NODE_READY_TIMEOUT
    for node, entry in zip(nodes, entries, strict=True):
        node.wait_until_answering(entry, deadline)


# ----- restarting a previous demo -----------------------------------------------------------


def _read_info(layout: DemoLayout) -> DemoInfo:
    try:
        info = DemoInfo.model_validate_json(layout.demo_json.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as error:
        raise DemoError(f"{layout.demo_json} is unreadable ({type(error).__name__}); remove"
                        f" {layout.root} to start a fresh demo") from None
    if len(info.orgs) != len(DEMO_ORGS):
        raise DemoError(f"{layout.demo_json} was written by another version of the demo;"
                        f" remove {layout.root} to start a fresh demo")
    return info


def _restart(layout: DemoLayout, running: RunningDemo) -> DemoInfo:
    info = _read_info(layout)
    _say(f"Restarting the demo found in {layout.root} ...")
    servers = [Homeserver.open(Path(entry.data_dir)) for entry in info.homeservers]
    for server in servers:
        running.homeservers.append(server)
        server.spawn()
    for server in servers:
        try:
            server.wait_ready()
        except PortInUseError as error:
            raise DemoError(f"{error} by another program: stop that program, or remove"
                            f" {layout.root} to start a fresh demo on free ports") from None
        _say(f"  homeserver {server.server_name} at {server.url}")
    passphrase = layout.passphrase.read_text(encoding="utf-8").strip()
    _start_nodes(layout, running, _node_env(passphrase), info.orgs)
    _write_private(layout.demo_json, info.model_dump_json(indent=2) + "\n")
    return info


# ----- the directory ------------------------------------------------------------------------


def _refuse_foreign_directory(root: Path) -> None:
    if not root.exists():
        return
    if not root.is_dir():
        raise DemoError(f"{root} is not a directory; choose another --dir")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in _DEMO_ENTRIES)
    if foreign:
        raise DemoError(f"{root} holds files that are not from a demo ({', '.join(foreign[:3])});"
                        " choose another --dir")


@contextlib.contextmanager
def _exclusive(layout: DemoLayout) -> Iterator[None]:
    """Hold the demo directory's lock, so two demos never run from one directory."""
    _refuse_foreign_directory(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with layout.lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError(f"a demo is already running from {layout.root};"
                            " stop it first (Ctrl-C in its terminal) or use another --dir"
                            ) from None
        yield


def _stop_leftovers(layout: DemoLayout) -> None:
    """Stop processes that a crashed demo in this directory left running."""
    for org in DEMO_ORGS:
        NodeProcess(org, layout, {}).reap_stale()
    states = [*layout.homeservers.glob("hs*/minga-homeserver.json"),
              *layout.root.glob("homeserver/minga-homeserver.json")]
    for state in states:
        with contextlib.suppress(HomeserverError, TypeError, ValueError):
            Homeserver.open(state.parent).reap_stale()


def move_incomplete_aside(layout: DemoLayout) -> Path | None:
    """Move what an interrupted setup left behind to ``old/<time>/``; return where to.

    Processes it left running are stopped first. The lock file stays where it is.
    """
    leftovers = [p for p in layout.root.iterdir() if p.name not in ("demo.lock", "old")]
    if not leftovers:
        return None
    _stop_leftovers(layout)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = layout.old / stamp
    number = 1
    while aside.exists():
        number += 1
        aside = layout.old / f"{stamp}-{number}"
    aside.mkdir(parents=True)
    for path in leftovers:
        shutil.move(str(path), str(aside / path.name))
    _say(f"The demo in {layout.root} was not set up completely; moved it to {aside}")
    return aside


def _bring_up(layout: DemoLayout, running: RunningDemo) -> DemoInfo:
    if layout.is_complete():
        _stop_leftovers(layout)
        return _restart(layout, running)
    move_incomplete_aside(layout)
    return _set_up(layout, running)


# ----- running until stopped ----------------------------------------------------------------


def _announce(info: DemoInfo, layout: DemoLayout) -> None:
    _say()
    _say("The Minga demo network is running.")
    for org, entry in zip(DEMO_ORGS, info.orgs, strict=True):
        _say()
        _say(f"  {entry.name} ({org.country}) — organisation id {entry.org_id}")
        _say(f"    web:         {entry.web}")
        for line in _staff_login_lines(layout, org):
            _say(line)
        _say(f"    API:         {entry.api}")
        _say(f"    admin token: {entry.token}")
        _say(f"    homeserver:  {entry.homeserver}")
    _say()
    for server in info.homeservers:
        _say(f"  Homeserver {server.server_name} at {server.url} (data in {server.data_dir})")
    _say()
    _say(f"All of this is also in {layout.demo_json}; node logs are in {layout.logs}.")
    _say(f"The nodes' passphrase is in {layout.passphrase}; to use the minga command on a node:")
    _say(f'  MINGA_PASSPHRASE="$(cat {layout.passphrase})" minga --config'
         f" {layout.node_config(DEMO_ORGS[0])} status")
    _say("Running `minga demo` again on this directory restarts these same nodes.")
    _say("Press Ctrl-C to stop the demo.")


def _wait_for_stop(stop: threading.Event | None, running: RunningDemo) -> None:
    forever = stop or threading.Event()
    while not forever.wait(0.5):
        running.report_failures()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """In the main thread, SIGTERM stops the demo the way Ctrl-C does."""
    if not _in_main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the shutdown short and leave processes behind."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(
    directory: Path,
    *,
    ready: Callable[[dict[str, Any]], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the demo network from ``directory`` until Ctrl-C, SIGTERM or ``stop``; 0 if clean.

    ``ready`` is called with the content of ``demo.json`` once every node answers.
    """
    layout = DemoLayout(directory.resolve())
    running = RunningDemo()
    try:
        with _sigterm_interrupts(), _exclusive(layout):
            try:
                info = _bring_up(layout, running)
                _announce(info, layout)
                if ready is not None:
                    ready(info.model_dump(mode="json"))
                _wait_for_stop(stop, running)
            finally:
                with _signals_ignored():
                    _say("Stopping the demo ...")
                    running.stop()
    except KeyboardInterrupt:
        pass
    except (DemoError, HomeserverError) as error:
        print(f"minga demo: {error}", file=sys.stderr, flush=True)
        return 1
    _say("The demo has stopped; nothing it started is still running.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo", description=__doc__)
    parser.add_argument("--dir", default="demo-data", help="directory for all demo data")
    args = parser.parse_args(argv)
    return run_demo(Path(args.dir))


if __name__ == "__main__":
    sys.exit(main())
