"""Replay cache for MIKEY messages (RFC 3830 §5.3, §5.4), sans-I/O.

§5.4 uses timestamps instead of challenges: a responder remembers the *successfully
authenticated* messages whose timestamp lies within the allowed clock skew and discards
any message it has seen, or whose timestamp is outside the window.

How entries are keyed (the RFC leaves it open; its example stores a 20-byte hash of the
message): by ``(peer identity, CSB ID, timestamp value)``. §5.2 requires every message
from an Initiator to carry a unique timestamp, so the same peer reusing a timestamp for
the same CSB is a replay even when the bytes differ (e.g. a replayed update with a
re-encoded payload order). Keying by peer identity keeps two peers that pick the same
timestamp apart; keying by CSB ID keeps separate calls of one peer apart.

Bounded size (§5.4 suggests shrinking the skew as the cache fills): when the cache is
full the entry with the oldest timestamp is evicted and its timestamp becomes a
*low-water mark*; from then on a timestamp at or below the mark is refused as stale
(``INVALID_TS``), so an evicted message can never be replayed. Entries older than
``now - window`` are purged because the freshness check already refuses them.

The RFC has no ERR code for "replayed": :class:`ReplayedMessage` carries ``INVALID_TS``
and §5.3 says the message is discarded, not answered.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.errors import MikeyError

__all__ = ["ReplayCache", "ReplayKey", "ReplayedMessage"]

ReplayKey = tuple[bytes, int, int]
"""``(peer identity, CSB ID, timestamp value)``."""


class ReplayedMessage(MikeyError):
    """The message was already accepted (RFC 3830 §5.4); discard it, do not answer."""

    def __init__(
        self, message: str = "replayed MIKEY message", error_type: ErrorType = ErrorType.INVALID_TS
    ) -> None:
        super().__init__(message, error_type)


@dataclass(slots=True)
class ReplayCache:
    """Remembers authenticated messages for ``window`` seconds, at most ``max_entries``."""

    window: float = 600.0
    max_entries: int = 4096
    _entries: dict[ReplayKey, float] = field(default_factory=dict, repr=False)
    _by_time: list[tuple[float, ReplayKey]] = field(default_factory=list, repr=False)
    low_water: float = float("-inf")
    evictions: int = 0

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, key: ReplayKey, when: float, now: float) -> None:
        """Raise if ``key`` was seen or ``when`` is at/below the low-water mark.

        ``when`` is the message timestamp as Unix time (already checked for skew).
        """
        self._purge(now)
        if key in self._entries:
            raise ReplayedMessage()
        if when <= self.low_water:
            raise MikeyError(
                "timestamp older than the replay cache remembers", ErrorType.INVALID_TS
            )

    def remember(self, key: ReplayKey, when: float, now: float) -> None:
        """Record an authenticated message (§5.3: only those enter the cache)."""
        self.check(key, when, now)
        while len(self._entries) >= self.max_entries:
            old_when, old_key = heapq.heappop(self._by_time)
            if self._entries.pop(old_key, None) is not None:
                self.low_water = max(self.low_water, old_when)
                self.evictions += 1
        self._entries[key] = when
        heapq.heappush(self._by_time, (when, key))

    def _purge(self, now: float) -> None:
        horizon = now - self.window
        while self._by_time and self._by_time[0][0] < horizon:
            _, key = heapq.heappop(self._by_time)
            self._entries.pop(key, None)
