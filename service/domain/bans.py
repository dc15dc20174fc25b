"""Address bans, decided: what a moderator may ask for (pure; the table is service/bans.py)."""

from __future__ import annotations

import ipaddress
from datetime import datetime

from service.domain.errors import InvalidInputError

REASON_MAX = 500
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ban(cidr: str, until: datetime | None, reason: str, now: datetime
        ) -> tuple[Network, datetime | None, str]:
    """The network to ban (host bits cleared: ``10.1.2.3/8`` bans ``10.0.0.0/8``), its end
    and its reason; refuses what would ban nothing or nobody could read."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as error:
        raise InvalidInputError(
            "cidr must be an address or a network such as 203.0.113.0/24 or 2001:db8::/32"
        ) from error
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and (
            mapped := network.network_address.ipv4_mapped) is not None:
        # Clients are counted by their IPv4 address; a mapped form bans the same one.
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    reason = reason.strip()
    if not reason or not reason.isprintable():
        raise InvalidInputError("reason must say, in printable text, why the ban is made")
    if len(reason) > REASON_MAX:
        raise InvalidInputError(f"reason must be at most {REASON_MAX} characters")
    if until is not None:
        if until.tzinfo is None:
            raise InvalidInputError("until must be an RFC 3339 time with its offset, "
                                    "e.g. 2030-01-01T00:00:00Z")
        if until <= now:
            raise InvalidInputError("until must be in the future")
    return network, until, reason
