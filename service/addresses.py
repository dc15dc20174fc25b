"""Who is on the other end: the client address that limits and bans count.

The address is the TCP peer, or, when the peer is one of ``FORUM_TRUSTED_PROXIES``, the
last address in ``X-Forwarded-For`` that is not itself a trusted proxy. Everything left of
that is written by the client and worth nothing. uvicorn's own proxy-header handling is
off (service/cli.py): this module is the one place that reads the header, so in-process
and served apps agree, and a malformed entry can never become "the address".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from litestar.types import Scope

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``FORUM_TRUSTED_PROXIES``: comma-separated addresses or CIDRs; a bad entry is a
    configuration error (refused at start-up), not something to guess about."""
    networks = []
    for entry in setting.split(","):
        entry = entry.strip()
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as error:
                raise ValueError(f"FORUM_TRUSTED_PROXIES: {entry!r} is not an address or "
                                 "CIDR") from error
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``,
    ``::1``), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        text, closed, port = text[1:].partition("]")
        if not closed or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has at least two colons
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    text = text.partition("%")[0]  # a zone index names an interface of the sender
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   trusted: Sequence[Network]) -> str:
    """The client address of a request (see the module's docstring).

    ``forwarded_for`` is every ``X-Forwarded-For`` header in order. Malformed entries are
    skipped; when every entry is a trusted proxy the leftmost one is the client; when there
    is no usable entry the peer is. A peer that is no IP address (a Unix socket, a test
    transport) is returned as it is: it can be counted but never banned.
    """
    peer_address = parse_address(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not trusted or not _trusted(peer_address, trusted):
        return str(peer_address)
    entries = [entry for header in forwarded_for for entry in header.split(",")]
    leftmost: IPAddress | None = None
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            continue
        if not _trusted(address, trusted):
            return str(address)
        leftmost = address
    return str(leftmost or peer_address)


@lru_cache(maxsize=4096)
def _peer(peer: str | None) -> str:
    """The client address of a request no trusted proxy forwarded: the peer, normalised
    (kept: the same few peers come again and again, and parsing is most of the cost)."""
    return client_address(peer, (), ())


def resolved_client(peer: str | None, forwarded_for: Sequence[bytes], proto: bytes | None,
                    trusted: Sequence[Network]) -> tuple[str, str | None]:
    """The client address of a request (see ``client_address``: ``forwarded_for`` is every
    ``X-Forwarded-For`` header as sent) and the scheme a trusted proxy says the client used
    (``X-Forwarded-Proto``: ``http`` or ``https``; None when there is none to believe).
    The edge (service/edge.py) puts both in the scope before anything reads them."""
    if not trusted:
        return _peer(peer), None
    address = client_address(peer, [v.decode("latin-1") for v in forwarded_for], trusted)
    peer_address = parse_address(peer) if peer else None
    scheme = None
    if peer_address is not None and _trusted(peer_address, trusted) and proto in (
            b"http", b"https"):
        scheme = proto.decode()  # type: ignore[union-attr]
    return address, scheme


def address_of(scope: Scope | Any) -> str:
    """The resolved client address of a request (after the edge, service/edge.py)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
