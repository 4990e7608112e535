"""What ``mloop server`` and ``mloop serve`` share about the address they listen on: the hosts they answer for."""

from __future__ import annotations

import dataclasses
import os
import socket

from mloop._util.asgi import LOOPBACK_HOSTS
from mloop.config import Settings

__all__ = ["ALLOWED_HOSTS_HELP", "answer_for", "exposure_warning"]

ALLOWED_HOSTS_HELP = ("Host names clients use to reach this server, comma-separated (besides localhost and the "
                      "address it listens on); '*' accepts any (no DNS-rebinding check).")
_WILDCARDS = ("0.0.0.0", "::", "")


def answer_for(settings: Settings, host: str, allowed_hosts: str | None) -> Settings:
    """``settings`` whose allowed hosts add ``--allowed-hosts`` and the address listened on, put in the environment
    too so that worker processes (which read it there) answer for the same hosts."""
    names = list(settings.allowed_hosts)
    if allowed_hosts is not None:
        names = [n.strip() for n in allowed_hosts.split(",") if n.strip()]
    names += _names_of(host)
    unique = tuple(dict.fromkeys(names))
    os.environ["MLOOP_ALLOWED_HOSTS"] = ",".join(unique)
    return dataclasses.replace(settings, allowed_hosts=unique)


def exposure_warning(host: str, settings: Settings, what: str) -> str | None:
    """The warning to print when ``host`` is reachable from other machines (None on a loopback address)."""
    if host in LOOPBACK_HOSTS:
        return None
    hosts = "any host name" if "*" in settings.allowed_hosts else \
        ", ".join(sorted({*LOOPBACK_HOSTS, *settings.allowed_hosts}))
    return (f"[yellow]warning:[/] listening on {host}: anyone who can reach it can {what}. Requests must name "
            f"one of these hosts: {hosts} (add more with --allowed-hosts).")


def _names_of(host: str) -> list[str]:
    """The names a client may use for ``host``: the host itself, or this machine's names for a wildcard address."""
    if host not in _WILDCARDS:
        return [host]
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:  # a machine whose own name does not resolve
        pass
    return names
