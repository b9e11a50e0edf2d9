"""Transfer INVITEs that arrived before their EXPECT token (issue 6), sans-I/O.

With parallel announce the old device sends the EXPECT token and the REFER together
(docs/transfer.md): the token needs one hop, Alice's INVITE two, so the token is
normally first. When the token was lost and had to be retransmitted
(:mod:`.retransmit`), the INVITE arrives first. Instead of refusing it at once (603),
the new device *holds* it -- sends no final response, so Alice's INVITE client
transaction simply waits (RFC 3261 §17.1.1.2; its 100 Trying stops her
retransmissions, §17.2.1) -- until the matching expectation is filed or
``hold_seconds`` have passed, and only then refuses it (603) if none came.

Bounded: at most ``max_held`` INVITEs are held (any further one is refused at once),
each at most ``hold_seconds``. Holding gives an attacker nothing (docs/transfer.md):
the INVITE is only taken once an EXPECT token from the user's own device names its
correspondent and CSB ID, and it is still answered only with the user's credentials.

Keyed by (correspondent, MIKEY CSB ID) like :class:`~.expectations.ExpectationBook`;
the held item is opaque (the adapter's SIP event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from mobilityd.mobility.transfer.errors import TransferUsageError

__all__ = ["DEFAULT_HOLD_SECONDS", "EarlyInvites"]

DEFAULT_HOLD_SECONDS = 2.0
"""How long an INVITE waits for its EXPECT token: the token's retransmissions at T1
and 3*T1 (0.5 s, 1.5 s, :mod:`.retransmit`) fall inside it."""

Held = TypeVar("Held")


@dataclass
class _Waiting(Generic[Held]):
    key: tuple[str, int]
    until: float
    item: Held


@dataclass
class EarlyInvites(Generic[Held]):
    """INVITEs waiting for their expectation (module docstring)."""

    hold_seconds: float = DEFAULT_HOLD_SECONDS
    max_held: int = 8
    _waiting: list[_Waiting[Held]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.hold_seconds < 0 or self.max_held < 0:
            raise TransferUsageError("hold_seconds and max_held must be >= 0")

    def hold(self, correspondent: str, csb_id: int, item: Held, now: float) -> bool:
        """Hold ``item`` until :meth:`release` or the deadline; False when it cannot
        wait (holding disabled or the room is full): refuse it now."""
        if self.hold_seconds == 0 or len(self._waiting) >= self.max_held:
            return False
        self._waiting.append(_Waiting((correspondent, csb_id), now + self.hold_seconds, item))
        return True

    def release(self, correspondent: str, csb_id: int) -> list[Held]:
        """The expectation for (correspondent, CSB ID) was filed: its INVITEs, to be
        taken now (in arrival order)."""
        key = (correspondent, csb_id)
        released = [w.item for w in self._waiting if w.key == key]
        self._waiting = [w for w in self._waiting if w.key != key]
        return released

    def get_timer(self) -> float | None:
        return min((w.until for w in self._waiting), default=None)

    def handle_timer(self, now: float) -> list[Held]:
        """The INVITEs whose wait is over: refuse them (603, no expectation came)."""
        expired = [w.item for w in self._waiting if w.until <= now]
        self._waiting = [w for w in self._waiting if w.until > now]
        return expired

    @property
    def held(self) -> int:
        return len(self._waiting)
