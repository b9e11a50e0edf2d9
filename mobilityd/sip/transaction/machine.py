"""One RFC 3261 §17 transaction: runs its state table and performs the actions.

The object never does I/O.  Sending appends ``Outgoing`` entries to the layer's queue,
timers go to the layer's heap, and what the TU must see goes to the layer's upcall
queue (see ``layer.py``).  Retransmissions re-send the bytes serialized the first time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mobilityd.sip.timers import TimerName
from mobilityd.sip.transaction.outbound import Addr, Outgoing, TransportKind
from mobilityd.sip.transaction.states import (
    INITIAL_STATE,
    TABLES,
    TU_INPUTS,
    Transition,
    TxAction,
    TxInput,
    TxKind,
    TxState,
)

if TYPE_CHECKING:
    from mobilityd.sip.message import Request, Response
    from mobilityd.sip.transaction.facts import RequestFacts
    from mobilityd.sip.transaction.layer import TransactionLayer

A = TxAction
# Enum members used per message, bound once as module constants: CPython 3.11 reads a
# member through its class (``TxState.TERMINATED``) via EnumType.__getattr__'s slot
# hook at ~100 ns, a module global at ~15 ns (measured with timeit; the _perform chain
# below compared up to 20 members per action).
_TERMINATED = TxState.TERMINATED
_UDP = TransportKind.UDP
_INVITE_CLIENT, _NON_INVITE_CLIENT = TxKind.INVITE_CLIENT, TxKind.NON_INVITE_CLIENT
_INVITE_SERVER = TxKind.INVITE_SERVER
_TU_1XX, _TU_2XX, _TU_FINAL = TxInput.TU_1XX, TxInput.TU_2XX, TxInput.TU_FINAL_NON_2XX
_SEND_RESPONSE, _RESEND_LAST_RESPONSE = A.SEND_RESPONSE, A.RESEND_LAST_RESPONSE
_STOP_RETRANSMIT_TIMERS, _START_TIMER_L = A.STOP_RETRANSMIT_TIMERS, A.START_TIMER_L
_START_TIMER_J, _PASS_ACK_TO_TU = A.START_TIMER_J, A.PASS_ACK_TO_TU
_PASS_RESPONSE_TO_TU = A.PASS_RESPONSE_TO_TU
_TIMER_L, _TIMER_J, _TIMER_TRYING = TimerName.L, TimerName.J, TimerName.TRYING
_LINGERING = frozenset({TxState.ACCEPTED, TxState.COMPLETED, TxState.CONFIRMED})
_SERVER = frozenset({TxKind.INVITE_SERVER, TxKind.NON_INVITE_SERVER})
T = TimerName
#: The timers each machine may run (RFC 3261 §17, Table 4; RFC 6026 L and M).
TIMERS_OF: dict[TxKind, tuple[TimerName, ...]] = {
    TxKind.INVITE_CLIENT: (T.A, T.B, T.D, T.M),
    TxKind.NON_INVITE_CLIENT: (T.E, T.F, T.K),
    TxKind.INVITE_SERVER: (T.TRYING, T.G, T.H, T.I, T.L),
    TxKind.NON_INVITE_SERVER: (T.J,),
}
#: Those STOP_RETRANSMIT_TIMERS stops: retransmission and transaction timeouts.
_RETRANSMIT_TIMERS: dict[TxKind, tuple[TimerName, ...]] = {
    TxKind.INVITE_CLIENT: (T.A, T.B),
    TxKind.NON_INVITE_CLIENT: (T.E, T.F),
    TxKind.INVITE_SERVER: (T.TRYING, T.G),
    TxKind.NON_INVITE_SERVER: (),
}


class TransactionStateError(Exception):
    """Local error: the TU asked for something the transaction state forbids (§17)."""


class Transaction:
    """A client or server transaction (RFC 3261 §17.1, §17.2).

    ``request`` is the request that created it; ``key`` the matching key of §17.1.3 /
    §17.2.3; ``destination`` where requests (client) or responses (server) go.
    ``owner`` is free for the TU (the UA core stores its session object there).

    A server transaction that has sent its final response only waits for
    retransmissions (Accepted, Completed, Confirmed): it then releases the request,
    its facts and its owner, keeping just its key and the bytes to resend - at 5,000
    calls/s the 32 s of Timers L and J would otherwise hold 160,000 parsed requests.
    """

    __slots__ = (
        "_interval",
        "_layer",
        "_request",
        "_request_bytes",
        "ack_hash",
        "destination",
        "facts",
        "key",
        "kind",
        "last_response_bytes",
        "last_status",
        "merged",
        "method",
        "owner",
        "raw_hash",
        "state",
        "transport",
    )

    def __init__(  # noqa: PLR0917 - one call site per side, in layer.py
        self,
        layer: TransactionLayer,
        kind: TxKind,
        key: tuple[object, ...],
        request: Request,
        request_bytes: bytes,
        destination: Addr,
        transport: TransportKind,
    ) -> None:
        self._layer = layer
        self.kind = kind
        self.key = key
        self._request: Request | None = request
        self.method = request.method
        self._request_bytes = request_bytes
        self.destination = destination
        self.transport = transport
        self.state: TxState = INITIAL_STATE[kind]
        self.last_status: int | None = None  # of the most recent response sent
        self.last_response_bytes: bytes | None = None
        self.owner: object = None
        self.merged = False  # §8.2.2.2: the TU must answer 482
        self.raw_hash: int | None = None  # server: hash of the creating datagram
        self.ack_hash: int | None = None  # INVITE server: hash of its 2xx's ACK
        self.facts: RequestFacts | None = None  # server side: read once on arrival
        self._interval = layer.config.t1

    @property
    def request(self) -> Request:
        """The request that created the transaction (gone once a server transaction
        only absorbs retransmissions: then ``TransactionStateError``)."""
        if self._request is None:
            raise TransactionStateError(f"{self.method} transaction released its request")
        return self._request

    @property
    def reliable(self) -> bool:
        return self.transport is not _UDP

    @property
    def terminated(self) -> bool:
        return self.state is _TERMINATED

    def start(self, now: float) -> None:
        """Enter the initial state: send the request (client) and arm the timers."""
        config = self._layer.config
        schedule = self._layer.timers.schedule
        kind = self.kind
        if kind is _INVITE_SERVER:
            schedule(self, _TIMER_TRYING, now + config.trying_delay)
        elif kind is _INVITE_CLIENT or kind is _NON_INVITE_CLIENT:
            self._send(self._request_bytes)
            if not self.reliable:
                name = TimerName.A if kind is _INVITE_CLIENT else TimerName.E
                schedule(self, name, now + config.t1)
            name = TimerName.B if kind is _INVITE_CLIENT else TimerName.F
            schedule(self, name, now + config.timeout)

    def fire(self, event: TxInput, now: float, message: Request | Response | None = None
             ) -> None:
        """Apply one input through the state table (absorbing what the table lacks)."""
        transition = TABLES[self.kind].get((self.state, event))
        if transition is None:
            if event in TU_INPUTS:
                raise TransactionStateError(
                    f"{self.kind.name} transaction in {self.state.value}: {event.value}")
            return
        self._apply(transition, now, message)

    def _apply(self, transition: Transition, now: float,
               message: Request | Response | None) -> None:
        """Enter the transition's state and perform its actions (`fire`)."""
        self.state, actions = transition
        for action in actions:
            self._perform(action, now, message)
        state = self.state
        if state is _TERMINATED:
            self._layer.forget(self)
        elif state in _LINGERING and self._request is not None and self.kind in _SERVER:
            self._release()

    def _release(self) -> None:
        """Keep only what absorbing retransmissions needs (key, timers, bytes)."""
        self._layer.unindex_merge(self)
        self._request = None
        self.facts = None
        self.owner = None

    def send_response(self, status: int, data: bytes, now: float) -> None:
        """TU passes a response (its status and bytes) down (§17.2.1, §17.2.2)."""
        if status < 200:
            event = _TU_1XX
        elif status < 300:
            event = _TU_2XX
        else:
            event = _TU_FINAL
        transition = TABLES[self.kind].get((self.state, event))
        if transition is None:
            raise TransactionStateError(
                f"{self.kind.name} transaction in {self.state.value}: cannot send {status}")
        self.last_status = status
        self.last_response_bytes = data
        self._apply(transition, now, None)  # = fire(event, now), looked up once

    # --- actions ---------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self._layer.outgoing.append(Outgoing(data, self.destination, self.transport))

    def _perform(self, action: TxAction, now: float,
                 message: Request | Response | None) -> None:
        # The actions of every call (a UAS's 2xx, the BYE's 200, the ACK) here, the rest
        # in _perform_other.
        layer = self._layer
        if action is _SEND_RESPONSE or action is _RESEND_LAST_RESPONSE:
            if self.last_response_bytes is not None:
                self._send(self.last_response_bytes)
        elif action is _STOP_RETRANSMIT_TIMERS:
            layer.timers.cancel_all(self, _RETRANSMIT_TIMERS[self.kind])
        elif action is _START_TIMER_L:
            layer.timers.schedule(self, _TIMER_L, now + layer.config.timeout)
        elif action is _START_TIMER_J:
            layer.timers.schedule(
                self, _TIMER_J, now + (0.0 if self.reliable else layer.config.timeout))
        elif action is _PASS_ACK_TO_TU:
            layer.upcall_ack(self, message)
        elif action is _PASS_RESPONSE_TO_TU:
            layer.upcall_response(self, message)
        else:
            self._perform_other(action, now, message)

    def _perform_other(self, action: TxAction, now: float,
                       message: Request | Response | None) -> None:
        layer = self._layer
        config = layer.config
        schedule = layer.timers.schedule
        if action is A.START_TIMER_K:
            schedule(self, TimerName.K, now + (0.0 if self.reliable else config.t4))
        elif action is A.START_TIMER_M:
            schedule(self, TimerName.M, now + config.timeout)
        elif action is A.RETRANSMIT_REQUEST:
            self._send(self._request_bytes)
        elif action is A.DOUBLE_TIMER_A:
            self._interval *= 2
            schedule(self, TimerName.A, now + self._interval)
        elif action is A.BACKOFF_TIMER_E:
            self._interval = min(2 * self._interval, config.t2)
            schedule(self, TimerName.E, now + self._interval)
        elif action is A.T2_TIMER_E:
            self._interval = config.t2
            schedule(self, TimerName.E, now + self._interval)
        elif action is A.START_TIMER_D:
            schedule(self, TimerName.D, now + (0.0 if self.reliable else max(32.0,
                                                                               config.timeout)))
        elif action is A.START_TIMER_G:
            if not self.reliable:
                self._interval = config.t1
                schedule(self, TimerName.G, now + config.t1)
        elif action is A.BACKOFF_TIMER_G:
            self._interval = min(2 * self._interval, config.t2)
            schedule(self, TimerName.G, now + self._interval)
        elif action is A.START_TIMER_H:
            schedule(self, TimerName.H, now + config.timeout)
        elif action is A.START_TIMER_I:
            schedule(self, TimerName.I, now + (0.0 if self.reliable else config.t4))
        elif action is A.SEND_ACK:
            if message is not None:
                self._send(layer.build_non2xx_ack(self.request, message))
        elif action is A.SEND_100_TRYING:
            if self.last_response_bytes is None:
                layer.send_trying(self)
        elif action is A.REPORT_TIMEOUT:
            layer.upcall_timeout(self)
        elif action is A.REPORT_TRANSPORT_ERROR:
            layer.upcall_transport_error(self)
