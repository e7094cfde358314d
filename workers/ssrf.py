"""Webhook targets that cannot be turned against us (server-side request forgery).

A URL passes only if it is http(s) and every address its host resolves to is globally routable, unless the host
or the address is allowed by WEBHOOK_ALLOWED_HOSTS. The caller then connects to the address checked here, never
resolving the name again, so DNS rebinding between the check and the connection gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(Exception):
    """The URL may not be called; the message says why without echoing resolved addresses."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str
    """The checked address to connect to."""


def check_target(url: str, allowed: AllowList) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise TargetRefused("webhook URLs must be http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("webhook URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise TargetRefused("webhook URL has an invalid port") from exc
    addresses = _resolve(host, port)
    host_allowed = host.lower() in allowed.hosts
    for address in addresses:
        if not (host_allowed or allowed.allows(address) or _is_public(address)):
            raise TargetRefused(
                f"webhook host {host!r} resolves to a private, loopback or link-local address; "
                "allow it with WEBHOOK_ALLOWED_HOSTS if this is intended"
            )
    return Target(scheme=scheme, host=host, port=port, address=str(addresses[0]))


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"webhook host {host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = _unmapped(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"webhook host {host!r} does not resolve")
    return addresses


def _unmapped(address: IPAddress) -> IPAddress:
    """IPv4-mapped (::ffff:a.b.c.d) and NAT64 forms are judged as the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    # is_global is False for private, loopback, link-local (169.254.169.254 included), CGNAT 100.64/10, ULA,
    # reserved and unspecified ranges; multicast is refused on its own.
    return address.is_global and not address.is_multicast
