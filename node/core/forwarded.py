"""Who really sent a request that came through a reverse proxy: pure rules, no I/O.

Behind a TLS proxy every connection comes from the proxy, so the client's address and scheme
are only in headers the proxy adds (``X-Forwarded-For`` / ``X-Forwarded-Proto``, or RFC 7239
``Forwarded``). Anyone can send those headers, so they are believed only when the direct peer is
one of ``[http] trusted_proxies``, and then only as far back as the chain of trusted proxies
goes: walking the header from the right (the entry the peer added), each trusted address hands
over to the entry before it, and the first untrusted one is the client. Anything to its left was
written by the client and is ignored (decision 0028).

:func:`parse_trusted_proxies` reads the setting; :func:`forwarded_origin` picks the client.
The aiohttp middleware that applies them is :mod:`node.core.web.proxy`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES: Final = frozenset({"http", "https"})


class ProxyHeader(StrEnum):
    """Which header the operator's proxy writes; the other is passed through from clients."""

    x_forwarded_for = "X-Forwarded-For"
    forwarded = "Forwarded"


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses (``127.0.0.1``, ``::1``) and networks (``10.0.0.0/8``) as networks.

    Raises ``ValueError`` naming the entry that is neither (a network with host bits set, such
    as ``10.0.0.1/8``, is refused: it is most likely a typo).
    """
    networks: list[Network] = []
    for value in values:
        text = value.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or network such as 127.0.0.1, ::1 or"
                " 10.0.0.0/8 (a network's address must have its host bits zero)") from None
    return tuple(networks)


def parse_address(text: str | None) -> Address | None:
    """An address as a header or a socket gives it: ``1.2.3.4``, ``1.2.3.4:80``,
    ``[2001:db8::1]:443``, ``"[::1]"``; IPv4-mapped IPv6 as IPv4; else None (``unknown``,
    an obfuscated name, garbage)."""
    if not text:
        return None
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


@dataclass(frozen=True)
class Hop:
    """One proxy's note of who connected to it (``for``) and over what (``proto``)."""

    client: str | None
    proto: str | None = None


@dataclass(frozen=True)
class Origin:
    """The client as the trusted proxies saw it."""

    remote: str
    scheme: str | None


def hops_from_x_forwarded(forwarded_for: Sequence[str],
                          forwarded_proto: Sequence[str]) -> list[Hop]:
    """``X-Forwarded-For`` (all header lines, in order) paired from the right with
    ``X-Forwarded-Proto``; a shorter proto list (proxies that keep one value) gives its leftmost
    value to the remaining hops."""
    clients = [item.strip() for line in forwarded_for for item in line.split(",")]
    protos = [item.strip() for line in forwarded_proto for item in line.split(",")]
    hops: list[Hop] = []
    for index in range(len(clients)):
        from_right = len(clients) - 1 - index
        proto = (protos[len(protos) - 1 - from_right] if from_right < len(protos)
                 else protos[0] if protos else None)
        hops.append(Hop(clients[index] or None, proto))
    return hops


def hops_from_forwarded(elements: Sequence[Mapping[str, str]]) -> list[Hop]:
    """RFC 7239 ``Forwarded`` elements (as aiohttp's ``request.forwarded`` parses them)."""
    return [Hop(element.get("for"), element.get("proto")) for element in elements]


def forwarded_origin(peer: str | None, hops: Sequence[Hop],
                     trusted: Sequence[Network]) -> Origin | None:
    """The real client of a request from ``peer`` carrying ``hops``, or None when the headers
    must be ignored (the peer is not a trusted proxy, or it forwarded nothing).

    From the peer leftwards, each trusted address vouches for the hop to its left; the first
    untrusted address is the client. If every address is trusted, the leftmost is the client.
    A hop whose address is unreadable stops the walk at the proxy that wrote it.
    """
    if not hops or not is_trusted(parse_address(peer), trusted):
        return None
    chosen: tuple[Address, Hop] | None = None
    for hop in reversed(hops):
        address = parse_address(hop.client)
        if address is None:
            break
        chosen = (address, hop)
        if not is_trusted(address, trusted):
            break
    if chosen is None:
        return None
    address, hop = chosen
    proto = (hop.proto or "").strip().lower()
    return Origin(str(address), proto if proto in SCHEMES else None)
