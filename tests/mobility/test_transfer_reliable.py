"""A reliable hand-off channel (issue 6): tokens resent like SIP requests over UDP
(RFC 3261 §17.1.1.2 Timer A / §17.1.2.2 Timer E: T1, doubling, capped at T2, bounded),
identical copies answered from the receiver's cache (RFC 3261 §17.2.1: a retransmitted
request gets the last response again), and a transfer INVITE that overtook its EXPECT
token held a bounded time. Sans-I/O engines with a hand-advanced clock; the in-memory
scenarios use real MIKEY and libsrtp (tests/mobility/transfer_world.py)."""

from __future__ import annotations

import random

import pytest

from mobilityd.mobility.transfer import (
    ExpectationBook,
    NotExpectedError,
    TokenError,
    TokenKind,
    TransferUsageError,
)
from mobilityd.mobility.transfer.early import EarlyInvites
from mobilityd.mobility.transfer.errors import RetransmittedTokenError
from mobilityd.mobility.transfer.expectations import MAX_ANSWERS
from mobilityd.mobility.transfer.retransmit import TokenRetransmission
from tests.mobility.tokens import KEY, NOW, expect_token
from tests.mobility.transfer_world import ALICE, World


def copies_until(resend: TokenRetransmission, end: float) -> list[float]:
    """Drive the engine's timer like an adapter; the times copies were sent."""
    sent = []
    while (at := resend.get_timer()) is not None and at <= end:
        assert resend.handle_timer(at - 0.001) == []  # never early
        assert resend.handle_timer(at) == [resend.token]
        sent.append(round(at - resend.sent_at, 6))
    return sent


# -- the sender: retransmission schedule ------------------------------------------------


def test_schedule_doubles_to_t2_then_gives_up() -> None:
    """RFC 3261 §17.1.2.2: T1, 2*T1, 4*T1 ... capped at T2, until 64*T1 (Timer F)."""
    resend = TokenRetransmission(b"token", NOW, give_up_after=32.0)
    assert copies_until(resend, NOW + 100) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
                                                23.5, 27.5, 31.5]
    assert resend.retransmissions == 10 and resend.done and resend.get_timer() is None
    assert resend.handle_timer(NOW + 1000) == []


def test_announce_bound_of_the_adapter() -> None:
    """The adapter bounds an EXPECT by ``announce_timeout`` (4 s): three copies."""
    resend = TokenRetransmission(b"t", NOW, give_up_after=4.0)
    assert copies_until(resend, NOW + 100) == [0.5, 1.5, 3.5]


def test_answer_stops_copies_and_a_late_timer_sends_one() -> None:
    resend = TokenRetransmission(b"t", NOW, give_up_after=32.0, t1=0.25, t2=1.0)
    assert resend.handle_timer(NOW + 10) == [b"t"]  # very late: one copy, no burst
    assert resend.get_timer() == pytest.approx(NOW + 10.5)  # re-armed from firing
    resend.answered()
    assert resend.get_timer() is None and resend.handle_timer(NOW + 20) == []


@pytest.mark.parametrize(("t1", "t2", "bound"), [(0, 4, 1), (1, 0.5, 1), (0.5, 4, -1)])
def test_bad_timers_are_local_errors(t1: float, t2: float, bound: float) -> None:
    with pytest.raises(TransferUsageError):
        TokenRetransmission(b"t", NOW, give_up_after=bound, t1=t1, t2=t2)


# -- the receiver: identical copies answered from the cache ------------------------------


def test_identical_copy_gets_the_same_accept_and_files_nothing() -> None:
    book = ExpectationBook("pda", KEY)
    data = bytes(expect_token().sealed(KEY))
    token, accept = book.admit(data, NOW)
    with pytest.raises(RetransmittedTokenError) as copy:
        book.admit(data, NOW + 0.5)
    assert copy.value.answer == accept and isinstance(copy.value, TokenError)
    assert book.pending == 1 and book.find("sip:alice@a.example", 0xDEADBEEF, NOW) == token
    book.consume(token)
    with pytest.raises(RetransmittedTokenError) as late:  # after the transfer: no revival
        book.admit(data, NOW + 2)
    assert late.value.answer == accept and book.pending == 0
    with pytest.raises(NotExpectedError):
        book.find("sip:alice@a.example", 0xDEADBEEF, NOW + 2)


def test_answers_per_nonce_are_bounded() -> None:
    """A replayer of a captured EXPECT gets at most MAX_ANSWERS ACCEPTs in all."""
    book = ExpectationBook("pda", KEY)
    data = bytes(expect_token().sealed(KEY))
    book.admit(data, NOW)
    answers = []
    for _ in range(MAX_ANSWERS + 5):
        with pytest.raises(RetransmittedTokenError) as copy:
            book.admit(data, NOW + 1)
        answers.append(copy.value.answer)
    assert sum(a is not None for a in answers) == MAX_ANSWERS - 1
    assert answers[-1] is None and book.pending == 1


def test_other_token_with_a_known_nonce_is_a_replay_not_a_copy() -> None:
    book = ExpectationBook("pda", KEY)
    book.admit(bytes(expect_token().sealed(KEY)), NOW)
    other = bytes(expect_token(call_id="c2@laptop", csb_id=1).sealed(KEY))
    with pytest.raises(TokenError, match="replayed") as replay:
        book.admit(other, NOW + 1)
    assert not isinstance(replay.value, RetransmittedTokenError)
    with pytest.raises(NotExpectedError):
        book.find("sip:alice@a.example", 1, NOW + 1)


def test_copy_after_its_window_is_refused_as_expired() -> None:
    book = ExpectationBook("pda", KEY)
    data = bytes(expect_token().sealed(KEY))
    book.admit(data, NOW)
    with pytest.raises(TokenError, match="expired") as old:
        book.admit(data, NOW + 60)
    assert not isinstance(old.value, RetransmittedTokenError)
    assert book.pending == 0


def test_pull_copy_starts_nothing_and_has_no_answer() -> None:
    book = ExpectationBook("laptop", KEY)
    pull = bytes(expect_token(kind=TokenKind.PULL, sender="pda", receiver="laptop"
                              ).sealed(KEY))
    book.admit_pull(pull, NOW)
    with pytest.raises(RetransmittedTokenError) as copy:
        book.admit_pull(pull, NOW + 0.5)
    assert copy.value.answer is None


# -- the new device: an INVITE that overtook its token ------------------------------------


def test_early_invite_released_by_its_token_only() -> None:
    room: EarlyInvites[str] = EarlyInvites(hold_seconds=2.0, max_held=2)
    assert room.hold("sip:alice@a", 7, "invite-1", NOW)
    assert room.hold("sip:alice@a", 8, "invite-2", NOW + 0.1)
    assert not room.hold("sip:alice@a", 9, "invite-3", NOW + 0.2)  # full: refuse now
    assert room.release("sip:alice@a", 9) == [] and room.release("sip:bob@b", 7) == []
    assert room.release("sip:alice@a", 7) == ["invite-1"]
    assert room.get_timer() == pytest.approx(NOW + 2.1)
    assert room.handle_timer(NOW + 2.0) == []
    assert room.handle_timer(NOW + 2.1) == ["invite-2"]  # no token came: 603 now
    assert room.held == 0 and room.get_timer() is None


def test_holding_disabled_refuses_at_once() -> None:
    assert not EarlyInvites[str](hold_seconds=0).hold("a", 1, "x", NOW)
    with pytest.raises(TransferUsageError):
        EarlyInvites[str](hold_seconds=-1)


def test_lost_expect_parallel_move_succeeds_from_the_copy() -> None:
    """The first EXPECT is lost, the REFER left with it (parallel announce): Alice's
    INVITE reaches the PDA first and waits (no 603); the copy at T1 files the
    expectation, releases the INVITE, the PDA takes it: same sending session at Alice,
    no auth failure, no SSRC shared by two devices."""
    world = World()
    tx_before = world.alice_tx
    referrer = world.referrer("laptop", "pda")
    expect, _ = referrer.start_parallel(world.now, world.rng)
    resend = TokenRetransmission(expect, world.now, give_up_after=4.0)
    offer, message = world.alice_offer()  # the first EXPECT went nowhere
    pda = world.devices["pda"]
    with pytest.raises(NotExpectedError) as early:
        world.target_takes("pda", message)
    room: EarlyInvites[bytes] = EarlyInvites()
    assert room.hold(early.value.correspondent, early.value.csb_id or 0, message, world.now)
    assert early.value.correspondent == ALICE
    world.now += 0.5
    (copy,) = resend.handle_timer(world.now)
    token, accept = pda.book.admit(copy, world.now)
    (held,) = room.release(token.correspondent, token.csb_id)
    taken = world.target_takes("pda", held)
    assert referrer.receive_accept(accept, world.now) == []
    resend.answered()
    assert taken.reply is not None
    world.complete("pda", taken, offer.receive_response(taken.reply, world.now))
    world.exchange(5, to=("laptop", "pda"))
    assert type(referrer.progress_notified(200, world.now)[0]).__name__ == "TransferSucceeded"
    world.holder = "pda"
    world.exchange(20)
    assert world.alice_tx is tx_before and world.alice_auth_failures() == 0
    assert world.devices["pda"].auth_failures() == 0
    ssrcs = [s for tx in world.user_tx_sessions for s in tx.ssrcs]
    assert len(ssrcs) == len(set(ssrcs))


def test_lost_accept_confirmed_move_refers_after_the_copy() -> None:
    """Confirmed announce: the ACCEPT is lost; the copy of EXPECT at T1 is answered
    from the PDA's cache (the same ACCEPT, one expectation), and the REFER follows."""
    world = World()
    referrer = world.referrer("laptop", "pda")
    expect = referrer.start(world.now, world.rng)
    resend = TokenRetransmission(expect, world.now, give_up_after=4.0)
    pda = world.devices["pda"]
    _, accept = pda.book.admit(expect, world.now)  # this ACCEPT is lost
    world.now += 0.5
    (copy,) = resend.handle_timer(world.now)
    with pytest.raises(RetransmittedTokenError) as again:
        pda.book.admit(copy, world.now)
    assert again.value.answer == accept and pda.book.pending == 1
    (event,) = referrer.receive_accept(again.value.answer, world.now)
    assert type(event).__name__ == "TargetConfirmed"
    resend.answered()
    offer, message = world.alice_offer()
    taken = world.target_takes("pda", message)
    assert taken.reply is not None and pda.book.pending == 0
    offer.receive_response(taken.reply, world.now)


@pytest.mark.parametrize("seed", range(20))
def test_ten_percent_loss_on_the_channel_every_move_succeeds(seed: int) -> None:
    """10 % loss on each token (seeded): with copies at 0.5, 1.5, 3.5 s every EXPECT
    and its ACCEPT get through within the 4 s bound in these 20 seeds (a move would
    fail only if all four copies or all four answers were lost: 1e-4 per link)."""
    loss = random.Random(seed)
    world = World(seed=seed + 1)
    referrer = world.referrer("laptop", "pda")
    expect = referrer.start(world.now, world.rng)
    resend = TokenRetransmission(expect, world.now, give_up_after=4.0)
    pda, confirmed, copy = world.devices["pda"], False, expect
    while not confirmed:
        if loss.random() >= 0.1:
            try:
                _, accept = pda.book.admit(copy, world.now)
            except RetransmittedTokenError as exc:
                assert exc.answer is not None
                accept = exc.answer
            if loss.random() >= 0.1:
                referrer.receive_accept(accept, world.now)
                resend.answered()
                confirmed = True
                break
        at = resend.get_timer()
        assert at is not None, "gave up"
        world.now = at
        (copy,) = resend.handle_timer(at)
    assert pda.book.pending == 1 and referrer.state.value == "referring"
