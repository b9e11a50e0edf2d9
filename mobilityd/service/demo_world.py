"""The demo's small world: network namespaces joined by a router (iproute2).

::

    alice (10.1.0.2) ─┐
    laptop wlan0 (10.2.0.2, "Wi-Fi A") ─┤
    laptop wlan1 (10.3.0.2, "Wi-Fi B") ─┼─ router (10.x.0.1, forwarding)
    pda (10.4.0.2) ───┤
    proxy (10.5.0.2, with --kamailio) ───┘

The addresses are those of ``agents/*/mobilityd.toml``. The laptop starts on Wi-Fi A
only; :meth:`DemoWorld.roam_laptop` brings Wi-Fi B up (address and default route)
and then takes Wi-Fi A's address away (``back=True``: the reverse), as a real hand-over
between access points does (the kernel reports both changes over rtnetlink, RFC 3549,
which is all mobilityd watches). Namespace names carry the process id and a serial
number so that parallel runs never collide; :meth:`DemoWorld.close` removes them all
(deleting a namespace deletes its veths).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "ALICE_IP",
    "LAPTOP_WIFI_A",
    "LAPTOP_WIFI_B",
    "PDA_IP",
    "PROXY_IP",
    "DemoWorld",
    "WorldError",
]

ALICE_IP, LAPTOP_WIFI_A, LAPTOP_WIFI_B, PDA_IP = "10.1.0.2", "10.2.0.2", "10.3.0.2", "10.4.0.2"
PROXY_IP = "10.5.0.2"


_SERIAL = itertools.count()


class WorldError(Exception):
    """The test network could not be built (missing tool, no privilege...)."""


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WorldError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")


@dataclass
class DemoWorld:
    """Builds and removes the namespaces (module docstring)."""

    tag: str = field(default_factory=lambda: f"md{os.getpid() % 100000}x{next(_SERIAL)}")
    created: list[str] = field(default_factory=list)
    with_proxy: bool = False
    """Add the ``proxy`` host (:data:`PROXY_IP`) for ``mobilityd demo --kamailio``."""

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def build(self) -> None:
        if shutil.which("ip") is None:
            raise WorldError("the `ip` command (Debian package iproute2) is missing")
        if os.geteuid() != 0:
            raise WorldError("building network namespaces needs root (or the root of a "
                             "user namespace: `mobilityd demo` starts one itself)")
        router = self.ns("router")
        roles = ("router", "alice", "laptop", "pda", *(("proxy",) if self.with_proxy else ()))
        for role in roles:
            _ip("netns", "add", self.ns(role))
            self.created.append(self.ns(role))
            _ip("link", "set", "lo", "up", netns=self.ns(role))
        forwarding = subprocess.run(["ip", "netns", "exec", router, "sysctl", "-qw",
                                     "net.ipv4.ip_forward=1"],
                                    capture_output=True, text=True, check=False)
        if forwarding.returncode != 0:
            raise WorldError("cannot enable forwarding in the router namespace (sysctl, "
                             f"Debian package procps): {forwarding.stderr.strip()}")
        self._link("alice", "eth0", 1)
        self._link("laptop", "wlan0", 2)
        self._link("laptop", "wlan1", 3, address=False)
        self._link("pda", "wlan0", 4)
        if self.with_proxy:
            self._link("proxy", "eth0", 5)
        _ip("route", "add", "default", "via", "10.2.0.1", netns=self.ns("laptop"))

    def _link(self, role: str, ifname: str, subnet: int, *, address: bool = True) -> None:
        """A veth pair: ``ifname`` in the host, ``r<subnet>`` in the router."""
        host, router = self.ns(role), self.ns("router")
        peer = f"r{subnet}"
        _ip("link", "add", ifname, "netns", host, "type", "veth", "peer", "name", peer,
            "netns", router)
        _ip("addr", "add", f"10.{subnet}.0.1/24", "dev", peer, netns=router)
        _ip("link", "set", peer, "up", netns=router)
        _ip("link", "set", ifname, "up", netns=host)
        if address:
            _ip("addr", "add", f"10.{subnet}.0.2/24", "dev", ifname, netns=host)
            if role != "laptop":
                _ip("route", "add", "default", "via", f"10.{subnet}.0.1", netns=host)

    def roam_laptop(self, *, back: bool = False) -> None:
        """Wi-Fi A -> Wi-Fi B (``back``: B -> A): the new network's address and route
        first, then the old network's address goes (a forced move)."""
        laptop = self.ns("laptop")
        new, old = (("wlan0", LAPTOP_WIFI_A, 2), ("wlan1", LAPTOP_WIFI_B, 3))
        if not back:
            new, old = old, new
        _ip("addr", "add", f"{new[1]}/24", "dev", new[0], netns=laptop)
        _ip("route", "replace", "default", "via", f"10.{new[2]}.0.1", netns=laptop)
        _ip("addr", "del", f"{old[1]}/24", "dev", old[0], netns=laptop)

    def command_in(self, role: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role), *argv]

    def close(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.created.clear()
