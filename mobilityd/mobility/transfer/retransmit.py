"""Retransmission of a hand-off token until its answer arrives (issue 6), sans-I/O.

The hand-off channel is UDP, so a token can be lost. We make it reliable the way SIP
makes an INVITE reliable over UDP (RFC 3261 §17.1.1.2, Timer A, and §17.1.2.2, Timer
E): the *identical* sealed token (same nonce, same bytes) is sent again after T1, then
after 2*T1, 4*T1 ... (each interval capped at T2), until the answer arrives
(:meth:`TokenRetransmission.answered`) or ``give_up_after`` seconds have passed since
the first send (RFC 3261 Timer B/F: 64*T1). The receiver recognises an identical copy
and answers it from its cache (:class:`~.expectations.ExpectationBook`), so a copy
never files a second expectation nor starts a second move.

The engine never sends: :meth:`handle_timer` returns the datagrams due, the adapter
puts them on the wire and re-arms one timer at :meth:`get_timer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.mobility.transfer.errors import TransferUsageError

__all__ = ["DEFAULT_T1", "DEFAULT_T2", "TokenRetransmission"]

DEFAULT_T1 = 0.5
"""RFC 3261 Table 4: T1, the round-trip estimate (seconds)."""
DEFAULT_T2 = 4.0
"""RFC 3261 Table 4: T2, the longest retransmission interval (seconds)."""


@dataclass
class TokenRetransmission:
    """Resend ``token`` at ``sent_at + T1, + 3*T1, + 7*T1 ...`` (intervals doubling,
    capped at ``t2``) until :meth:`answered` or ``give_up_after`` seconds elapsed."""

    token: bytes = field(repr=False)
    sent_at: float
    give_up_after: float
    t1: float = DEFAULT_T1
    t2: float = DEFAULT_T2
    #: how many copies were sent after the first
    retransmissions: int = 0
    _interval: float = field(init=False, repr=False)
    _next: float | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.give_up_after >= 0):
            raise TransferUsageError("retransmission needs 0 < T1 <= T2 and a bound >= 0")
        self._interval = self.t1
        self._next = self.sent_at + self.t1
        self._check_bound()

    def get_timer(self) -> float | None:
        """When the next copy is due (None: answered or given up)."""
        return self._next

    def handle_timer(self, now: float) -> list[bytes]:
        """The copies due at ``now`` (at most one: a late timer does not burst)."""
        if self._next is None or now < self._next:
            return []
        self.retransmissions += 1
        self._interval = min(self._interval * 2, self.t2)
        self._next = now + self._interval  # re-armed from when it fired (Timer E)
        self._check_bound()
        return [self.token]

    def answered(self) -> None:
        """The answer arrived: no more copies."""
        self._next = None

    @property
    def done(self) -> bool:
        return self._next is None

    def _check_bound(self) -> None:
        if self._next is not None and self._next > self.sent_at + self.give_up_after:
            self._next = None
