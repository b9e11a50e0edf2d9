"""Call transfer between real agents over loopback UDP: SIP REFER/INVITE/NOTIFY/BYE,
MIKEY in SDP, SRTP media with tones (issue 6; RFC 3515, RFC 5631, thesis §15.1)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.mobility.transfer import TransferFailed, TransferSucceeded
from mobilityd.mobility.transfer_agent import TransferAgent
from mobilityd.sip import events as ev
from mobilityd.sip.message import Request, parse_message
from mobilityd.sip.uri import NameAddr, SipUri
from tests.mobility.transfer_agents import ALICE, BOB, auth_failures, three_parties, wait_for


async def test_move_laptop_to_pda_and_back() -> None:
    async with three_parties() as parties:
        alice, laptop, pda = parties.alice, parties.laptop, parties.pda
        a_call = alice.call(parties.call_id)
        assert a_call.media is not None
        tx, rx = a_call.media.tx, a_call.media.rx
        await wait_for(lambda: a_call.monitor.frames > 10)
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferSucceeded), result
        await wait_for(lambda: parties.connected(pda) is not None)
        p_call = parties.connected(pda)
        assert p_call is not None
        before = a_call.monitor.frames
        await wait_for(lambda: p_call.monitor.frames > 20 and a_call.monitor.frames > before + 20)
        assert p_call.monitor.dominant([440, 1000]) == 440
        assert a_call.monitor.dominant([440, 1000]) == 1000
        assert a_call.media.tx is tx and a_call.media.rx is rx
        assert a_call.media.remote_rtp == p_call.media.local_rtp  # type: ignore[union-attr]
        assert laptop.call(parties.call_id).state.value == "ended"
        assert auth_failures(a_call) == 0 and auth_failures(p_call) == 0
        # and back: the PDA moves the call to the laptop
        result = await pda.move(p_call.call_id, "laptop")
        assert isinstance(result, TransferSucceeded), result
        await wait_for(lambda: parties.connected(laptop) is not None)
        l_call = parties.connected(laptop)
        assert l_call is not None
        await wait_for(lambda: l_call.monitor.frames > 20)
        assert a_call.media.tx is tx and a_call.state.value == "connected"
        assert auth_failures(a_call) == 0 and auth_failures(l_call) == 0


async def test_pda_silent_call_stays() -> None:
    """The PDA never confirms (its hand-off tokens go nowhere): the move times out, no
    REFER is sent and the call goes on with the laptop."""
    async with three_parties() as parties:
        alice, laptop = parties.alice, parties.laptop
        a_call = alice.call(parties.call_id)
        entry = laptop.transfer.devices["pda"]
        laptop.transfer = replace(laptop.transfer, announce_timeout=0.5, devices={
            "pda": replace(entry, handoff=("127.0.0.1", 9))}, parallel_announce=False)
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferFailed) and result.status == 0
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert laptop.call(parties.call_id).state.value == "connected"
        assert a_call.call_id == parties.call_id and auth_failures(a_call) == 0


async def test_lost_token_in_parallel_mode_call_stays() -> None:
    """Parallel announce (the default): the REFER goes out at once; the PDA never got
    the token, so it refuses Alice's INVITE (603) and the call stays on the laptop."""
    async with three_parties() as parties:
        alice, laptop = parties.alice, parties.laptop
        a_call = alice.call(parties.call_id)
        entry = laptop.transfer.devices["pda"]
        laptop.transfer = replace(laptop.transfer, devices={
            "pda": replace(entry, handoff=("127.0.0.1", 9))})
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferFailed) and result.status == 603
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert laptop.call(parties.call_id).state.value == "connected"
        assert a_call.call_id == parties.call_id and auth_failures(a_call) == 0


async def test_target_not_answering_call_stays() -> None:
    """The PDA does not answer at all (nothing listens at its SIP address): Alice's
    INVITE fails or times out, the NOTIFY/timer ends the move, the call stays."""
    async with three_parties(transfer_timeout=3.0) as parties:
        alice, laptop = parties.alice, parties.laptop
        a_call = alice.call(parties.call_id)
        entry = laptop.transfer.devices["pda"]
        laptop.transfer = replace(laptop.transfer, transfer_timeout=3.0, devices={
            "pda": replace(entry, refer_to="sip:bob@127.0.0.1:9")})
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferFailed)
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert laptop.call(parties.call_id).state.value == "connected"
        assert a_call.call_id == parties.call_id and auth_failures(a_call) == 0


async def test_refer_to_unasked_device_refused_by_it() -> None:
    """A REFER to the PDA without any hand-off token (as a forged or buggy REFER would
    be): Alice INVITEs the PDA, the PDA refuses with 603 (it was not told to expect the
    call), the NOTIFY reports it and the call stays on the laptop, untouched."""
    async with three_parties() as parties:
        alice, laptop, pda = parties.alice, parties.laptop, parties.pda
        a_call = alice.call(parties.call_id)
        tx = a_call.media.tx if a_call.media else None
        target = SipUri.parse(laptop.transfer.devices["pda"].refer_to)
        laptop.sip.act(lambda ua, now: ua.refer(parties.call_id, target, now,
                                                referred_by=NameAddr.parse(BOB)))
        await wait_for(lambda: bool(alice.transfer_outcomes))
        assert alice.transfer_outcomes == [(parties.call_id, 603)]
        assert [status for _, status in pda.transfers_refused] == [603]
        assert parties.connected(pda) is None
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert a_call.call_id == parties.call_id and a_call.media is not None
        assert a_call.media.tx is tx and auth_failures(a_call) == 0


async def test_transfer_while_the_laptop_roams() -> None:
    """The laptop moves to a new address (verified re-INVITE with a MIKEY update,
    RFC 3830 §4.5, mobility.agent_roaming) and moves the call to the PDA at the same
    time: the call ends up on the PDA, Alice's SRTP sending session unchanged."""
    contexts = MoveContexts()
    async with three_parties(alice_reinvites=VerifyingReinvitePolicy(),
                             laptop_reinvites=VerifyingReinvitePolicy()) as parties:
        alice, laptop, pda = parties.alice, parties.laptop, parties.pda
        a_call = alice.call(parties.call_id)
        assert a_call.media is not None
        tx = a_call.media.tx
        await wait_for(lambda: a_call.monitor.frames > 10)
        roam = asyncio.create_task(move_agent_call(laptop, parties.call_id, "127.0.0.2",
                                                   contexts))
        await asyncio.sleep(0)
        result = await laptop.move(parties.call_id, "pda")
        with contextlib.suppress(Exception):  # the old leg may end before its answer
            await roam
        assert isinstance(result, TransferSucceeded), result
        await wait_for(lambda: parties.connected(pda) is not None)
        p_call = parties.connected(pda)
        assert p_call is not None and p_call.media is not None
        await asyncio.sleep(0.5)
        frames = p_call.monitor.frames
        await wait_for(lambda: p_call.monitor.frames > frames + 20)
        assert a_call.media.remote_rtp == p_call.media.local_rtp
        assert a_call.media.tx is tx
        assert auth_failures(a_call) == 0 and auth_failures(p_call) == 0


async def test_pda_pulls_the_call() -> None:
    """pull(): the PDA asks the laptop (PULL token) and the call comes to the PDA."""
    async with three_parties() as parties:
        alice, laptop, pda = parties.alice, parties.laptop, parties.pda
        a_call = alice.call(parties.call_id)
        await wait_for(lambda: a_call.monitor.frames > 10)
        p_call = await pda.pull("laptop")
        assert p_call is not None and p_call.secure
        await wait_for(lambda: laptop.call(parties.call_id).state.value == "ended")
        frames = p_call.monitor.frames
        await wait_for(lambda: p_call.monitor.frames > frames + 10)
        assert auth_failures(a_call) == 0 and auth_failures(p_call) == 0


async def test_forged_refer_to_attackers_box() -> None:
    """A REFER (as forged in the dialog) pointing at Mallory's agent, which claims to be
    Bob but has no credential of his: Alice's offer is encrypted to Bob's PSK only, so
    Mallory cannot answer it (488); Alice keeps the laptop and Mallory never gets a
    media packet."""
    mallory = CallAgent(AgentConfig(BOB, "127.0.0.1", 0, auto_answer=True,
                                    keying=KeyingConfig(peers={sip_identity(ALICE): PeerKeying(
                                        KeyMethod.PSK, bytes(32))})))
    await mallory.start()
    try:
        async with three_parties() as parties:
            alice, laptop = parties.alice, parties.laptop
            a_call = alice.call(parties.call_id)
            assert a_call.media is not None
            tx = a_call.media.tx
            host, port = mallory.sip.local_address
            target = SipUri.parse(f"sip:bob@{host}:{port}")
            laptop.sip.act(lambda ua, now: ua.refer(parties.call_id, target, now,
                                                    referred_by=NameAddr.parse(BOB)))
            await wait_for(lambda: bool(alice.transfer_outcomes))
            (outcome,) = alice.transfer_outcomes
            assert outcome[1] >= 400
            assert all(c.media is None for c in mallory.calls.values())
            assert not any(c.state.value == "connected" for c in mallory.calls.values())
            frames = a_call.monitor.frames
            await wait_for(lambda: a_call.monitor.frames > frames + 10)
            assert a_call.call_id == parties.call_id and a_call.media.tx is tx
            assert a_call.media.remote_rtp == laptop.call(parties.call_id).media.local_rtp  # type: ignore[union-attr]
            assert auth_failures(a_call) == 0
    finally:
        await mallory.close()


class _RecordingPda(TransferAgent):
    """The PDA, keeping every INVITE it received (what a wiretapper captures)."""

    invites: list[Request]

    def _on_invite(self, event: ev.IncomingCallReceived) -> None:
        self.invites = [*getattr(self, "invites", []), event.request]
        super()._on_invite(event)


class _WrongMacPda(TransferAgent):
    """A PDA whose MIKEY answer carries a wrong MAC (last octet flipped)."""

    async def answer(self, call_id: str, *, audio: AudioOptions | None = None) -> None:
        call = self.call(call_id)
        plan = call.plan
        if plan is not None and plan.media_reply:
            reply = plan.media_reply
            call.plan = replace(plan, media_reply=reply[:-1] + bytes((reply[-1] ^ 1,)))
        await super().answer(call_id, audio=audio)


async def test_pda_answer_with_wrong_mac_refused_call_stays() -> None:
    """RFC 3830 §5.2: Alice refuses the PDA's answer (wrong MAC), ends that leg, the
    NOTIFY reports 488 and the call stays on the laptop, untouched."""
    async with three_parties(pda_class=_WrongMacPda) as parties:
        alice, laptop = parties.alice, parties.laptop
        a_call = alice.call(parties.call_id)
        assert a_call.media is not None
        tx = a_call.media.tx
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferFailed) and result.status == 488
        assert alice.transfer_outcomes == [(parties.call_id, 488)]
        frames = a_call.monitor.frames
        await wait_for(lambda: a_call.monitor.frames > frames + 10)
        assert a_call.call_id == parties.call_id and a_call.media.tx is tx
        assert a_call.media.remote_rtp == laptop.call(parties.call_id).media.local_rtp  # type: ignore[union-attr]
        assert laptop.call(parties.call_id).state.value == "connected"
        assert auth_failures(a_call) == 0


async def test_replayed_transfer_invite_refused() -> None:
    """A captured transfer INVITE sent again as a new request (new Call-ID, branch and
    tag) after the transfer: the PDA refuses it (603, the expectation is spent) and
    takes no second call."""
    async with three_parties(pda_class=_RecordingPda) as parties:
        laptop, pda = parties.laptop, parties.pda
        assert isinstance(pda, _RecordingPda)
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferSucceeded)
        (captured,) = pda.invites
        replay = parse_message(bytes(captured))
        assert isinstance(replay, Request)
        replay.headers.set("Call-ID", "replayed-" + captured.call_id)
        via = captured.headers.get("Via") or ""
        replay.headers.set("Via", via.replace("branch=z9hG4bK", "branch=z9hG4bKreplay"))
        from_ = captured.headers.get("From") or ""
        replay.headers.set("From", from_.replace("tag=", "tag=replay"))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.sendto(bytes(replay), pda.sip.local_address)
            await wait_for(lambda: len(pda.invites) == 2)
            await wait_for(lambda: bool(pda.transfers_refused))
        finally:
            sock.close()
        assert pda.transfers_refused == [("replayed-" + captured.call_id, 603)]
        assert len([c for c in pda.calls.values() if c.state.value == "connected"]) == 1


class _LaptopLosingItsBye(TransferAgent):
    """A laptop that keeps the call up after the move (as if its BYE were lost): it
    still listens, so Alice's copies reach it."""

    async def hangup(self, call_id: str) -> None:
        del call_id


async def test_switch_resends_last_packet_and_fans_out_to_both_devices() -> None:
    """Issue 6 step 4 / thesis §15.1: once the PDA's answer verified, Alice's stream
    goes to the PDA -- first her last packet again, the same SRTP bytes (RFC 3711
    §9.1), so the PDA need not wait for her next tick -- and a copy to the laptop until
    its BYE; with the BYE lost, for ``fan_out_seconds``; then only to the PDA. Both
    decrypt every packet: no auth failure, no replay."""
    async with three_parties(laptop_class=_LaptopLosingItsBye) as parties:
        alice, laptop, pda = parties.alice, parties.laptop, parties.pda
        alice.transfer = replace(alice.transfer, fan_out_seconds=0.5)
        a_call = alice.call(parties.call_id)
        l_call = laptop.call(parties.call_id)
        assert a_call.media is not None and l_call.media is not None
        a_media, l_media = a_call.media, l_call.media
        await wait_for(lambda: a_call.monitor.frames > 10)
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferSucceeded), result
        assert a_media.counters.rtp_resent == 1
        assert a_media.fan_out_rtp == l_media.local_rtp  # both devices now
        p_call = parties.connected(pda)
        assert p_call is not None and p_call.media is not None
        await wait_for(lambda: a_media.fan_out_rtp is None)  # 0.5 s later
        copies = a_media.counters.fanned_out
        assert copies >= 10
        laptop_got = l_media.counters.rtp_received
        await asyncio.sleep(0.2)
        assert a_media.counters.fanned_out == copies  # then only the PDA
        assert l_media.counters.rtp_received == laptop_got
        assert p_call.media.counters.rtp_received >= copies
        for media in (l_media, p_call.media):
            assert media.counters.replays == 0 and media.counters.auth_failures == 0
        assert auth_failures(l_call) == 0 and auth_failures(p_call) == 0


async def test_fan_out_ends_with_the_old_devices_bye() -> None:
    """With the laptop's BYE arriving, the copy to it ends then (not after the
    fan_out_seconds cap)."""
    async with three_parties() as parties:
        alice, laptop = parties.alice, parties.laptop
        alice.transfer = replace(alice.transfer, fan_out_seconds=30.0)
        a_call = alice.call(parties.call_id)
        assert a_call.media is not None
        await wait_for(lambda: a_call.monitor.frames > 10)
        result = await laptop.move(parties.call_id, "pda")
        assert isinstance(result, TransferSucceeded), result
        await wait_for(lambda: a_call.media is not None and a_call.media.fan_out_rtp is None,
                       timeout=5.0)
