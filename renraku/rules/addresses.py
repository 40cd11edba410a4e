"""Address allow-lists in the settings: ``"127.0.0.1, ::1, 192.0.2.0/24"``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(text: str) -> tuple[Network, ...]:
    """The comma-separated addresses or CIDR blocks; ValueError names a bad one."""
    out = []
    for part in text.split(","):
        if part.strip():
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"not an address or network: {part.strip()!r}") from exc
    return tuple(out)


def allowed(address: str, nets: Iterable[Network]) -> bool:
    """Whether ``address`` (a peer's IP, IPv4-mapped IPv6 too) is inside one of ``nets``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in nets)
