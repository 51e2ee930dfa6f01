"""The address of the browser behind a page request: the socket's peer, or, only when that peer is
one of `http.trusted_proxies`, the nearest address in X-Forwarded-For that is not a trusted proxy.

The header is read right to left: each proxy appends the address it received from, so entries
left of the first untrusted one were written by the client and prove nothing. Rate limits and
lockouts count by this address, so believing a header from anyone would let one client rotate
through addresses at will."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """`peer`: the socket's address (None when the server does not know it). `forwarded_for`:
    every X-Forwarded-For line of the request, joined with commas in their order (a proxy may
    add a line of its own rather than extend the client's: the last line is then its own)."""
    if peer is None or not forwarded_for or not _trusted(peer, trusted):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _trusted(_address(hop) or hop, trusted):
            # A hop our proxy wrote but no address can be read from (a name, garbage) names
            # nobody: the proxy's own address stands in, so the per-address limits still count.
            return _address(hop) or peer
    return peer  # every hop is a proxy of ours: the request started inside


def _address(hop: str) -> str | None:
    """An address as a proxy wrote it, with a port or not (`203.0.113.5:4711`, `[2001:db8::1]:443`:
    Azure Application Gateway and IIS ARR write them so); None for anything else."""
    if hop.startswith("[") and "]" in hop:
        hop = hop[1:hop.index("]")]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None
