"""``minga doctor``'s rules (node.core.doctor), each over hand-made facts."""

from __future__ import annotations

from typing import Any

import pytest

from node.core.doctor import (
    Answer,
    CoalitionFacts,
    DeploymentFacts,
    Finding,
    HomeserverFacts,
    Level,
    check_clock,
    check_federation,
    check_login,
    check_rate_limit,
    check_reachable,
    check_room_version,
    check_spec_version,
    check_tls,
    exit_status,
    judge,
    render,
)

USER = "@minga-node:hs.example.org"
OK_VERSIONS = Answer(status=200, body={"versions": ["v1.1", "v1.11", "v1.12"]})


def healthy(**changes: Any) -> HomeserverFacts:
    facts: dict[str, Any] = {
        "url": "https://hs.example.org",
        "versions": OK_VERSIONS,
        "server_time": 1_800_000_000.0,
        "local_time": 1_800_000_000.4,
        "configured_user": USER,
        "whoami": Answer(status=200, body={"user_id": USER, "device_id": "D"}),
        "capabilities": Answer(status=200, body={"capabilities": {"m.room_versions": {
            "default": "12", "available": {"10": "stable", "11": "stable", "12": "stable"}}}}),
        "rate_limit": Answer(status=200, body={"messages_per_second": 0, "burst_count": 0}),
        "coalitions": [coalition()],
    }
    return HomeserverFacts(**(facts | changes))


def coalition(coalition_id: str = "!room:hs.example.org", **changes: Any) -> CoalitionFacts:
    facts: dict[str, Any] = {
        "coalition_id": coalition_id,
        "room": coalition_id,
        "members": Answer(status=200, body={"joined": {USER: {}, "@b:hs-b.org": {}}}),
        "member_servers": {"hs-b.org": Answer(status=200, body={"displayname": "B"})},
    }
    return CoalitionFacts(**(facts | changes))


def servers(member_servers: dict[str, Answer]) -> HomeserverFacts:
    return healthy(coalitions=[coalition(member_servers=member_servers)])


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_a_healthy_deployment_is_all_clear() -> None:
    findings = judge(DeploymentFacts(config_file="node.toml", homeserver=healthy()))
    assert findings == []
    assert exit_status(findings) == 0
    assert render(findings).startswith("all clear")


def test_a_bad_config_and_a_closed_store_are_problems() -> None:
    findings = judge(DeploymentFacts(config_file="/etc/minga/node.toml",
                                     config_error="node.toml: homeserver.url: missing"))
    assert only(findings).check == "config" and "/etc/minga/node.toml" in findings[0].fix
    findings = judge(DeploymentFacts(config_file="n.toml", store_error="wrong passphrase"))
    assert only(findings).check == "store" and "wrong passphrase" in findings[0].message
    assert exit_status(findings) == 1


@pytest.mark.parametrize(("url", "flagged"), [
    ("http://hs.example.org", True),
    ("http://192.0.2.7:8008", True),
    ("http://127.0.0.1:8008", False),
    ("http://localhost:8008", False),
    ("http://[::1]:8008", False),
    ("https://hs.example.org", False),
])
def test_plain_http_is_only_allowed_on_loopback(url: str, flagged: bool) -> None:
    findings = check_tls(healthy(url=url))
    assert bool(findings) == flagged
    if flagged:
        assert "https://" in findings[0].fix and findings[0].level is Level.problem


def test_an_untrusted_certificate_is_a_tls_problem_not_a_down_server() -> None:
    facts = healthy(versions=Answer(error="certificate has expired", tls_failed=True))
    assert "certificate has expired" in only(check_tls(facts)).message
    assert check_reachable(facts) == []


def test_a_homeserver_that_does_not_answer_names_the_url_and_the_fix() -> None:
    finding = only(check_reachable(healthy(versions=Answer(error="ClientConnectorError"))))
    assert "https://hs.example.org" in finding.message and "ClientConnectorError" in finding.message
    assert "start the homeserver" in finding.fix
    finding = only(check_reachable(healthy(versions=Answer(status=404))))
    assert "404" in finding.message and "proxy" in finding.fix


def test_a_down_homeserver_hides_the_checks_that_need_it() -> None:
    facts = healthy(versions=Answer(error="ClientConnectorError"), whoami=None,
                    capabilities=None, rate_limit=None)
    assert [f.check for f in judge(DeploymentFacts(config_file="n", homeserver=facts))] \
        == ["homeserver"]


@pytest.mark.parametrize(("versions", "ok"), [
    (["v1.11"], True),
    (["r0.6.1", "v1.2", "v1.12"], True),
    (["v2.0"], True),
    (["v1.10", "v1.9"], False),
    (["r0.6.1"], False),
    ([], False),
    ("v1.11", False),
])
def test_the_homeserver_must_speak_matrix_1_11(versions: object, ok: bool) -> None:
    findings = check_spec_version(healthy(versions=Answer(status=200,
                                                          body={"versions": versions})))
    assert (findings == []) == ok
    if not ok:
        assert "upgrade the homeserver" in findings[0].fix


@pytest.mark.parametrize(("skew", "flagged"), [
    (0.0, False), (30.0, False), (-31.0, False), (32.5, True), (-120.0, True), (3600.0, True)])
def test_clock_skew_beyond_thirty_seconds_is_a_problem(skew: float, flagged: bool) -> None:
    findings = check_clock(healthy(server_time=1_800_000_000.0, local_time=1_800_000_000 + skew))
    assert bool(findings) == flagged
    if flagged:
        assert ("ahead of" if skew > 0 else "behind") in findings[0].message
        assert "chrony" in findings[0].fix


def test_no_date_header_says_nothing_about_the_clock() -> None:
    assert check_clock(healthy(server_time=None)) == []


def test_a_refused_token_names_the_command_that_replaces_it() -> None:
    facts = healthy(whoami=Answer(status=401, errcode="M_UNKNOWN_TOKEN"))
    finding = only(check_login(facts))
    assert "M_UNKNOWN_TOKEN" in finding.message and "minga matrix-token" in finding.fix
    assert USER in finding.fix
    # nothing else is judged without a working login
    assert [f.check for f in judge(DeploymentFacts(config_file="n", homeserver=facts))] \
        == ["login"]


def test_a_token_of_another_account_is_a_problem() -> None:
    facts = healthy(whoami=Answer(status=200, body={"user_id": "@other:hs.example.org"}))
    assert "@other:hs.example.org" in only(check_login(facts)).message


@pytest.mark.parametrize(("available", "flagged"), [
    ({"12": "stable"}, False),
    ({"10": "stable", "11": "stable"}, True),
    ({"12": "unstable", "11": "stable"}, False),
])
def test_room_version_12_must_be_available(available: dict[str, str], flagged: bool) -> None:
    facts = healthy(capabilities=Answer(status=200, body={"capabilities": {
        "m.room_versions": {"default": "11", "available": available}}}))
    findings = check_room_version(facts)
    assert bool(findings) == flagged
    if flagged:
        assert "room version 12" in findings[0].message and findings[0].level is Level.problem


def test_capabilities_that_say_nothing_are_a_warning() -> None:
    finding = only(check_room_version(healthy(capabilities=Answer(status=500))))
    assert finding.level is Level.warning


@pytest.mark.parametrize(("answer", "level"), [
    (Answer(status=200, body={}), Level.problem),
    (Answer(status=200, body={"messages_per_second": 0.2, "burst_count": 10}), Level.problem),
    (Answer(status=200, body={"messages_per_second": 0, "burst_count": 5}), Level.problem),
    (Answer(status=429, errcode="M_LIMIT_EXCEEDED"), Level.problem),
    (Answer(status=403, errcode="M_FORBIDDEN", error="You are not a server admin"),
     Level.warning),
    (Answer(status=404, errcode="M_UNRECOGNIZED"), Level.warning),
    (Answer(error="TimeoutError"), Level.warning),
])
def test_rate_limiting_is_named_with_the_admin_call_that_lifts_it(
    answer: Answer, level: Level
) -> None:
    finding = only(check_rate_limit(healthy(rate_limit=answer)))
    assert finding.level is level
    assert f"/_synapse/admin/v1/users/{USER}/override_ratelimit" in finding.fix
    assert '"messages_per_second": 0' in finding.fix


def test_an_exempt_account_passes_the_rate_limit_check() -> None:
    assert check_rate_limit(healthy()) == []


@pytest.mark.parametrize("answer", [
    Answer(status=200, body={}),
    Answer(status=404, errcode="M_NOT_FOUND", error="Profile was not found"),
    Answer(status=403, errcode="M_FORBIDDEN", error="You do not share a room"),
])
def test_a_member_server_that_answers_is_reachable(answer: Answer) -> None:
    assert check_federation(servers({"hs-b.org": answer})) == []


def test_an_unreachable_member_server_is_named() -> None:
    facts = servers({
        "hs-b.org": Answer(status=502, errcode="M_UNKNOWN", error="Failed to fetch profile"),
        "hs-c.org": Answer(status=200)})
    finding = only(check_federation(facts))
    assert "hs-b.org" in finding.message and "cannot reach" in finding.message
    assert "8448" in finding.fix


def test_a_whitelist_that_shuts_a_member_out_is_named() -> None:
    facts = servers({"hs-c.org": Answer(
        status=403, errcode="M_FORBIDDEN", error="Federation denied with hs-c.org.")})
    finding = only(check_federation(facts))
    assert "refuses to federate with hs-c.org" in finding.message
    assert "federation_domain_whitelist" in finding.fix


def test_no_coalition_means_no_federation_check_and_a_lost_room_is_said() -> None:
    assert check_federation(healthy(coalitions=[])) == []
    finding = only(check_federation(healthy(coalitions=[coalition(
        members=Answer(status=403, errcode="M_FORBIDDEN"), member_servers={})])))
    assert "M_FORBIDDEN" in finding.message and "!room:hs.example.org" in finding.message


def test_every_coalition_is_checked_and_a_server_named_once() -> None:
    """A node in several coalitions (decision 0032): each room's members are listed, and a
    server that serves members in two coalitions is one finding."""
    down = Answer(status=502, errcode="M_UNKNOWN", error="Failed to fetch profile")
    facts = healthy(coalitions=[
        coalition("!first:hs.example.org", member_servers={"hs-b.org": down}),
        coalition("!second:hs.example.org", members=Answer(error="TimeoutError"),
                  member_servers={}),
        coalition("!third:hs.example.org", member_servers={
            "hs-b.org": down, "hs-c.org": Answer(status=200)}),
    ])
    lost, unreachable = check_federation(facts)
    assert "!second:hs.example.org" in lost.message and "TimeoutError" in lost.message
    assert "!first" not in lost.message
    assert "cannot reach hs-b.org" in unreachable.message
    assert check_federation(healthy(coalitions=[
        coalition("!first:hs.example.org"), coalition("!second:hs.example.org")])) == []


def test_warnings_alone_exit_zero_and_are_explained() -> None:
    findings = judge(DeploymentFacts(config_file="n", homeserver=healthy(
        rate_limit=Answer(status=403, errcode="M_FORBIDDEN"))))
    assert exit_status(findings) == 0
    text = render(findings)
    assert text.startswith("warning: rate limit:") and "no problem found" in text
    assert len(text.splitlines()) == 2


def test_one_line_per_finding() -> None:
    facts = healthy(url="http://hs.example.org", server_time=1.0, local_time=1000.0,
                    rate_limit=Answer(status=200, body={}))
    findings = judge(DeploymentFacts(config_file="n", homeserver=facts))
    assert [f.check for f in findings] == ["tls", "clock", "rate limit"]
    assert len(render(findings).splitlines()) == 3
    assert all(line.startswith("problem: ") for line in render(findings).splitlines())
