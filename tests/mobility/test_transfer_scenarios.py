"""Call transfer between the user's devices, in memory with real MIKEY and libsrtp.

Issue 6 / thesis §15.1. Every scenario checks the three invariants of the issue:
Alice's sending SRTP session is the same object before and after, zero SRTP auth
failures anywhere, and no (SSRC, index) ever protected twice under the call's keys
(RFC 3711 §9.1) -- checked on the libsrtp index histories of every sender.
"""

from __future__ import annotations

import random

import pytest

from mobilityd.call.keying import KeyMethod
from tests.mobility.transfer_world import World


def assert_invariants(world: World, alice_tx: object) -> None:
    assert world.alice_tx is alice_tx
    assert world.alice_auth_failures() == 0
    assert all(d.auth_failures() == 0 for d in world.devices.values())
    histories = [tx.index_history for tx in world.user_tx_sessions]
    seen: set[tuple[int, int]] = set()
    for history in histories:
        assert history is not None
        assert not (seen & history), "an (SSRC, index) was protected by two devices"
        seen |= history
    user_ssrcs = [{ssrc for ssrc, _ in h or ()} for h in histories]
    assert sum(map(len, user_ssrcs)) == len(set().union(*user_ssrcs))


@pytest.mark.parametrize("method", [KeyMethod.PSK, KeyMethod.PKE])
def test_laptop_to_pda_after_roc_wrap(method: KeyMethod) -> None:
    """RFC 3830 §6.1.1 ROC in the CS ID map: Alice's stream wrapped (ROC 1) before the
    move and the PDA decrypts her first packet after it."""
    world = World(method=method)
    alice_tx = world.alice_tx
    world.exchange(80)  # Alice: 65500 -> 65580 -> ROC 1; laptop too
    assert world.alice_tx.get_roc(world.alice_sender.ssrc) == 1
    assert world.devices["laptop"].tx is not None
    laptop_ssrc = world.devices["laptop"].sender.ssrc  # type: ignore[union-attr]
    assert world.devices["laptop"].tx.get_roc(laptop_ssrc) == 1
    world.move("laptop", "pda", overlap=0)
    pda = world.devices["pda"]
    first = world.alice_send()
    rtp = pda.receive(first)  # the very first packet the PDA sees
    assert int.from_bytes(rtp[8:12], "big") == world.alice_sender.ssrc
    assert pda.rx is not None and pda.rx.get_roc(world.alice_sender.ssrc) == 1
    world.exchange(50)
    assert len(pda.received) == 51
    assert_invariants(world, alice_tx)


def test_both_devices_get_media_during_the_switch() -> None:
    """Thesis §15.1: Alice's media goes to both devices while Bob moves; the laptop
    keeps talking until its BYE and Alice decrypts both."""
    world = World()
    alice_tx = world.alice_tx
    world.exchange(10)
    laptop = world.devices["laptop"]
    before = len(laptop.received)
    world.move("laptop", "pda", overlap=20)
    assert len(laptop.received) == before + 20
    assert len(world.devices["pda"].received) == 20
    assert_invariants(world, alice_tx)


def test_there_and_back_again() -> None:
    """laptop -> PDA -> laptop: each move gives the new holder a never-used SSRC."""
    world = World()
    alice_tx = world.alice_tx
    world.exchange(30)
    world.move("laptop", "pda")
    world.exchange(30)
    world.move("pda", "laptop")
    world.exchange(30)
    assert world.holder == "laptop"
    assert len(world.alice_used_peer_ssrcs) == 3
    assert_invariants(world, alice_tx)


def test_ten_percent_loss_around_the_move() -> None:
    """Deterministic 10 % loss of media both ways before, during and after the move."""
    world = World(alice_first_seq=65_520)
    alice_tx = world.alice_tx
    loss = random.Random(7)
    world.exchange(60, loss=loss, loss_rate=0.1)
    world.move("laptop", "pda", overlap=0)
    world.exchange(100, loss=loss, loss_rate=0.1)
    assert 70 <= len(world.devices["pda"].received) <= 100
    assert_invariants(world, alice_tx)
