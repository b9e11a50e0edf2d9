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

    ``auth_username``/``auth_password``: digest credentials (RFC 7616) with which a
    401/407 to our INVITE or re-INVITE is answered once (RFC 3261 §22.2, §22.3);
    without them the challenge ends the attempt (``CallFailed``/``ReinviteFailed``).

    ``reroute_via_proxy``: when an in-dialog re-INVITE times out, its transport
    fails, or a proxy on the route set answers 408 (the peer moved too and its old
    contact is dead), send it once more through
    ``outbound_proxy`` with the peer's GRUU or address-of-record as Request-URI, so
    the proxy finds the peer's new contact; only if that fails too does the dialog end
    (RFC 3261 §12.2.1.2).  Off by default: plain §12.2.1.2 behaviour.
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
    auth_username: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    reroute_via_proxy: bool = False
