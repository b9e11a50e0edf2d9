"""Attacks on and failures of a transfer (issue 6 security tests), in memory.

Real MIKEY messages and libsrtp; Mallory is a third party with her own credentials
(and Alice's PSK with *her*), who sees every message of the transfer.
"""

from __future__ import annotations

import pytest

from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyMethod, PeerKeying
from mobilityd.media.errors import SrtpAuthError
from mobilityd.media.keying import session_for
from mobilityd.media.srtp import Direction
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session import PskInitiator, Responder
from mobilityd.mobility.transfer import (
    KeyTransportError,
    NotExpectedError,
    ReferrerState,
    TokenError,
    TransferFailed,
    TransferUsageError,
)
from tests.mobility.transfer_world import ALICE, BOB, MALLORY, PSK, World

ALICE_ID = sip_identity(ALICE)
MALLORY_ID = sip_identity(MALLORY)
MALLORY_PSK = bytes(32)


def test_forged_refer_to_attackers_box() -> None:
    """A spoofed REFER makes Alice offer the transfer to Mallory: the offer is
    encrypted to Bob's PSK only (not to anything Mallory has), Mallory cannot answer it,
    Alice keeps the laptop and Mallory cannot decrypt a single media packet."""
    world = World()
    world.alice_config.peers = {**world.alice_config.peers,
                                MALLORY_ID: PeerKeying(KeyMethod.PSK, psk=MALLORY_PSK)}
    world.exchange(20)
    offer, message = world.alice_offer()
    assert world.alice_context.tgk not in message
    for psk in (MALLORY_PSK, bytes(range(1, 33))):
        mallory = Responder(local_id=sip_identity(BOB), psk=psk, peer_id=ALICE_ID,
                            replay_cache=ReplayCache())
        with pytest.raises(MikeyError) as info:
            mallory.receive(message, world.now)
        assert info.value.error_type is ErrorType.AUTH_FAILURE
    # Mallory as herself: the I_MESSAGE names Bob as IDr
    mallory = Responder(local_id=MALLORY_ID, psk=MALLORY_PSK, peer_id=ALICE_ID)
    with pytest.raises(MikeyError):
        mallory.receive(message, world.now)
    # her best forgery of an answer
    forged = message[:60] + bytes(20)
    with pytest.raises(KeyTransportError):
        offer.receive_response(forged, world.now)
    assert offer.accepted is None
    # Alice's media, as Mallory would receive it, keyed with what she can guess
    guess = world.alice_context.evolve(tgk=bytes(len(world.alice_context.tgk)))
    rx = session_for(guess, Direction.INBOUND, [world.alice_sender.ssrc])
    with pytest.raises(SrtpAuthError):
        rx.unprotect(world.alice_send())
    world.exchange(20)  # the call goes on with the laptop
    assert world.alice_auth_failures() == 0 and world.holder == "laptop"


def test_device_not_asked_refuses() -> None:
    """A REFER to the PDA that no device of the user announced: 603 from the PDA."""
    world = World()
    _, message = world.alice_offer()
    with pytest.raises(NotExpectedError) as info:
        world.target_takes("pda", message)
    assert info.value.status == 603


def test_expectation_for_another_call_does_not_admit() -> None:
    world = World()
    referrer = world.referrer("laptop", "pda")
    referrer.csb_id ^= 1
    world.announce(referrer)
    _, message = world.alice_offer()
    with pytest.raises(NotExpectedError):
        world.target_takes("pda", message)


def test_replayed_transfer_invite_refused() -> None:
    """A captured transfer INVITE's MIKEY offer, replayed after the transfer: the
    expectation is spent; announced again, the MIKEY replay cache refuses it (§5.4)."""
    world = World()
    world.announce(world.referrer("laptop", "pda"))
    offer, message = world.alice_offer()
    taken = world.target_takes("pda", message)
    assert taken.reply is not None
    offer.receive_response(taken.reply, world.now)
    with pytest.raises(NotExpectedError):
        world.target_takes("pda", message)
    world.announce(world.referrer("laptop", "pda"))
    with pytest.raises(KeyTransportError):
        world.target_takes("pda", message)


def test_replayed_response_refused() -> None:
    """The PDA's answer to an earlier transfer does not complete a later one (§5.2:
    the answer echoes the offer's timestamp)."""
    world = World()
    world.announce(world.referrer("laptop", "pda"))
    first, message = world.alice_offer()
    taken = world.target_takes("pda", message)
    assert taken.reply is not None
    world.now += 5
    second, _ = world.alice_offer()
    with pytest.raises(KeyTransportError):
        second.receive_response(taken.reply, world.now)
    assert second.accepted is None
    first.receive_response(taken.reply, world.now)
    with pytest.raises(KeyTransportError):
        first.receive_response(taken.reply, world.now)


@pytest.mark.parametrize("method", [KeyMethod.PSK, KeyMethod.PKE])
def test_wrong_mac_or_signature_refused_call_stays(method: KeyMethod) -> None:
    world = World(method=method)
    alice_tx = world.alice_tx
    world.exchange(10)
    world.announce(world.referrer("laptop", "pda"))
    offer, message = world.alice_offer()
    taken = world.target_takes("pda", message)
    assert taken.reply is not None
    bad = taken.reply[:-1] + bytes((taken.reply[-1] ^ 1,))
    with pytest.raises(KeyTransportError) as info:
        offer.receive_response(bad, world.now)
    assert info.value.status == 488
    assert offer.accepted is None
    world.exchange(10)
    assert world.alice_tx is alice_tx and world.alice_auth_failures() == 0
    assert world.alice_rx.ssrcs == (next(iter(world.alice_used_peer_ssrcs)),)


def test_target_refuses_offer_reusing_the_laptops_ssrc() -> None:
    """Step 6 enforced by the PDA too: an offer whose CS ID map gives it the laptop's
    SSRC (same TEK, same SSRC: the keystream would repeat) is refused."""
    world = World()
    world.announce(world.referrer("laptop", "pda"))
    initiator = PskInitiator(psk=PSK, local_id=ALICE_ID, peer_id=sip_identity(BOB),
                             cs_map=list(world.alice_context.cs_map),
                             existing=world.alice_context)
    with pytest.raises(KeyTransportError, match="RFC 3711"):
        world.target_takes("pda", initiator.start(world.now, world.rng))
    assert world.devices["pda"].book.pending == 1


def test_target_silent_call_stays() -> None:
    """The PDA never confirms: the referrer times out, no REFER was ever asked for."""
    world = World()
    referrer = world.referrer("laptop", "pda")
    referrer.start(world.now, world.rng)
    deadline = referrer.get_timer()
    assert deadline is not None
    assert referrer.handle_timer(deadline - 0.001) == []
    (event,) = referrer.handle_timer(deadline)
    assert isinstance(event, TransferFailed) and event.status == 0
    assert referrer.state is ReferrerState.FAILED
    world.exchange(10)
    assert world.holder == "laptop" and world.alice_auth_failures() == 0


def test_pda_declines_invite_referrer_fails() -> None:
    world = World()
    referrer = world.referrer("laptop", "pda")
    world.announce(referrer)
    assert referrer.refer_answered(202, world.now) == []
    assert len(referrer.progress_notified(100, world.now)) == 1
    (event,) = referrer.progress_notified(603, world.now)
    assert isinstance(event, TransferFailed) and event.status == 603
    with pytest.raises(TransferUsageError):
        referrer.progress_notified(200, world.now)


def test_forged_accept_token_changes_nothing() -> None:
    world = World()
    referrer = world.referrer("laptop", "pda")
    expect = referrer.start(world.now, world.rng)
    _, accept = world.devices["pda"].book.admit(expect, world.now)
    forged = accept[:-1] + bytes((accept[-1] ^ 0x80,))
    with pytest.raises(TokenError):
        referrer.receive_accept(forged, world.now)
    with pytest.raises(TokenError):
        referrer.receive_accept(expect, world.now)  # reflected: addressed to the PDA
    assert referrer.state is ReferrerState.ANNOUNCING
    referrer.receive_accept(accept, world.now)
    assert referrer.state.value == "referring"


def test_dh_only_peer_cannot_be_transferred() -> None:
    """DH (RFC 3830 §3.3) cannot carry an existing TGK: no PSK or certificate of the
    user means a local error, and nothing is sent."""
    world = World()
    world.alice_config.peers = {sip_identity(BOB): PeerKeying(KeyMethod.DH)}
    with pytest.raises(TransferUsageError, match="DH"):
        world.alice_offer()


def test_offer_with_unknown_own_ssrc_is_local_error() -> None:
    world = World()
    from mobilityd.mobility.transfer.correspondent import transfer_cs_map

    with pytest.raises(TransferUsageError):
        transfer_cs_map(world.alice_context, {12345: 0}, (), world.rng)
    entries = (SrtpCsEntry(0, world.alice_sender.ssrc, 0),)
    only_alice = world.alice_context.evolve(cs_map=entries)
    with pytest.raises(TransferUsageError):
        transfer_cs_map(only_alice, {world.alice_sender.ssrc: 0}, (), world.rng)


def test_parallel_announce_refers_at_once_and_takes_late_accept() -> None:
    world = World()
    referrer = world.referrer("laptop", "pda")
    expect, events = referrer.start_parallel(world.now, world.rng)
    assert [type(e).__name__ for e in events] == ["TargetConfirmed"]
    assert referrer.state is ReferrerState.REFERRING
    _, accept = world.devices["pda"].book.admit(expect, world.now)
    assert referrer.receive_accept(accept, world.now) == []
    with pytest.raises(TransferUsageError):
        referrer.receive_accept(accept, world.now)  # a duplicate
    offer, message = world.alice_offer()
    taken = world.target_takes("pda", message)
    assert taken.reply is not None
    offer.receive_response(taken.reply, world.now)
    (event,) = referrer.progress_notified(200, world.now)
    assert type(event).__name__ == "TransferSucceeded"
