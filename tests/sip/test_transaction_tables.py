"""The RFC 3261 §17 state tables fed inputs alone (no messages, no clock)."""

from __future__ import annotations

import pytest

from mobilityd.sip.timers import TimerConfig, TimerHeap
from mobilityd.sip.transaction.states import (
    INITIAL_STATE,
    TABLES,
    TU_INPUTS,
    TxAction,
    TxInput,
    TxKind,
    TxState,
    response_input,
    step,
)

I = TxInput  # noqa: E741
S = TxState
A = TxAction


def run(kind: TxKind, *inputs: TxInput) -> tuple[TxState, list[TxAction]]:
    state = INITIAL_STATE[kind]
    actions: list[TxAction] = []
    for event in inputs:
        transition = step(kind, state, event)
        if transition is None:
            continue  # absorbed
        state, acts = transition
        actions.extend(acts)
    return state, actions


def test_invite_client_retransmits_then_times_out() -> None:
    """RFC 3261 §17.1.1.2: Timer A retransmits in Calling, Timer B gives up."""
    state, actions = run(TxKind.INVITE_CLIENT, I.TIMER_A, I.TIMER_A, I.TIMER_B)
    assert state is S.TERMINATED
    assert actions.count(A.RETRANSMIT_REQUEST) == 2
    assert actions[-1] is A.REPORT_TIMEOUT


def test_invite_client_non_2xx_acks_inside_the_transaction() -> None:
    """§17.1.1.2/§17.1.1.3: 300-699 -> Completed, ACK sent, retransmissions re-ACKed."""
    state, actions = run(TxKind.INVITE_CLIENT, I.RECV_1XX, I.RECV_FINAL_NON_2XX,
                         I.RECV_FINAL_NON_2XX)
    assert state is S.COMPLETED
    assert actions.count(A.SEND_ACK) == 2
    assert actions.count(A.PASS_RESPONSE_TO_TU) == 2  # the 1xx and the first final only
    assert run(TxKind.INVITE_CLIENT, I.RECV_FINAL_NON_2XX, I.TIMER_D)[0] is S.TERMINATED


def test_invite_client_2xx_retransmissions_reach_the_tu() -> None:
    """RFC 6026 §7.2: Accepted passes every 2xx up so that the TU re-sends its ACK."""
    state, actions = run(TxKind.INVITE_CLIENT, I.RECV_2XX, I.RECV_2XX, I.RECV_2XX)
    assert state is S.ACCEPTED
    assert actions.count(A.PASS_RESPONSE_TO_TU) == 3
    assert A.SEND_ACK not in actions
    assert run(TxKind.INVITE_CLIENT, I.RECV_2XX, I.TIMER_M)[0] is S.TERMINATED


def test_invite_client_proceeding_stops_retransmitting() -> None:
    """§17.1.1.2: no retransmissions after a provisional response."""
    state, actions = run(TxKind.INVITE_CLIENT, I.RECV_1XX, I.TIMER_A)
    assert state is S.PROCEEDING
    assert A.RETRANSMIT_REQUEST not in actions


def test_non_invite_client_backoff_and_final() -> None:
    """§17.1.2.2: E backs off to T2, a final response completes, K terminates."""
    state, actions = run(TxKind.NON_INVITE_CLIENT, I.TIMER_E, I.RECV_1XX, I.TIMER_E,
                         I.RECV_2XX, I.RECV_2XX, I.TIMER_K)
    assert state is S.TERMINATED
    assert actions.count(A.RETRANSMIT_REQUEST) == 2
    assert A.BACKOFF_TIMER_E in actions and A.T2_TIMER_E in actions
    assert actions.count(A.PASS_RESPONSE_TO_TU) == 2  # 1xx + first final


def test_non_invite_client_timer_f() -> None:
    assert run(TxKind.NON_INVITE_CLIENT, I.TIMER_F)[1] == [A.REPORT_TIMEOUT]


def test_invite_server_absorbs_retransmissions() -> None:
    """§17.2.1: a retransmitted INVITE gets the last response again; ACK confirms."""
    state, actions = run(TxKind.INVITE_SERVER, I.TIMER_TRYING, I.RECV_REQUEST,
                         I.TU_FINAL_NON_2XX, I.TIMER_G, I.RECV_REQUEST, I.RECV_ACK,
                         I.RECV_ACK, I.RECV_REQUEST, I.TIMER_I)
    assert state is S.TERMINATED
    assert actions.count(A.RESEND_LAST_RESPONSE) == 3
    assert A.SEND_100_TRYING in actions


def test_invite_server_timer_h_without_ack() -> None:
    state, actions = run(TxKind.INVITE_SERVER, I.TU_FINAL_NON_2XX, I.TIMER_H)
    assert state is S.TERMINATED and actions[-1] is A.REPORT_TIMEOUT


def test_invite_server_accepted_absorbs_invite_and_passes_ack() -> None:
    """RFC 6026 §7.1: after a 2xx, retransmitted INVITEs are absorbed (the TU
    retransmits the 2xx) and ACKs go to the TU."""
    state, actions = run(TxKind.INVITE_SERVER, I.TU_2XX, I.RECV_REQUEST, I.RECV_ACK,
                         I.TU_2XX, I.TIMER_L)
    assert state is S.TERMINATED
    assert actions.count(A.PASS_ACK_TO_TU) == 1
    assert A.RESEND_LAST_RESPONSE not in actions


def test_non_invite_server() -> None:
    """§17.2.2: Trying discards retransmissions, Completed resends the final."""
    state, actions = run(TxKind.NON_INVITE_SERVER, I.RECV_REQUEST, I.TU_1XX,
                         I.RECV_REQUEST, I.TU_2XX, I.RECV_REQUEST, I.TIMER_J)
    assert state is S.TERMINATED
    assert actions.count(A.RESEND_LAST_RESPONSE) == 2


def test_tu_cannot_answer_twice() -> None:
    """A second final response from the TU is a local error (not in the table)."""
    assert step(TxKind.NON_INVITE_SERVER, S.COMPLETED, I.TU_2XX) is None
    assert step(TxKind.INVITE_SERVER, S.COMPLETED, I.TU_2XX) is None


@pytest.mark.parametrize("kind", list(TxKind))
def test_every_state_is_reachable_and_terminates(kind: TxKind) -> None:
    table = TABLES[kind]
    reachable = {INITIAL_STATE[kind]}
    changed = True
    while changed:
        changed = False
        for (state, _event), (new_state, _acts) in table.items():
            if state in reachable and new_state not in reachable:
                reachable.add(new_state)
                changed = True
    assert S.TERMINATED in reachable
    assert all(state is not S.TERMINATED for state, _ in table)  # Terminated is final
    client = kind in (TxKind.INVITE_CLIENT, TxKind.NON_INVITE_CLIENT)
    if client:  # only server transactions take responses from the TU
        assert not any(event in TU_INPUTS for _, event in table)


def test_response_input_classes() -> None:
    assert response_input(180, from_tu=False) is I.RECV_1XX
    assert response_input(202, from_tu=True) is I.TU_2XX
    assert response_input(487, from_tu=False) is I.RECV_FINAL_NON_2XX


def test_timer_config_defaults_and_validation() -> None:
    """RFC 3261 Table 4 defaults."""
    config = TimerConfig()
    assert (config.t1, config.t2, config.t4, config.timeout) == (0.5, 4.0, 5.0, 32.0)
    with pytest.raises(ValueError):
        TimerConfig(t1=5.0, t2=4.0)


def test_timer_heap_replace_and_cancel() -> None:
    heap: TimerHeap[object] = TimerHeap()
    a, b = object(), object()
    heap.schedule(a, "A", 5.0)
    heap.schedule(a, "A", 1.0)  # replaces
    heap.schedule(b, "E", 2.0)
    heap.schedule(b, "F", 3.0)
    heap.cancel(b, "E")
    assert heap.next_deadline() == 1.0
    assert heap.pop_due(2.5) == [(a, "A")]
    assert heap.next_deadline() == 3.0
    assert heap.pop_due(10.0) == [(b, "F")]
    assert heap.next_deadline() is None and len(heap) == 0


@pytest.mark.parametrize("kind", list(TxKind))
def test_timers_of_each_machine_cover_its_table(kind: TxKind) -> None:
    """Every timer a machine's table reacts to is one the layer cancels for it."""
    from mobilityd.sip.timers import TimerName
    from mobilityd.sip.transaction.machine import TIMERS_OF
    from mobilityd.sip.transaction.states import TIMER_INPUTS

    by_input = {event: TimerName(name) for name, event in TIMER_INPUTS.items()}
    used = {by_input[event] for _state, event in TABLES[kind] if event in by_input}
    assert used <= set(TIMERS_OF[kind])
