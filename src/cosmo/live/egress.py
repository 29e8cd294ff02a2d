"""Where outgoing requests (webhook deliveries) may go: never to this machine, its private networks or a cloud's
metadata service, unless the operator allow-lists the host by name (COSMO_WEBHOOK_ALLOW_HOSTS).

A URL is checked when it is registered and again before every delivery, and the delivery connects to the address
that was checked, so a name that resolves elsewhere between the check and the connection (DNS rebinding) cannot
steer it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread

from cosmo.domain.errors import ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[str]]

RESOLVED_FOR = 30.0  # seconds a name's addresses are reused (each delivery still connects to a checked one)
REFUSED = "This URL points at a private, loopback, link-local or reserved address; deliveries may not go there."
PLAIN_HTTP = "Plain http is allowed only to hosts the operator allow-lists."
UNRESOLVED = "This URL's host name does not resolve."


class EgressRefused(Exception):
    """A delivery's address is not one deliveries may reach (or its name does not resolve)."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# IPv6 prefixes that carry an IPv4 address to somewhere else (NAT64, 6to4, Teredo, the old IPv4-compatible
# form): a gateway would take a delivery to the IPv4 address inside, which may be private. Never a receiver.
TRANSLATED = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::/96")
)


def public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public(address.ipv4_mapped)
        if any(address in net for net in TRANSLATED):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL as registered, and the checked address to connect to."""

    url: str
    host: str
    address: str


class EgressGuard:
    def __init__(self, allow_hosts: frozenset[str], resolve: Resolve = _resolve):
        self.allow_hosts = allow_hosts
        self._resolve = resolve
        self._resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}

    def known(self, url: str) -> Target | None:
        """`target` without blocking, when the answer needs no lookup (an address, or a name resolved lately)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        held = self._resolved.get((host, port))
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if held is None or held[0] < time.monotonic():
                return None
        return self.target(url)

    def target(self, url: str) -> Target:
        """The address `url` may be reached at (raises EgressRefused). Every address the name resolves to must be
        public: a name with one private address among public ones is refused, so the choice cannot be steered.
        Plain http only to an allow-listed host (checked again here: the list may have changed since)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" and host not in self.allow_hosts:
            raise EgressRefused(PLAIN_HTTP)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            held = self._resolved.get((host, port))
            if held is not None and held[0] >= time.monotonic():
                addresses = held[1]
            else:
                try:
                    addresses = self._resolve(host, port)
                except (OSError, UnicodeError):
                    addresses = []
                if not addresses:
                    raise EgressRefused(UNRESOLVED)
                self._resolved[(host, port)] = (time.monotonic() + RESOLVED_FOR, addresses)
        if host not in self.allow_hosts and not all(public(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
            raise EgressRefused(REFUSED)
        return Target(url, host, addresses[0])

    async def check(self, url: str) -> None:
        """For registration: a 400 on `url` when deliveries could not go there."""
        try:
            await anyio.to_thread.run_sync(self.target, url)
        except EgressRefused as exc:
            raise ValidationFailed.one("url", str(exc)) from None
