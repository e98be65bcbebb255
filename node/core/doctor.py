"""``minga doctor``'s rules: what is wrong with a deployment, judged from gathered facts.

Pure and synchronous (decision 0029): :mod:`node.core.doctor_probe` gathers the facts (config,
store, the homeserver's answers, the clock) and these rules turn them into :class:`Finding`s, one
line each, saying what is wrong and how to fix it. Features add their own checks through the
registry (``Registry.doctor_checks``), judged the same way. A *problem* makes ``minga doctor``
exit non-zero; a *warning* is something the node cannot verify (no admin rights, no backup yet).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from federation.transport import ROOM_VERSION

MAX_CLOCK_SKEW_SECONDS = 30.0
"""Beyond this the node's and the homeserver's clocks disagree enough to matter: records carry
signed times, alerts and tokens expire, TLS certificates have validity windows."""
# Minga downloads media through the authenticated media API (Matrix v1.11).
REQUIRED_SPEC_VERSION = (1, 11)
RATE_LIMIT_CALL = (
    "POST /_synapse/admin/v1/users/{user}/override_ratelimit"
    ' with {{"messages_per_second": 0, "burst_count": 0}}')
FEDERATION_DENIED = "Federation denied"


class Level(StrEnum):
    problem = "problem"
    warning = "warning"


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.level.value}: {self.check}: {self.message}. Fix: {self.fix}"

    def as_json(self) -> dict[str, str]:
        return {"check": self.check, "level": self.level.value, "message": self.message,
                "fix": self.fix}


def problem(check: str, message: str, fix: str) -> Finding:
    return Finding(check, Level.problem, message, fix)


def warning(check: str, message: str, fix: str) -> Finding:
    return Finding(check, Level.warning, message, fix)


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True)


class Answer(_Facts):
    """One HTTP request's outcome: ``status`` None means no answer at all (``error`` says why)."""

    status: int | None = None
    errcode: str | None = None
    error: str | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    tls_failed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200


class CoalitionFacts(_Facts):
    coalition_id: str
    room: str
    members: Answer
    """``GET /rooms/<coalition room>/joined_members``."""
    member_servers: dict[str, Answer] = Field(default_factory=dict)
    """Each other member's server: the profile of one of its accounts, fetched by our
    homeserver over federation."""


class HomeserverFacts(_Facts):
    url: str
    versions: Answer
    """``GET /_matrix/client/versions`` (no login needed)."""
    server_time: float | None = None
    """The ``Date`` header of that answer, Unix seconds."""
    local_time: float = 0.0
    """The local clock halfway through that request."""
    configured_user: str | None = None
    whoami: Answer | None = None
    capabilities: Answer | None = None
    rate_limit: Answer | None = None
    """``GET /_synapse/admin/v1/users/<node>/override_ratelimit``."""
    coalitions: list[CoalitionFacts] = Field(default_factory=list)
    """Each coalition the node is in (decision 0032), oldest first."""


class DeploymentFacts(_Facts):
    config_file: str
    config_error: str | None = None
    store_error: str | None = None
    homeserver: HomeserverFacts | None = None


# --- the rules ------------------------------------------------------------------------------


def check_config(facts: DeploymentFacts) -> list[Finding]:
    if facts.config_error is None:
        return []
    return [problem("config", facts.config_error,
                    f"correct {facts.config_file}; node.example.toml explains every setting")]


def check_store(facts: DeploymentFacts) -> list[Finding]:
    if facts.store_error is None:
        return []
    return [problem("store", f"cannot open the node: {facts.store_error}",
                    "give the passphrase (node.passphrase_file or MINGA_PASSPHRASE) and check"
                    " [store] in node.toml; `minga backup restore` brings a lost store back")]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tls(hs: HomeserverFacts) -> list[Finding]:
    parts = urlsplit(hs.url)
    findings = []
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        findings.append(problem(
            "tls", f"the node talks to its homeserver {parts.hostname} over plain HTTP",
            "put https:// in [homeserver] url (the homeserver's TLS address)"))
    if hs.versions.tls_failed:
        findings.append(problem(
            "tls", f"the homeserver's TLS certificate is not trusted ({hs.versions.error})",
            "renew the certificate (Caddy or certbot do it by themselves) or install the"
            " issuing CA on this machine"))
    return findings


def check_reachable(hs: HomeserverFacts) -> list[Finding]:
    versions = hs.versions
    if versions.tls_failed:
        return []  # check_tls says it
    if versions.status is None:
        return [problem("homeserver", f"no answer from {hs.url} ({versions.error})",
                        "start the homeserver, or correct [homeserver] url in node.toml")]
    if not versions.ok:
        return [problem("homeserver", f"{hs.url} answered {versions.status} to"
                        " /_matrix/client/versions: it is not a Matrix homeserver, or a proxy"
                        " in front of it is misconfigured",
                        "correct [homeserver] url, or pass /_matrix/ through the proxy")]
    return []


def _spec_version(text: object) -> tuple[int, int] | None:
    if not isinstance(text, str) or not text.startswith("v"):
        return None
    major, _, minor = text[1:].partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


def check_spec_version(hs: HomeserverFacts) -> list[Finding]:
    if not hs.versions.ok:
        return []
    listed = hs.versions.body.get("versions")
    versions = [v for v in map(_spec_version, listed if isinstance(listed, list) else [])
                if v is not None]
    if versions and max(versions) >= REQUIRED_SPEC_VERSION:
        return []
    newest = ".".join(map(str, max(versions))) if versions else "none"
    return [problem("homeserver version",
                    f"the homeserver speaks Matrix up to v{newest}; Minga needs"
                    f" v{'.'.join(map(str, REQUIRED_SPEC_VERSION))} (authenticated media)",
                    "upgrade the homeserver (Synapse 1.135 or later)")]


def check_clock(hs: HomeserverFacts) -> list[Finding]:
    if hs.server_time is None:
        return []
    skew = hs.local_time - hs.server_time
    # The Date header has whole seconds: allow one more.
    if abs(skew) <= MAX_CLOCK_SKEW_SECONDS + 1:
        return []
    side = "ahead of" if skew > 0 else "behind"
    return [problem("clock", f"this machine's clock is {abs(skew):.0f} s {side} the"
                    " homeserver's",
                    "run time synchronisation (systemd-timesyncd or chrony) on both machines")]


def check_login(hs: HomeserverFacts) -> list[Finding]:
    answer = hs.whoami
    if answer is None or not hs.versions.ok:
        return []
    if answer.status in (401, 403) or answer.errcode in ("M_UNKNOWN_TOKEN", "M_FORBIDDEN"):
        return [problem("login", f"the homeserver refuses the node's access token"
                        f" ({answer.errcode or answer.status})",
                        f"issue a new token for {hs.configured_user} (docs/deploy.md) and run"
                        " `minga matrix-token --file FILE`")]
    if not answer.ok:
        return [problem("login", f"whoami failed ({answer.errcode or answer.status or ''}"
                        f" {answer.error or ''})".replace("( ", "("),
                        "see the homeserver's log")]
    user = answer.body.get("user_id")
    if hs.configured_user is not None and user != hs.configured_user:
        return [problem("login", f"the node's token belongs to {user}, not to"
                        f" {hs.configured_user} named in node.toml",
                        "put the token's account in [homeserver] user_id, or issue a token"
                        f" for {hs.configured_user}")]
    return []


def _logged_in(hs: HomeserverFacts) -> bool:
    return hs.whoami is not None and hs.whoami.ok


def check_room_version(hs: HomeserverFacts) -> list[Finding]:
    answer = hs.capabilities
    if answer is None or not _logged_in(hs):
        return []
    capabilities = answer.body.get("capabilities")
    room_versions = capabilities.get("m.room_versions") if isinstance(capabilities, dict) \
        else None
    available = room_versions.get("available") if isinstance(room_versions, dict) else None
    if not answer.ok or not isinstance(available, dict):
        return [warning("room version", "the homeserver did not say which room versions it"
                        f" supports ({answer.errcode or answer.status})",
                        f"make sure it supports room version {ROOM_VERSION}")]
    if ROOM_VERSION in available:
        return []
    return [problem("room version", f"the homeserver does not support room version"
                    f" {ROOM_VERSION}, which Minga's rooms use",
                    "upgrade the homeserver (Synapse 1.135 or later)")]


def rate_limit_fix(user: str | None) -> str:
    return ("the homeserver's admin exempts the node's account: "
            + RATE_LIMIT_CALL.format(user=user or "@node:server"))


def check_rate_limit(hs: HomeserverFacts) -> list[Finding]:
    answer = hs.rate_limit
    if answer is None or not _logged_in(hs):
        return []
    user = hs.configured_user
    if answer.ok:
        per_second = answer.body.get("messages_per_second")
        burst = answer.body.get("burst_count")
        if per_second == 0 and burst == 0:
            return []
        what = ("the homeserver's default message rate limit" if not answer.body
                else f"a rate limit of {per_second}/s, burst {burst}")
        return [problem("rate limit", f"{what} applies to the node's account {user}: sharing"
                        " and alerts stall behind it", rate_limit_fix(user))]
    if answer.errcode == "M_LIMIT_EXCEEDED" or answer.status == 429:
        return [problem("rate limit", f"the homeserver is rate-limiting {user} right now",
                        rate_limit_fix(user))]
    if answer.status in (401, 403):
        why = "the node's account is not a server admin"
    else:
        why = f"the homeserver has no Synapse admin API ({answer.status or answer.error})"
    return [warning("rate limit", f"cannot see whether {user} is exempt from rate limits"
                    f" ({why}); a throttled node logs M_LIMIT_EXCEEDED",
                    rate_limit_fix(user))]


def _why(answer: Answer) -> str | int | None:
    return answer.errcode or answer.status or answer.error


def check_federation(hs: HomeserverFacts) -> list[Finding]:
    """Every coalition room's members listed, every member's server reached (each server
    named once, whichever coalitions it serves)."""
    if not _logged_in(hs):
        return []
    findings = [problem("federation", f"cannot list the members of coalition"
                        f" {coalition.coalition_id}'s room ({_why(coalition.members)})",
                        "check that the node is still in the coalition room (`minga status`)")
                for coalition in hs.coalitions if not coalition.members.ok]
    servers = {server: answer for coalition in hs.coalitions
               for server, answer in coalition.member_servers.items()}
    for server, answer in sorted(servers.items()):
        reachable = answer.ok or answer.errcode == "M_NOT_FOUND" or (
            answer.status == 403 and FEDERATION_DENIED not in (answer.error or ""))
        if reachable:
            continue
        if FEDERATION_DENIED in (answer.error or ""):
            findings.append(problem(
                "federation", f"the homeserver refuses to federate with {server}, a member's"
                " server", f"add {server} to federation_domain_whitelist in the homeserver's"
                " configuration (or remove that list)"))
        else:
            detail = answer.errcode or answer.status or answer.error
            findings.append(problem(
                "federation", f"the homeserver cannot reach {server}, a member's server, over"
                f" federation ({detail})",
                f"ask {server}'s admin whether it is up and reachable on its federation port"
                " (8448, or as its /.well-known/matrix/server says); check both servers'"
                " federation_domain_whitelist and firewalls"))
    return findings


HOMESERVER_RULES: Sequence[Callable[[HomeserverFacts], list[Finding]]] = (
    check_tls, check_reachable, check_spec_version, check_clock, check_login,
    check_room_version, check_rate_limit, check_federation,
)


def judge(facts: DeploymentFacts) -> list[Finding]:
    """Every finding about a deployment, most basic first."""
    findings = check_config(facts) + check_store(facts)
    if facts.homeserver is not None:
        for rule in HOMESERVER_RULES:
            findings.extend(rule(facts.homeserver))
    return findings


def exit_status(findings: Sequence[Finding]) -> int:
    return 1 if any(f.level is Level.problem for f in findings) else 0


def render(findings: Sequence[Finding]) -> str:
    if not findings:
        return "all clear: config, store, homeserver, TLS, clock, login, room version, rate" \
               " limit, federation and backups look right"
    lines = [f.line() for f in findings]
    if exit_status(findings) == 0:
        lines.append("no problem found (the warnings above are things doctor cannot verify)")
    return "\n".join(lines)
