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
    pre-loaded loose route (§8.1.2) for out-of-dialog requests.
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
