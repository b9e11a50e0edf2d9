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

    def __init__(self, transaction: Transaction, request: Request,
                 new_target: SipUri | None) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.transaction = transaction
        self.request = request
        self.new_target = new_target


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

    def __init__(  # noqa: PLR0917 - the fields, positional as @dataclass makes them
            self, data: bytes, cseq: int, destination: Addr, transport: TransportKind,
            interval: float, initial: bool,
            transaction: Transaction | None = None) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.data = data
        self.cseq = cseq
        self.destination = destination
        self.transport = transport
        self.interval = interval
        self.initial = initial
        self.transaction = transaction


@dataclass(slots=True, eq=False)
class Session:
    """One call: the dialog plus the transactions and decisions in flight.

    Made with what is known when the call starts; the rest (``init=False``) is the
    state the call goes through, starting empty."""

    call_id: str
    role: CallRole
    local_tag: str
    invite: Request  # the dialog-creating INVITE (ours or the peer's)
    invite_transaction: Transaction
    destination: Addr  # where in-dialog requests go (next hop of the route set)
    transport: TransportKind
    phase: CallPhase
    peer_contact: SipUri | str | None = None  # UAS: the INVITE's Contact
    local_body: bytes = b""
    local_content_type: str = "application/sdp"
    dialog: Dialog | None = field(default=None, init=False)
    cancel_requested: bool = field(default=False, init=False)
    cancel_sent: bool = field(default=False, init=False)
    replaces_call_id: str | None = field(default=None, init=False)
    # (CSeq, To tag) of a 2xx -> our ACK for it, re-sent on its retransmissions
    acks: dict[tuple[int, str], tuple[bytes, Addr]] = field(default_factory=dict,
                                                             init=False)
    unacked: Unacked2xx | None = field(default=None, init=False)
    outgoing_reinvite: Transaction | None = field(default=None, init=False)
    # body, content type to re-send
    glare_retry: tuple[bytes, str] | None = field(default=None, init=False)
    incoming_reinvite: PendingReinvite | None = field(default=None, init=False)
    incoming_refer: Transaction | None = field(default=None, init=False)
    refer_event_id: str | None = field(default=None, init=False)
    session_interval: int | None = field(default=None, init=False)
    we_refresh: bool = field(default=False, init=False)
    bye_sent: bool = field(default=False, init=False)
    # re-sent via the proxy (UaConfig)
    rerouted_reinvite: Transaction | None = field(default=None, init=False)
    # RFC 7616 §3.3 stale-nonce retries so far (bounded)
    stale_retries: int = field(default=0, init=False)

    def __init__(  # noqa: PLR0917 - the fields, positional as @dataclass makes them
            self, call_id: str, role: CallRole, local_tag: str, invite: Request,
            invite_transaction: Transaction, destination: Addr, transport: TransportKind,
            phase: CallPhase, peer_contact: SipUri | str | None = None,
            local_body: bytes = b"", local_content_type: str = "application/sdp") -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        self.call_id = call_id
        self.role = role
        self.local_tag = local_tag
        self.invite = invite
        self.invite_transaction = invite_transaction
        self.destination = destination
        self.transport = transport
        self.phase = phase
        self.peer_contact = peer_contact
        self.local_body = local_body
        self.local_content_type = local_content_type
        self.dialog = None
        self.cancel_requested = False
        self.cancel_sent = False
        self.replaces_call_id = None
        self.acks = {}
        self.unacked = None
        self.outgoing_reinvite = None
        self.glare_retry = None
        self.incoming_reinvite = None
        self.incoming_refer = None
        self.refer_event_id = None
        self.session_interval = None
        self.we_refresh = False
        self.bye_sent = False
        self.rerouted_reinvite = None
        self.stale_retries = 0

    @property
    def owns_call_id(self) -> bool:
        """§14.1: the UA that generated the Call-ID backs off 2.1-4 s after a 491."""
        return self.role is CallRole.UAC

    @property
    def reinvite_in_progress(self) -> bool:
        return (self.outgoing_reinvite is not None
                or self.incoming_reinvite is not None
                or self.unacked is not None)
