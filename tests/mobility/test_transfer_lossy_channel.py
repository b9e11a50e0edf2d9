"""Transfers over a lossy hand-off channel between real agents over loopback UDP
(issue 6): a relay between the laptop and the PDA loses chosen tokens. The tokens are
resent like SIP requests over UDP (RFC 3261 §17.1.2.2), identical copies are answered
from the cache, and the PDA holds Alice's INVITE that overtook its EXPECT token
(docs/transfer.md "A reliable hand-off channel"): each move still succeeds with Alice's
sending session unchanged and zero SRTP auth failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from mobilityd.mobility.transfer import TransferFailed, TransferSucceeded
from tests.mobility.transfer_agents import Parties, auth_failures, three_parties, wait_for
from tests.mobility.transfer_relay import LossyRelay


@asynccontextmanager
async def lossy(parties: Parties, source: str, target: str, *, parallel: bool = True,
                drop_forward: set[int] | None = None, drop_back: set[int] | None = None,
                ) -> AsyncIterator[LossyRelay]:
    """``source``'s tokens to ``target`` go through a relay that loses the datagrams
    listed (0-based, per direction)."""
    mover = getattr(parties, source)
    entry = mover.transfer.devices[target]
    relay = await LossyRelay.open(entry.handoff, drop_forward=drop_forward,
                                  drop_back=drop_back)
    mover.transfer = replace(mover.transfer, parallel_announce=parallel, devices={
        target: replace(entry, handoff=relay.address)})
    try:
        yield relay
    finally:
        relay.close()


async def check_moved(parties: Parties, result: object) -> None:
    """The call is on the PDA, Alice's sending session the same object, audio flows."""
    assert isinstance(result, TransferSucceeded), result
    a_call = parties.connected(parties.alice)  # re-filed under the new dialog's Call-ID
    assert a_call is not None
    await wait_for(lambda: parties.connected(parties.pda) is not None)
    p_call = parties.connected(parties.pda)
    assert p_call is not None
    await wait_for(lambda: p_call.monitor.frames > 20)
    assert parties.laptop.call(parties.call_id).state.value == "ended"
    assert auth_failures(a_call) == 0 and auth_failures(p_call) == 0


async def test_first_expect_lost_parallel_move_succeeds() -> None:
    """Parallel announce: the REFER leaves with the EXPECT, which is lost; Alice's INVITE
    reaches the PDA first and waits (no 603); the copy at T1 releases it."""
    async with three_parties() as parties:
        a_call = parties.alice.call(parties.call_id)
        assert a_call.media is not None
        tx = a_call.media.tx
        async with lossy(parties, "laptop", "pda", drop_forward={0}) as relay:
            result = await parties.laptop.move(parties.call_id, "pda")
            assert relay.dropped == [("forward", 0)]
        await check_moved(parties, result)
        assert a_call.media.tx is tx
        assert parties.laptop.tokens_resent >= 1 and parties.pda.invites_held == 1
        assert parties.pda.transfers_refused == [] and parties.pda.tokens_dropped == 0
        assert parties.laptop.tokens_dropped == 0


async def test_accept_lost_confirmed_move_succeeds() -> None:
    """Confirmed announce (the REFER waits for the ACCEPT): the ACCEPT is lost; the
    EXPECT's copy is answered from the PDA's cache, one expectation only."""
    async with three_parties() as parties:
        a_call = parties.alice.call(parties.call_id)
        assert a_call.media is not None
        tx = a_call.media.tx
        async with lossy(parties, "laptop", "pda", parallel=False, drop_back={0}) as relay:
            result = await parties.laptop.move(parties.call_id, "pda")
            assert relay.dropped == [("back", 0)]
        await check_moved(parties, result)
        assert a_call.media.tx is tx
        assert parties.laptop.tokens_resent >= 1 and parties.pda.tokens_repeated >= 1
        assert parties.pda.book.pending == 0 and parties.pda.invites_held == 0
        assert parties.pda.tokens_dropped == 0 and parties.laptop.tokens_dropped == 0


async def test_first_and_second_expect_lost_confirmed_move_succeeds() -> None:
    """Two copies lost (at 0 and T1): the one at 3*T1 gets through."""
    async with three_parties() as parties:
        async with lossy(parties, "laptop", "pda", parallel=False, drop_forward={0, 1}):
            result = await parties.laptop.move(parties.call_id, "pda")
        await check_moved(parties, result)
        assert parties.laptop.tokens_resent >= 2


async def test_first_pull_lost_pull_succeeds() -> None:
    """The PDA's PULL is lost; its copy makes the laptop move the call there, and
    further copies start no second move."""
    async with three_parties() as parties:
        async with lossy(parties, "pda", "laptop", drop_forward={0}) as relay:
            call = await parties.pda.pull("laptop")
            assert relay.dropped == [("forward", 0)]
        assert call is not None
        await wait_for(lambda: call.monitor.frames > 20)
        assert parties.pda.tokens_resent >= 1 and parties.laptop.tokens_dropped == 0
        assert auth_failures(call) == 0


async def test_expect_never_arrives_invite_refused_after_the_hold() -> None:
    """Every token lost: the PDA holds Alice's INVITE for early_invite_hold (here
    0.5 s), then refuses it (603); the call stays on the laptop, untouched."""
    async with three_parties() as parties:
        parties.pda.transfer = replace(parties.pda.transfer, early_invite_hold=0.5)
        a_call = parties.alice.call(parties.call_id)
        async with lossy(parties, "laptop", "pda", drop_forward=set(range(100))):
            result = await parties.laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferFailed) and result.status == 603, result
        assert parties.pda.invites_held == 1 and len(parties.pda.transfers_refused) == 1
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert parties.laptop.call(parties.call_id).state.value == "connected"
        assert auth_failures(a_call) == 0
