"""The four RFC 3261 §17 transaction state machines as tables.

Every transition of Figures 5-8 (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2) is one
row ``(state, input) -> (new state, actions)``; RFC 6026 §7.1/§7.2 adds the "Accepted"
state to both INVITE machines so that 2xx retransmissions (client) and INVITE
retransmissions after a 2xx (server) are absorbed by the transaction instead of
reaching the TU as new requests.  Nothing here does I/O: the transaction objects in
``client.py``/``server.py`` perform the actions.

An input missing from a table is either absorbed (network input, e.g. a stray
provisional response in Completed) or a local error (the TU sent a response the state
does not allow) - see ``NETWORK_INPUTS``.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class TxKind(IntEnum):
    """Which of the four §17 machines a transaction runs."""

    INVITE_CLIENT = 1
    NON_INVITE_CLIENT = 2
    INVITE_SERVER = 3
    NON_INVITE_SERVER = 4


class TxState(Enum):
    """States of Figures 5-8 (RFC 3261 §17) plus Accepted (RFC 6026 §7)."""

    __hash__ = object.__hash__  # members are singletons: identity hash, in C

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class TxInput(Enum):
    """What can happen to a transaction: a timer, a message, a TU call, an error."""

    __hash__ = object.__hash__  # members are singletons: identity hash, in C

    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"
    TIMER_TRYING = "timer 100 Trying"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL_NON_2XX = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    TU_1XX = "TU sends 1xx"
    TU_2XX = "TU sends 2xx"
    TU_FINAL_NON_2XX = "TU sends 300-699"
    TRANSPORT_ERROR = "transport error"


class TxAction(Enum):
    """Side effects a transition asks the transaction object to perform."""

    __hash__ = object.__hash__  # members are singletons: identity hash, in C

    RETRANSMIT_REQUEST = "retransmit request"
    DOUBLE_TIMER_A = "restart A at twice its interval"
    BACKOFF_TIMER_E = "restart E at min(2x, T2)"
    T2_TIMER_E = "restart E at T2"
    START_TIMER_D = "start D (32 s unreliable, 0 reliable)"
    START_TIMER_K = "start K (T4 unreliable, 0 reliable)"
    START_TIMER_M = "start M (64*T1)"
    START_TIMER_G = "start G (T1, unreliable only)"
    BACKOFF_TIMER_G = "restart G at min(2x, T2)"
    START_TIMER_H = "start H (64*T1)"
    START_TIMER_I = "start I (T4 unreliable, 0 reliable)"
    START_TIMER_J = "start J (64*T1 unreliable, 0 reliable)"
    START_TIMER_L = "start L (64*T1)"
    STOP_RETRANSMIT_TIMERS = "stop A/B/E/F/G/TRYING"
    SEND_ACK = "send ACK for the non-2xx final response (§17.1.1.3)"
    SEND_RESPONSE = "send the TU's response"
    RESEND_LAST_RESPONSE = "resend the most recent response"
    SEND_100_TRYING = "send 100 Trying if nothing was sent yet"
    PASS_RESPONSE_TO_TU = "pass the response to the TU"
    PASS_ACK_TO_TU = "pass the ACK to the TU (2xx ACK, RFC 6026)"
    REPORT_TIMEOUT = "tell the TU the transaction timed out"
    REPORT_TRANSPORT_ERROR = "tell the TU the transport failed (§17.1.4, §17.2.4)"


S = TxState
I = TxInput  # noqa: E741
A = TxAction
Transition = tuple[TxState, tuple[TxAction, ...]]

_CLIENT_FINAL = (A.STOP_RETRANSMIT_TIMERS, A.PASS_RESPONSE_TO_TU)

#: Figure 5 (RFC 3261 §17.1.1.2) with RFC 6026 §7.2 Accepted.
INVITE_CLIENT: dict[tuple[TxState, TxInput], Transition] = {
    (S.CALLING, I.TIMER_A): (S.CALLING, (A.RETRANSMIT_REQUEST, A.DOUBLE_TIMER_A)),
    (S.CALLING, I.TIMER_B): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
    (S.CALLING, I.RECV_1XX): (S.PROCEEDING, _CLIENT_FINAL),
    (S.CALLING, I.RECV_2XX): (S.ACCEPTED, (*_CLIENT_FINAL, A.START_TIMER_M)),
    (S.CALLING, I.RECV_FINAL_NON_2XX): (
        S.COMPLETED, (*_CLIENT_FINAL, A.SEND_ACK, A.START_TIMER_D)),
    (S.CALLING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_RESPONSE_TO_TU,)),
    (S.PROCEEDING, I.RECV_2XX): (S.ACCEPTED, (A.PASS_RESPONSE_TO_TU, A.START_TIMER_M)),
    (S.PROCEEDING, I.RECV_FINAL_NON_2XX): (
        S.COMPLETED, (A.PASS_RESPONSE_TO_TU, A.SEND_ACK, A.START_TIMER_D)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    # RFC 6026 §7.2: every 2xx retransmission goes to the TU, which re-sends its ACK.
    (S.ACCEPTED, I.RECV_2XX): (S.ACCEPTED, (A.PASS_RESPONSE_TO_TU,)),
    (S.ACCEPTED, I.TIMER_M): (S.TERMINATED, ()),
    (S.COMPLETED, I.RECV_FINAL_NON_2XX): (S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, I.TIMER_D): (S.TERMINATED, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
}

_NIC_FINAL = (S.COMPLETED, (A.STOP_RETRANSMIT_TIMERS, A.PASS_RESPONSE_TO_TU, A.START_TIMER_K))

#: Figure 6 (RFC 3261 §17.1.2.2).
NON_INVITE_CLIENT: dict[tuple[TxState, TxInput], Transition] = {
    (S.TRYING, I.TIMER_E): (S.TRYING, (A.RETRANSMIT_REQUEST, A.BACKOFF_TIMER_E)),
    (S.TRYING, I.TIMER_F): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
    (S.TRYING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_RESPONSE_TO_TU,)),
    (S.TRYING, I.RECV_2XX): _NIC_FINAL,
    (S.TRYING, I.RECV_FINAL_NON_2XX): _NIC_FINAL,
    (S.TRYING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    (S.PROCEEDING, I.TIMER_E): (S.PROCEEDING, (A.RETRANSMIT_REQUEST, A.T2_TIMER_E)),
    (S.PROCEEDING, I.TIMER_F): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
    (S.PROCEEDING, I.RECV_1XX): (S.PROCEEDING, (A.PASS_RESPONSE_TO_TU,)),
    (S.PROCEEDING, I.RECV_2XX): _NIC_FINAL,
    (S.PROCEEDING, I.RECV_FINAL_NON_2XX): _NIC_FINAL,
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    (S.COMPLETED, I.TIMER_K): (S.TERMINATED, ()),
}

#: Figure 7 (RFC 3261 §17.2.1) with RFC 6026 §7.1 Accepted.
INVITE_SERVER: dict[tuple[TxState, TxInput], Transition] = {
    (S.PROCEEDING, I.RECV_REQUEST): (S.PROCEEDING, (A.RESEND_LAST_RESPONSE,)),
    (S.PROCEEDING, I.TIMER_TRYING): (S.PROCEEDING, (A.SEND_100_TRYING,)),
    (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_2XX): (
        S.ACCEPTED, (A.STOP_RETRANSMIT_TIMERS, A.SEND_RESPONSE, A.START_TIMER_L)),
    (S.PROCEEDING, I.TU_FINAL_NON_2XX): (
        S.COMPLETED,
        (A.STOP_RETRANSMIT_TIMERS, A.SEND_RESPONSE, A.START_TIMER_G, A.START_TIMER_H)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    # RFC 6026 §7.1: absorb INVITE retransmissions, pass ACKs up, let the TU resend 2xx.
    (S.ACCEPTED, I.RECV_REQUEST): (S.ACCEPTED, ()),
    (S.ACCEPTED, I.RECV_ACK): (S.ACCEPTED, (A.PASS_ACK_TO_TU,)),
    (S.ACCEPTED, I.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
    (S.ACCEPTED, I.TIMER_L): (S.TERMINATED, ()),
    (S.COMPLETED, I.RECV_REQUEST): (S.COMPLETED, (A.RESEND_LAST_RESPONSE,)),
    (S.COMPLETED, I.TIMER_G): (S.COMPLETED, (A.RESEND_LAST_RESPONSE, A.BACKOFF_TIMER_G)),
    (S.COMPLETED, I.TIMER_H): (S.TERMINATED, (A.REPORT_TIMEOUT,)),
    (S.COMPLETED, I.RECV_ACK): (
        S.CONFIRMED, (A.STOP_RETRANSMIT_TIMERS, A.START_TIMER_I)),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    (S.CONFIRMED, I.RECV_ACK): (S.CONFIRMED, ()),
    (S.CONFIRMED, I.RECV_REQUEST): (S.CONFIRMED, ()),
    (S.CONFIRMED, I.TIMER_I): (S.TERMINATED, ()),
}

_NIS_FINAL = (S.COMPLETED, (A.SEND_RESPONSE, A.START_TIMER_J))

#: Figure 8 (RFC 3261 §17.2.2).
NON_INVITE_SERVER: dict[tuple[TxState, TxInput], Transition] = {
    (S.TRYING, I.RECV_REQUEST): (S.TRYING, ()),
    (S.TRYING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, I.TU_2XX): _NIS_FINAL,
    (S.TRYING, I.TU_FINAL_NON_2XX): _NIS_FINAL,
    (S.PROCEEDING, I.RECV_REQUEST): (S.PROCEEDING, (A.RESEND_LAST_RESPONSE,)),
    (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_2XX): _NIS_FINAL,
    (S.PROCEEDING, I.TU_FINAL_NON_2XX): _NIS_FINAL,
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
    (S.COMPLETED, I.RECV_REQUEST): (S.COMPLETED, (A.RESEND_LAST_RESPONSE,)),
    (S.COMPLETED, I.TIMER_J): (S.TERMINATED, ()),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.REPORT_TRANSPORT_ERROR,)),
}

TABLES: dict[TxKind, dict[tuple[TxState, TxInput], Transition]] = {
    TxKind.INVITE_CLIENT: INVITE_CLIENT,
    TxKind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    TxKind.INVITE_SERVER: INVITE_SERVER,
    TxKind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

INITIAL_STATE: dict[TxKind, TxState] = {
    TxKind.INVITE_CLIENT: S.CALLING,
    TxKind.NON_INVITE_CLIENT: S.TRYING,
    TxKind.INVITE_SERVER: S.PROCEEDING,
    TxKind.NON_INVITE_SERVER: S.TRYING,
}

#: Inputs that come from the TU: an input of this set missing from the table is the
#: TU's mistake (a local error); any other missing input is absorbed silently.
TU_INPUTS = frozenset({I.TU_1XX, I.TU_2XX, I.TU_FINAL_NON_2XX})

TIMER_INPUTS: dict[str, TxInput] = {
    "A": I.TIMER_A, "B": I.TIMER_B, "D": I.TIMER_D, "E": I.TIMER_E, "F": I.TIMER_F,
    "G": I.TIMER_G, "H": I.TIMER_H, "I": I.TIMER_I, "J": I.TIMER_J, "K": I.TIMER_K,
    "L": I.TIMER_L, "M": I.TIMER_M, "TRYING": I.TIMER_TRYING,
}


def response_input(status: int, *, from_tu: bool) -> TxInput:
    """Classify a response status as a table input (§17.1.1.2 / §17.2.1)."""
    if status < 200:
        return I.TU_1XX if from_tu else I.RECV_1XX
    if status < 300:
        return I.TU_2XX if from_tu else I.RECV_2XX
    return I.TU_FINAL_NON_2XX if from_tu else I.RECV_FINAL_NON_2XX


def step(kind: TxKind, state: TxState, event: TxInput) -> Transition | None:
    """Look up one transition; ``None`` means the input is not allowed in ``state``."""
    return TABLES[kind].get((state, event))
