"""Per-call state of the UA core: one INVITE session and its dialog (RFC 3261 §13-§15).

Plain state, no behaviour beyond small predicates: ``UserAgent`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mobilityd.sip.dialog import Dialog
from mobilityd.sip.message import Request
from mobilityd.sip.transaction.machine import Transaction
from mobilityd.sip.transaction.outbound import Addr, TransportKind
from mobilityd.sip.uri import SipUri


class CallRole(Enum):
    UAC = "uac"  # we sent the initial INVITE (and own the Call-ID, §14.1)
    UAS = "uas"


class CallPhase(Enum):
    CALLING = "calling"  # UAC: INVITE sent, no final response yet
    INCOMING = "incoming"  # UAS: INVITE received, no final response yet
    CONNECTING = "connecting"  # UAS: 2xx sent, waiting for the ACK (§13.3.1.4)
    ESTABLISHED = "established"
    ENDED = "ended"


class UaTimer(Enum):
    """Timers the UA core (not the transaction layer) runs."""

    __hash__ = object.__hash__  # members are singletons: identity hash, in C

    RETRANSMIT_2XX = "2xx retransmission (§13.3.1.4)"
    ACK_TIMEOUT = "no ACK for 64*T1 (§13.3.1.4)"
    GLARE_RETRY = "re-INVITE retry after 491 (§14.1)"
    SESSION_REFRESH = "session refresh (RFC 4028 §10)"
    SESSION_EXPIRY = "session expired (RFC 4028 §10)"
    FORGET = "drop an ended call once late retransmissions are over (64*T1)"


# Members the UAS reads on every call, as module constants: CPython 3.11 reads an Enum
# member through its class via EnumType.__getattr__'s slot hook (~100 ns; a module
# global ~15 ns, see transaction/machine.py).
UAS, UAC = CallRole.UAS, CallRole.UAC
INCOMING, CONNECTING = CallPhase.INCOMING, CallPhase.CONNECTING
ESTABLISHED, ENDED = CallPhase.ESTABLISHED, CallPhase.ENDED
RETRANSMIT_2XX, ACK_TIMEOUT = UaTimer.RETRANSMIT_2XX, UaTimer.ACK_TIMEOUT


@dataclass(slots=True)
class PendingReinvite:
    """An incoming re-INVITE waiting for the application's decision (§14.2)."""

    transaction: Transaction
    request: Request
    new_target: SipUri | None


@dataclass(slots=True)
class Unacked2xx:
    """A 2xx we retransmit until its ACK arrives (§13.3.1.4)."""

    data: bytes
    cseq: int
    destination: Addr
    transport: TransportKind
    interval: float
    initial: bool  # the 2xx of the dialog-creating INVITE (else a re-INVITE's)
    transaction: Transaction | None = None  # the INVITE server transaction answered


@dataclass(slots=True, eq=False)
class Session:
    """One call: the dialog plus the transactions and decisions in flight."""

    call_id: str
    role: CallRole
    local_tag: str
    invite: Request  # the dialog-creating INVITE (ours or the peer's)
    invite_transaction: Transaction
    destination: Addr  # where in-dialog requests go (next hop of the route set)
    transport: TransportKind
    phase: CallPhase
    dialog: Dialog | None = None
    peer_contact: SipUri | str | None = None  # UAS: the INVITE's Contact
    local_body: bytes = b""
    local_content_type: str = "application/sdp"
    cancel_requested: bool = False
    cancel_sent: bool = False
    replaces_call_id: str | None = None
    # (CSeq, To tag) of a 2xx -> our ACK for it, re-sent on its retransmissions
    acks: dict[tuple[int, str], tuple[bytes, Addr]] = field(default_factory=dict)
    unacked: Unacked2xx | None = None
    outgoing_reinvite: Transaction | None = None
    glare_retry: tuple[bytes, str] | None = None  # body, content type to re-send
    incoming_reinvite: PendingReinvite | None = None
    incoming_refer: Transaction | None = None
    refer_event_id: str | None = None
    session_interval: int | None = None
    we_refresh: bool = False
    bye_sent: bool = False
    rerouted_reinvite: Transaction | None = None  # re-sent via the proxy (UaConfig)
    stale_retries: int = 0  # RFC 7616 §3.3 stale-nonce retries so far (bounded)

    @property
    def owns_call_id(self) -> bool:
        """§14.1: the UA that generated the Call-ID backs off 2.1-4 s after a 491."""
        return self.role is CallRole.UAC

    @property
    def reinvite_in_progress(self) -> bool:
        return (self.outgoing_reinvite is not None
                or self.incoming_reinvite is not None
                or self.unacked is not None)
