"""The RFC 3261 §17 transaction layer: matching, timers and the upcall queue.

Driven like every engine here: ``send_request`` / ``receive_request`` /
``receive_response`` / ``send_response`` / ``handle_timer(now)``; the caller then takes
``outgoing`` (bytes to transmit) and ``upcalls`` (what the TU must see).  Matching is
one dict lookup per message: responses by (branch, CSeq method) (§17.1.3), requests by
(branch, sent-by, method) with ACK folded onto INVITE (§17.2.3), or the RFC 2543
fallback key when the branch lacks the magic cookie.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from mobilityd.sip.message import Request, Response, make_response
from mobilityd.sip.timers import TimerConfig, TimerHeap, TimerName
from mobilityd.sip.transaction import build
from mobilityd.sip.transaction.facts import RequestFacts, TopVia, parse_cseq
from mobilityd.sip.transaction.machine import TIMERS_OF, Transaction
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.transaction.states import TIMER_INPUTS, TxInput, TxKind, TxState

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


class UpcallKind(Enum):
    """What the transaction layer tells the TU (RFC 3261 §17 "inform TU")."""

    RESPONSE = "response for a client transaction"
    ACK = "ACK for a 2xx (RFC 6026 Accepted, or no transaction)"
    STRAY_2XX = "2xx to an INVITE whose transaction is gone (§13.2.2.4: ACK it)"
    TIMEOUT = "timer B, F or H fired"
    TRANSPORT_ERROR = "transport failure (§17.1.4, §17.2.4)"


#: Whatever the TU stored in ``Transaction.owner`` (a named alias: mypyc looks the
#: field types of a NamedTuple up in the module, where ``object`` is not defined).
TuOwner: TypeAlias = object


@dataclass(frozen=True, slots=True)
class Upcall:
    """What the transaction layer hands up to its transaction user (RFC 3261 §17)."""

    kind: UpcallKind
    transaction: Transaction | None
    message: Request | Response | None
    source: Addr | None = None
    facts: RequestFacts | None = None  # for ACKs
    owner: TuOwner = None  # the transaction's TU owner when the upcall was made
    raw_hash: int | None = None  # ACK: hash of its datagram (see ``absorb_ack_copies``)

    def __init__(  # noqa: PLR0917 - the fields, positional as @dataclass makes them
            self, kind: UpcallKind, transaction: Transaction | None,
            message: Request | Response | None, source: Addr | None = None,
            facts: RequestFacts | None = None, owner: TuOwner = None,
            raw_hash: int | None = None) -> None:
        # Written out: see "Constructors written out" in mobilityd/sip/__init__.py.
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "transaction", transaction)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "raw_hash", raw_hash)


TxKey = tuple[object, ...]
# Enum members used per message, bound once (class access costs ~100 ns in CPython
# 3.11, a module global ~15 ns: see machine.py).
_ACK_UPCALL = UpcallKind.ACK
_RECV_REQUEST, _RECV_ACK = TxInput.RECV_REQUEST, TxInput.RECV_ACK
_INVITE_SERVER, _NON_INVITE_SERVER = TxKind.INVITE_SERVER, TxKind.NON_INVITE_SERVER
_INVITE_CLIENT, _NON_INVITE_CLIENT = TxKind.INVITE_CLIENT, TxKind.NON_INVITE_CLIENT
_TERMINATED = TxState.TERMINATED
_UDP = TransportKind.UDP


def server_key(request: Request, facts: RequestFacts, method: str) -> TxKey:
    """§17.2.3 matching key; ``method`` is INVITE for an ACK."""
    via = facts.via
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return (branch, via.host, via.port, method)
    # RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top Via.  The To
    # tag is left out so that the ACK (which carries our tag) finds its INVITE.
    return ("2543", str(request.uri), facts.from_tag, facts.call_id,
            facts.cseq.seq, method, via.host, via.port, branch)


def response_destination(facts: RequestFacts, source: Addr, transport: TransportKind
                         ) -> Addr:
    """Where a server transaction's responses go (RFC 3261 §18.2.2, RFC 3581 §4).

    Reliable transports answer on the connection (its source).  Over UDP the answer
    goes to the source IP (the ``received`` rule) and to the source port when the
    client asked for ``rport``, else to the Via sent-by port (default 5060).
    """
    if transport is not _UDP:
        return source
    via = facts.via
    if via.has_rport:
        return source
    return (source[0], via.port or 5060)


class TransactionLayer:
    """All transactions of one user agent, their timers and their output queues."""

    def __init__(self, config: TimerConfig | None = None) -> None:
        self.config = config or TimerConfig()
        self.timers: TimerHeap[Transaction] = TimerHeap()
        self.outgoing: list[Outgoing] = []
        self.upcalls: deque[Upcall] = deque()
        self._clients: dict[TxKey, Transaction] = {}
        self._servers: dict[TxKey, Transaction] = {}
        self._merge_index: dict[tuple[object, ...], TxKey] = {}
        self._ack_facts: RequestFacts | None = None
        self._raw_index: dict[int, Transaction] = {}  # hash of the datagram -> server tx
        self._ack_index: dict[int, Transaction] = {}  # hash of a 2xx's ACK -> INVITE tx

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    @property
    def server_count(self) -> int:
        """Live server transactions (including those absorbing retransmissions)."""
        return len(self._servers)

    # --- client side (§17.1) --------------------------------------------------------

    def send_request(self, request: Request, destination: Addr, transport: TransportKind,
                     now: float) -> Transaction:
        """Start a client transaction for ``request`` (not ACK: see ``send_stateless``)."""
        method = request.method
        if method == "ACK":
            raise ValueError("ACK never creates a client transaction (§17.1.1.3, §13.2.2.4)")
        branch = request.top_via.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            raise ValueError("our requests carry an RFC 3261 branch (§8.1.1.7)")
        kind = TxKind.INVITE_CLIENT if method == "INVITE" else TxKind.NON_INVITE_CLIENT
        key = (branch, method)
        if key in self._clients:
            raise ValueError(f"branch {branch} already used for {method}")
        tx = Transaction(self, kind, key, request, bytes(request), destination,
                         transport)
        self._clients[key] = tx
        tx.start(now)
        return tx

    def send_stateless(self, message: Request | Response, destination: Addr,
                       transport: TransportKind) -> bytes:
        """Send outside any transaction (ACK for 2xx, 2xx retransmissions by the TU)."""
        data = bytes(message)
        self.outgoing.append(Outgoing(data, destination, transport))
        return data

    def resend(self, data: bytes, destination: Addr, transport: TransportKind) -> None:
        self.outgoing.append(Outgoing(data, destination, transport))

    def receive_response(self, response: Response, source: Addr, now: float) -> None:
        """Match a response to its client transaction (§17.1.3) and feed it."""
        headers = response.headers
        via, cseq_value = headers.get("Via"), headers.get("CSeq")
        if via is None or cseq_value is None:
            return
        cseq = parse_cseq(cseq_value)
        tx = self._clients.get((TopVia.parse(via).branch, cseq.method))
        status = response.status
        if tx is None:
            if cseq.method == "INVITE" and 200 <= status < 300:
                self.upcalls.append(Upcall(UpcallKind.STRAY_2XX, None, response, source))
            return
        if status < 200:
            event = TxInput.RECV_1XX
        elif status < 300:
            event = TxInput.RECV_2XX
        else:
            event = TxInput.RECV_FINAL_NON_2XX
        tx.fire(event, now, response)

    # --- server side (§17.2) --------------------------------------------------------

    def absorb_raw(self, data: bytes, now: float) -> bool:
        """Absorb a byte-identical retransmission of a request that created a live
        server transaction, without parsing it (§17.2.1, §17.2.2: resend the last
        response or stay silent, as the state says).  ``False``: parse as usual.

        Retransmissions are copies of the same datagram, so the (keyed, SipHash) hash
        of the bytes finds the transaction; under overload this keeps retransmitted
        INVITEs and BYEs from costing a parse each."""
        key = hash(data)
        tx = self._raw_index.get(key)
        if tx is None or tx.terminated:
            acked = self._ack_index.get(key)
            return acked is not None and not acked.terminated  # a copy of a used ACK
        tx.fire(_RECV_REQUEST, now)
        return True

    def absorb_ack_copies(self, raw_hash: int | None, tx: Transaction) -> None:
        """The TU took the ACK (datagram hash ``raw_hash``) for the 2xx of the INVITE
        server transaction ``tx``: byte-identical copies of it (re-ACKs of our 2xx
        retransmissions, §13.2.2.4) are absorbed before parsing while ``tx`` lingers
        (RFC 6026 §7.1 Accepted, Timer L) - the TU has nothing more to do with them."""
        if raw_hash is None or tx.terminated or tx.ack_hash is not None:
            return
        tx.ack_hash = raw_hash
        self._ack_index[raw_hash] = tx

    def receive_request(  # noqa: PLR0917
        self, request: Request, facts: RequestFacts, source: Addr, transport: TransportKind,
        now: float, raw: bytes | None = None,
    ) -> Transaction | None:
        """Match a request (§17.2.3).

        Returns a new server transaction the TU must answer (``tx.merged`` is set for a
        §8.2.2.2 merged request: answer 482), or ``None`` when the request was absorbed
        as a retransmission or was an ACK (ACKs for 2xx are queued as
        ``UpcallKind.ACK``).  ``raw``, the datagram it came in, lets ``absorb_raw``
        recognise its retransmissions."""
        method = request.method
        is_ack = method == "ACK"
        key = server_key(request, facts, "INVITE" if is_ack else method)
        tx = self._servers.get(key)
        if is_ack:
            if tx is None:
                self.upcalls.append(Upcall(_ACK_UPCALL, None, request, source, facts,
                                           None, hash(raw) if raw is not None else None))
            else:
                self._ack_facts = facts
                tx.fire(_RECV_ACK, now, request)
            return None
        if tx is not None:
            tx.fire(_RECV_REQUEST, now, request)
            return None
        kind = _INVITE_SERVER if method == "INVITE" else _NON_INVITE_SERVER
        destination = response_destination(facts, source, transport)
        tx = Transaction(self, kind, key, request, b"", destination, transport)
        tx.facts = facts
        self._servers[key] = tx
        if raw is not None:
            tx.raw_hash = hash(raw)
            self._raw_index[tx.raw_hash] = tx
        if facts.to_tag is None:
            merge_key = _merge_key(facts)
            earlier = self._merge_index.get(merge_key)
            if earlier is not None and earlier in self._servers:
                tx.merged = True
            else:
                self._merge_index[merge_key] = key
        tx.start(now)
        return tx

    def find_server(self, key: TxKey) -> Transaction | None:
        return self._servers.get(key)

    def send_response(self, tx: Transaction, response: Response, now: float) -> bytes:
        """TU hands a response to its server transaction; returns the bytes sent."""
        data = bytes(response)
        tx.send_response(response.status, data, now)
        return data

    def send_response_bytes(self, tx: Transaction, status: int, data: bytes, now: float
                            ) -> None:
        """Same, for a response the TU serialized itself."""
        tx.send_response(status, data, now)

    def send_trying(self, tx: Transaction) -> None:
        """§17.2.1: 100 Trying when the TU has not answered within 200 ms."""
        response = make_response(tx.request, 100, "Trying")
        data = bytes(response)
        tx.last_status = 100
        tx.last_response_bytes = data
        self.outgoing.append(Outgoing(data, tx.destination, tx.transport))

    def build_non2xx_ack(self, request: Request, response: Request | Response) -> bytes:
        assert isinstance(response, Response)
        return bytes(build.make_non2xx_ack(request, response))

    # --- timers and errors ----------------------------------------------------------

    def get_timer(self) -> float | None:
        return self.timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        for tx, name in self.timers.pop_due(now):
            if not tx.terminated:
                assert isinstance(name, TimerName)
                tx.fire(TIMER_INPUTS[name.value], now)

    def report_transport_error(self, destination: Addr, now: float) -> None:
        """The transport could not deliver to ``destination`` (§17.1.4, §17.2.4)."""
        for table in (self._clients, self._servers):
            for tx in [t for t in table.values() if t.destination == destination]:
                tx.fire(TxInput.TRANSPORT_ERROR, now)

    # --- upcalls (called by Transaction) --------------------------------------------

    def upcall_response(self, tx: Transaction, message: Request | Response | None) -> None:
        self.upcalls.append(Upcall(UpcallKind.RESPONSE, tx, message, None, None, tx.owner))

    def upcall_ack(self, tx: Transaction, message: Request | Response | None) -> None:
        self.upcalls.append(Upcall(_ACK_UPCALL, tx, message, None, self._ack_facts))

    def upcall_timeout(self, tx: Transaction) -> None:
        self.upcalls.append(Upcall(UpcallKind.TIMEOUT, tx, None, None, None, tx.owner))

    def upcall_transport_error(self, tx: Transaction) -> None:
        self.upcalls.append(Upcall(UpcallKind.TRANSPORT_ERROR, tx, None, None, None, tx.owner))

    def unindex_merge(self, tx: Transaction) -> None:
        """Drop the §8.2.2.2 merge entry of a server transaction that has answered."""
        facts = tx.facts
        if facts is not None and facts.to_tag is None:
            merge_key = _merge_key(facts)
            if self._merge_index.get(merge_key) == tx.key:
                del self._merge_index[merge_key]

    def forget(self, tx: Transaction) -> None:
        """A transaction reached Terminated: drop it and its timers."""
        self.timers.cancel_all(tx, TIMERS_OF[tx.kind])
        if tx.kind is _INVITE_CLIENT or tx.kind is _NON_INVITE_CLIENT:
            table = self._clients
        else:
            table = self._servers
            facts = tx.facts
            if facts is not None and facts.to_tag is None:
                merge_key = _merge_key(facts)
                if self._merge_index.get(merge_key) == tx.key:
                    del self._merge_index[merge_key]
        if table.get(tx.key) is tx:
            del table[tx.key]
        if tx.raw_hash is not None and self._raw_index.get(tx.raw_hash) is tx:
            del self._raw_index[tx.raw_hash]
        if tx.ack_hash is not None and self._ack_index.get(tx.ack_hash) is tx:
            del self._ack_index[tx.ack_hash]
        tx.state = _TERMINATED
        tx.owner = None  # the TU's session may refer to us: break the cycle


def _merge_key(facts: RequestFacts) -> tuple[object, ...]:
    cseq = facts.cseq
    return (facts.from_tag, facts.call_id, cseq.seq, cseq.method)
