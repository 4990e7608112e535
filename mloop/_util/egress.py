"""Outbound HTTP to URLs that users give (webhooks): never to this machine, a private network or a cloud metadata
address unless an allow list says so (server-side request forgery).

A URL is checked by resolving its host and checking every address it resolves to; the caller then connects to the
checked address (``pinned``), so a name that resolves to a public address at the check and to 127.0.0.1 a moment
later (DNS rebinding) cannot slip through.

>>> forbidden_reason(ipaddress.ip_address("169.254.169.254"))
'a link-local address (cloud metadata services live there)'
>>> forbidden_reason(ipaddress.ip_address("93.184.215.14")) is None
True
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from mloop.errors import InvalidInputError

__all__ = ["Destination", "EgressRefused", "check_destination", "forbidden_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(InvalidInputError):
    """A URL whose host is, or resolves to, an address outbound requests may not reach."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL and the address to connect to (the one that was checked)."""

    url: str
    host: str
    address: str

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL with the checked address in place of the host, the ``Host`` header and the httpx extensions
        (TLS still checks the certificate against the host name)."""
        import httpx

        original = httpx.URL(self.url)
        pinned = original.copy_with(host=self.address)
        host_header = original.netloc.decode("ascii")
        return str(pinned), {"Host": host_header}, {"sni_hostname": self.host}


def forbidden_reason(address: IPAddress) -> str | None:
    """Why outbound requests may not reach ``address``, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address a router may deliver to: judge the IPv4 address inside
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            address = embedded
    checks = (
        (address.is_loopback, "a loopback address (this machine)"),
        (address.is_link_local, "a link-local address (cloud metadata services live there)"),
        (address.is_unspecified, "the unspecified address (this machine)"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private-network address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "an address that is not public"),
    )
    return next((reason for hit, reason in checks if hit), None)


def check_destination(url: str, allow: Iterable[str] = (), *, field: str = "url") -> Destination:
    """Resolve ``url``'s host and check every address; raise ``EgressRefused`` unless all are public or allowed.

    ``allow`` holds host names, addresses or networks (``10.0.0.0/8``) that may be reached although private,
    or ``"*"`` for anything.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise EgressRefused(field=field, value=url, expected="an http:// or https:// URL with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(url, host, port, field)
    allowed = set(allow)
    if "*" in allowed or host in {a.lower() for a in allowed}:
        return Destination(url, host, str(addresses[0]))
    networks = _networks(allowed)
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None and not any(address in n for n in networks if n.version == address.version):
            raise EgressRefused(
                f"{field}: {url} reaches {address}, {reason}; webhooks go to public addresses only. Allow this host "
                "with the setting webhook_allow_hosts (MLOOP_WEBHOOK_ALLOW_HOSTS) if it is meant.", field=field,
                value=url, expected="a URL whose host resolves to public addresses only")
    return Destination(url, host, str(addresses[0]))


def _resolve(url: str, host: str, port: int, field: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EgressRefused(f"{field}: the host of {url} does not resolve ({exc}).", field=field, value=url,
                            expected="a URL whose host name resolves") from None
    # getaddrinfo returns IPv6 scope ids as "fe80::1%eth0": the scope is not part of the address
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))


def _networks(allowed: set[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:  # a host name
            continue
    return networks
