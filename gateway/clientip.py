"""The caller's address, believing forwarding headers only from the team's own proxies."""

from __future__ import annotations

import ipaddress


def parse_networks(text: str) -> tuple:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, real_ip: str | None, trusted: tuple) -> str | None:
    """The peer itself, unless the peer is a trusted proxy: then the first address, from the right,
    of X-Forwarded-For that is not one of ours (or X-Real-IP). A spoofed header from anyone else is ignored."""
    peer_ip = _ip(peer or "")
    if peer_ip is None or not any(peer_ip in net for net in trusted):
        return str(peer_ip) if peer_ip else None
    if forwarded_for:
        hops = [_ip(h) for h in forwarded_for.split(",")]
        for hop in reversed(hops):
            if hop is None:
                return None  # a garbled chain: trust nothing in it
            if not any(hop in net for net in trusted):
                return str(hop)
    if real_ip:
        ip = _ip(real_ip)
        return str(ip) if ip else None
    return str(peer_ip)
