"""Configuration and the local (API misuse) error of the user-agent core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mobilityd.sip.timers import TimerConfig
from mobilityd.sip.transaction.outbound import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri

Rng = Callable[[int], bytes]


class UsageError(Exception):
    """Local error: the caller misused the API (unknown call, wrong state)."""


@dataclass(frozen=True, slots=True)
class UaConfig:
    """Identity and addresses of this UA.

    ``local_uri`` is our address-of-record (From of new requests); ``host``/``port``
    the sent-by of our Via and the host of our Contact; ``outbound_proxy`` a
    pre-loaded loose route (§8.1.2) for out-of-dialog requests.  ``max_calls`` and
    ``max_server_transactions`` bound the state a peer (or a flood) can make us hold:
    beyond them new requests are answered 503 with Retry-After (RFC 3261 §21.5.4).
    """

    local_uri: NameAddr
    host: str
    port: int
    transport: TransportKind = TransportKind.UDP
    contact_user: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    outbound_proxy: SipUri | None = None
    session_expires: int | None = None  # RFC 4028: request this interval (s)
    user_agent: str | None = "mobilityd"
    max_calls: int = 50_000
    max_server_transactions: int = 500_000
    retry_after: int = 5  # seconds, in the 503 of an overload
