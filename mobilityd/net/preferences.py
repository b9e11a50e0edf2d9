"""Source-address preferences applied on top of the kernel's route choice (sans-I/O).

The kernel's answer (RTM_GETROUTE: policy routing, metrics, VPNs) is the default. The
configuration may then *prefer* interfaces (ordered ``fnmatch`` patterns: the first
pattern that matches a usable candidate wins, e.g. :data:`PREFER_WIRED`) and *avoid*
interfaces (soft: an avoided interface is used only when nothing else reaches the peer,
because keeping the call beats honouring the preference).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

PREFER_WIRED: tuple[str, ...] = ("eth*", "en*")
"""Patterns naming wired Ethernet devices under both naming schemes."""


@dataclass(frozen=True)
class RouteChoice:
    """One way to reach a destination: source address, outgoing link, next hop."""

    destination: str
    source: str
    ifindex: int
    ifname: str
    gateway: str | None


@dataclass(frozen=True)
class SourcePreferences:
    """``prefer``: ordered ifname patterns; ``avoid``: patterns used only as last resort."""

    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()

    @property
    def is_neutral(self) -> bool:
        return not self.prefer and not self.avoid

    def avoids(self, ifname: str) -> bool:
        return any(fnmatch.fnmatchcase(ifname, pattern) for pattern in self.avoid)


def apply_preferences(kernel: RouteChoice | None, candidates: Sequence[RouteChoice],
                      prefs: SourcePreferences) -> RouteChoice | None:
    """Pick the route to use: preferred interface, else the kernel's, else any.

    ``candidates`` are the per-interface answers (one per link that reaches the
    destination); ``kernel`` is the unconstrained answer.
    """
    allowed = [c for c in candidates if not prefs.avoids(c.ifname)]
    for pattern in prefs.prefer:
        for candidate in allowed:
            if fnmatch.fnmatchcase(candidate.ifname, pattern):
                return candidate
    if kernel is not None and not prefs.avoids(kernel.ifname):
        return kernel
    if allowed:
        return allowed[0]
    return kernel if kernel is not None else (candidates[0] if candidates else None)
