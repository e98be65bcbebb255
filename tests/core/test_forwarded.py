"""The pure rules of taking the client from a trusted reverse proxy's headers (decision 0028)."""

from __future__ import annotations

import pytest

from node.core.config import ConfigError, parse_config
from node.core.forwarded import (
    Hop,
    Origin,
    ProxyHeader,
    forwarded_origin,
    hops_from_forwarded,
    hops_from_x_forwarded,
    parse_address,
    parse_trusted_proxies,
)

LOOPBACK = parse_trusted_proxies(["127.0.0.1", "::1"])
BASE = '[homeserver]\nurl = "http://127.0.0.1:8008"\nuser_id = "@node:example.org"\n'


def test_trusted_proxies_are_addresses_or_networks() -> None:
    networks = parse_trusted_proxies(["127.0.0.1", " 10.0.0.0/8 ", "::1", "fd00::/8"])
    assert [str(n) for n in networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]


@pytest.mark.parametrize("bad", ["caddy.example.org", "10.0.0.1/8", "300.1.2.3", "", "1.2.3.4/33"])
def test_a_bad_trusted_proxy_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_trusted_proxies([bad])


def test_config_names_the_setting_of_a_bad_trusted_proxy() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(BASE + '[http]\ntrusted_proxies = ["127.0.0.1", "proxy"]\n')
    assert "http.trusted_proxies" in str(error.value)
    assert "'proxy'" in str(error.value)


def test_config_defaults_trust_no_proxy_and_serve_no_metrics() -> None:
    config = parse_config(BASE)
    assert config.http.trusted_networks == ()
    assert config.http.proxy_header == ProxyHeader.x_forwarded_for
    assert config.metrics.address is None


def test_config_reads_the_proxy_and_metrics_settings() -> None:
    config = parse_config(BASE + '[http]\ntrusted_proxies = ["::1", "10.1.0.0/16"]\n'
                          'proxy_header = "Forwarded"\n[metrics]\nlisten = "[::1]:9464"\n')
    assert [str(n) for n in config.http.trusted_networks] == ["::1/128", "10.1.0.0/16"]
    assert config.http.proxy_header == ProxyHeader.forwarded
    assert config.metrics.address == ("::1", 9464)


@pytest.mark.parametrize("bad", ["9464", "localhost:9464", "127.0.0.1:0", "127.0.0.1:70000",
                                 "127.0.0.1"])
def test_config_refuses_a_bad_metrics_address(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        parse_config(BASE + f'[metrics]\nlisten = "{bad}"\n')


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.7", "192.0.2.7"),
    ("192.0.2.7:4711", "192.0.2.7"),
    ('"[2001:db8::1]:4711"', "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"),
    ("::ffff:127.0.0.2", "127.0.0.2"),
    ("unknown", None),
    ("_hidden", None),
    ("", None),
    (None, None),
])
def test_addresses_are_read_as_headers_write_them(text: str | None, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address else None) == expected


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    hops = hops_from_x_forwarded(["198.51.100.9"], ["https"])
    assert forwarded_origin("203.0.113.5", hops, LOOPBACK) is None
    assert forwarded_origin(None, hops, LOOPBACK) is None
    assert forwarded_origin("127.0.0.1", hops, ()) is None


def test_a_trusted_peer_that_forwarded_nothing_changes_nothing() -> None:
    assert forwarded_origin("127.0.0.1", [], LOOPBACK) is None


def test_the_client_is_the_entry_the_trusted_proxy_added() -> None:
    hops = hops_from_x_forwarded(["198.51.100.9"], ["https"])
    assert forwarded_origin("127.0.0.1", hops, LOOPBACK) == Origin("198.51.100.9", "https")


def test_what_the_client_wrote_before_the_proxy_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 10.9.9.9, 127.0.0.1" itself; the proxy appended it.
    hops = hops_from_x_forwarded(["10.9.9.9, 127.0.0.1", "198.51.100.9"], ["https"])
    assert forwarded_origin("127.0.0.1", hops, LOOPBACK) == Origin("198.51.100.9", "https")


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client() -> None:
    trusted = parse_trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
    hops = hops_from_x_forwarded(["6.6.6.6, 198.51.100.9, 10.0.0.2"], ["http, https, http"])
    assert forwarded_origin("127.0.0.1", hops, trusted) == Origin("198.51.100.9", "https")


def test_when_every_address_is_trusted_the_leftmost_is_the_client() -> None:
    hops = hops_from_x_forwarded(["127.0.0.1, ::1"], ["https"])
    assert forwarded_origin("::1", hops, LOOPBACK) == Origin("127.0.0.1", "https")


def test_an_unreadable_entry_stops_at_the_proxy_that_wrote_it() -> None:
    hops = hops_from_x_forwarded(["198.51.100.9, garbage"], [])
    assert forwarded_origin("127.0.0.1", hops, LOOPBACK) is None


def test_a_single_proto_value_serves_every_hop() -> None:
    trusted = parse_trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
    hops = hops_from_x_forwarded(["198.51.100.9, 10.0.0.2"], ["https"])
    assert forwarded_origin("127.0.0.1", hops, trusted) == Origin("198.51.100.9", "https")


def test_an_unknown_scheme_is_not_taken() -> None:
    hops = hops_from_x_forwarded(["198.51.100.9"], ["gopher"])
    assert forwarded_origin("127.0.0.1", hops, LOOPBACK) == Origin("198.51.100.9", None)


def test_rfc_7239_forwarded_elements() -> None:
    hops = hops_from_forwarded([{"for": "10.9.9.9", "proto": "http"},
                                {"for": '"[2001:db8::7]:5555"', "proto": "https"}])
    assert hops == [Hop("10.9.9.9", "http"), Hop('"[2001:db8::7]:5555"', "https")]
    assert forwarded_origin("::1", hops, LOOPBACK) == Origin("2001:db8::7", "https")
