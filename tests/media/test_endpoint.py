"""MediaEndpoint over real loopback UDP: SRTP both ways, RTCP (separate and RFC 5761
mux), symmetric RTP (RFC 4961), rebind with the same SRTP sessions, and the
return-routability gate (issue 5 step 4). Waits are bounded (hang guards only)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from mobilityd.media import g711
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.errors import MediaLocalError
from mobilityd.media.events import (
    Address,
    AuthFailureCounted,
    FirstPacketReceived,
    LocalAddressChanged,
    MediaEvent,
    RemoteAddressConfirmed,
    UnconfirmedSourceSeen,
)
from mobilityd.media.rtcp import ReceiverReport, build_compound, parse_compound
from mobilityd.media.rtp import RtpPacket, build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession
from mobilityd.media.tone import ToneGenerator, dominant_frequency

A_KEYS = SrtpKeys(bytes(range(16)), bytes(range(14)))
B_KEYS = SrtpKeys(bytes(range(16, 32)), bytes(range(14, 28)))
A_SSRC, B_SSRC = 0xA0A0A0A0, 0xB0B0B0B0
WAIT = 5.0


class Peer:
    """One endpoint plus what it received and the events it reported."""

    def __init__(self, ip: str, tx_keys: SrtpKeys, rx_keys: SrtpKeys, *, mux: bool) -> None:
        self.rtp: list[tuple[bytes, Address]] = []
        self.rtcp: list[tuple[bytes, Address]] = []
        self.events: list[MediaEvent] = []
        self.tx = SrtpSession(tx_keys, Direction.OUTBOUND, keep_index_history=True)
        self.rx = SrtpSession(rx_keys, Direction.INBOUND)
        self.endpoint = MediaEndpoint(
            ip, tx=self.tx, rx=self.rx, rtcp_mux=mux,
            on_rtp=lambda data, src: self.rtp.append((data, src)),
            on_rtcp=lambda data, src: self.rtcp.append((data, src)),
            on_event=self.events.append,
        )
        self.seq = 65530  # so that the ROC wraps during the tests

    def send(self, ssrc: int, payload: bytes = b"\xff" * 160) -> bytes:
        packet = build_rtp(0, self.seq, self.seq * 160, ssrc, payload)
        self.seq += 1
        self.endpoint.send_rtp(packet)
        return packet

    def events_of(self, kind: type) -> list[MediaEvent]:
        return [e for e in self.events if isinstance(e, kind)]


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), WAIT)


async def call(mux: bool = False, ip_a: str = "127.0.0.1", ip_b: str = "127.0.0.1"
               ) -> tuple[Peer, Peer]:
    alice = Peer(ip_a, A_KEYS, B_KEYS, mux=mux)
    bob = Peer(ip_b, B_KEYS, A_KEYS, mux=mux)
    await alice.endpoint.open()
    await bob.endpoint.open()
    alice.endpoint.set_remote(bob.endpoint.local_rtp, bob.endpoint.local_rtcp)
    bob.endpoint.set_remote(alice.endpoint.local_rtp, alice.endpoint.local_rtcp)
    return alice, bob


@pytest.mark.parametrize("mux", [False, True], ids=["separate", "rtcp-mux"])
async def test_srtp_audio_and_rtcp_both_ways(mux: bool) -> None:
    alice, bob = await call(mux)
    try:
        if not mux:
            assert alice.endpoint.local_rtp[1] % 2 == 0
            assert alice.endpoint.local_rtcp[1] == alice.endpoint.local_rtp[1] + 1
        else:
            assert alice.endpoint.local_rtcp == alice.endpoint.local_rtp
        tone = ToneGenerator(1000, 0.4)
        sent = [alice.send(A_SSRC, g711.encode(tone.read_frame())) for _ in range(10)]
        bob.send(B_SSRC)
        alice.endpoint.send_rtcp(build_compound([ReceiverReport(A_SSRC)]))
        await until(lambda: len(bob.rtp) == 10 and len(alice.rtp) == 1 and len(bob.rtcp) == 1)
        assert [data for data, _ in bob.rtp] == sent
        # symmetric RTP: packets come from the port we send to (RFC 4961)
        assert {src for _, src in bob.rtp} == {alice.endpoint.local_rtp}
        assert alice.rtp[0][1] == bob.endpoint.local_rtp
        assert bob.rtcp[0][1] == alice.endpoint.local_rtcp
        assert parse_compound(bob.rtcp[0][0]) == (ReceiverReport(A_SSRC),)
        pcm = g711.decode(b"".join(RtpPacket.parse(d).payload for d, _ in bob.rtp))
        assert dominant_frequency(pcm, [440, 1000, 1400]) == 1000
        assert bob.rx.counters(A_SSRC).packets == 10
        assert bob.rx.get_roc(A_SSRC) == 1
        first = bob.events_of(FirstPacketReceived)
        assert first and isinstance(first[0], FirstPacketReceived) and first[0].ssrc == A_SSRC
        assert bob.endpoint.counters.auth_failures == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_forged_and_replayed_packets_are_dropped_and_change_nothing() -> None:
    """RFC 3711 §3.3.2: a captured genuine packet replayed from the attacker's address
    (which signalling even proposed) fails the replay check and moves nothing."""
    alice, bob = await call()
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.3", 0))
    try:
        genuine = alice.tx.protect(build_rtp(0, alice.seq, 0, A_SSRC, b"\x00" * 20))
        alice.seq += 1
        alice.endpoint.send_protected_rtp(genuine)
        await until(lambda: len(bob.rtp) == 1)
        bob.endpoint.propose_remote(attacker.getsockname())  # e.g. a rewritten c= line
        attacker.sendto(genuine, bob.endpoint.local_rtp)  # replay of a captured packet
        attacker.sendto(b"\x80" + bytes(40), bob.endpoint.local_rtp)  # forgery
        await until(lambda: bob.endpoint.counters.replays == 1
                    and bob.endpoint.counters.auth_failures == 1)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        assert not bob.events_of(RemoteAddressConfirmed)
        assert len(bob.events_of(AuthFailureCounted)) == 2
        assert bob.rx.counters(A_SSRC).replays == 1 and len(bob.rtp) == 1
    finally:
        attacker.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_unauthenticated_packets_never_move_the_stream() -> None:
    alice, bob = await call()
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.3", 0))
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        bob.endpoint.propose_remote(attacker.getsockname())
        forged = build_rtp(0, 1, 1, A_SSRC, b"\x00" * 20) + bytes(10)
        for _ in range(5):
            attacker.sendto(forged, bob.endpoint.local_rtp)
            attacker.sendto(bytes(30), bob.endpoint.local_rtcp)
        await until(lambda: bob.endpoint.counters.auth_failures >= 5
                    and bob.endpoint.counters.malformed + bob.endpoint.counters.auth_failures
                    >= 10)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        assert bob.endpoint.pending_remote == attacker.getsockname()
        assert not bob.events_of(RemoteAddressConfirmed)
        assert bob.rx.counters(A_SSRC).packets == 1
    finally:
        attacker.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_rebind_keeps_sessions_and_gate_confirms_on_authenticated_packet() -> None:
    alice, bob = await call()
    try:
        tx_before, rx_before = alice.endpoint.tx, alice.endpoint.rx
        old = alice.endpoint.local_rtp
        for _ in range(3):
            alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 3)
        await alice.endpoint.rebind("127.0.0.1")  # where it is already: nothing changes
        assert alice.endpoint.local_rtp == old and not alice.events_of(LocalAddressChanged)
        await alice.endpoint.rebind("127.0.0.2")
        assert alice.endpoint.tx is tx_before and alice.endpoint.rx is rx_before
        new = alice.endpoint.local_rtp
        assert new == ("127.0.0.2", old[1])  # same port where free
        changed = alice.events_of(LocalAddressChanged)
        assert changed == [LocalAddressChanged(old, new, alice.endpoint.local_rtcp)]

        # Bob has not been told: Alice's authenticated packets are delivered, not followed.
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 4)
        assert bob.rtp[-1][1] == new
        assert bob.endpoint.remote_rtp == old
        assert bob.events_of(UnconfirmedSourceSeen)

        # The verified update arrives: propose, then the next authenticated packet confirms
        # (the earlier packet is not taken as proof here: lifetime 0).
        bob.endpoint.proof_lifetime = 0.0
        await asyncio.sleep(0.01)
        bob.endpoint.propose_remote(new)
        assert bob.endpoint.remote_rtp == old
        alice.send(A_SSRC)
        await until(lambda: bob.endpoint.remote_rtp == new)
        confirmed = bob.events_of(RemoteAddressConfirmed)
        assert len(confirmed) == 1 and isinstance(confirmed[0], RemoteAddressConfirmed)
        assert confirmed[0].previous == old and confirmed[0].rtcp == alice.endpoint.local_rtcp

        bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) == 1)
        assert alice.rtp[0][1] == bob.endpoint.local_rtp
        # indices continued across the move, none reused, no failures anywhere
        assert alice.tx.index_history is not None and len(alice.tx.index_history) == 5
        assert bob.rx.counters(A_SSRC).packets == 5 and bob.rx.counters(A_SSRC).lost == 0
        assert bob.rx.get_roc(A_SSRC) == alice.tx.get_roc(A_SSRC)
        assert bob.endpoint.counters.auth_failures == alice.endpoint.counters.auth_failures == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_packet_before_proposal_counts_as_proof() -> None:
    """Either order (issue 5 step 4): the moving side's first packet from its new address
    often arrives before the verified update; the proposal then confirms at once."""
    alice, bob = await call()
    try:
        await alice.endpoint.rebind("127.0.0.2")
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        assert bob.endpoint.remote_rtp != alice.endpoint.local_rtp
        bob.endpoint.propose_remote(None, any_source=True)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        assert bob.endpoint.pending_remote is None
        # the proposal was consumed: a later unauthenticated or unproposed move changes nothing
        await alice.endpoint.rebind("127.0.0.4")
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 2)
        assert bob.endpoint.remote_rtp == ("127.0.0.2", alice.endpoint.local_rtp[1])
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_any_source_proposal_follows_authenticated_media_not_the_hint() -> None:
    """A c= line rewritten to the attacker: the stream goes where authenticated media
    comes from, never to the hint (issue 5, on-path attacker)."""
    alice, bob = await call()
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.3", 0))
    try:
        await alice.endpoint.rebind("127.0.0.2")
        bob.endpoint.propose_remote(attacker.getsockname(), any_source=True)
        attacker.sendto(bytes(50), bob.endpoint.local_rtp)
        alice.send(A_SSRC)
        await until(lambda: bob.endpoint.remote_rtp == alice.endpoint.local_rtp)
        assert bob.endpoint.remote_rtcp == alice.endpoint.local_rtcp
        assert bob.endpoint.counters.malformed + bob.endpoint.counters.auth_failures == 1
    finally:
        attacker.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_confirmation_by_srtcp_and_plain_rtp_mode() -> None:
    alice, bob = await call(mux=True)
    try:
        await alice.endpoint.rebind("127.0.0.2")
        bob.endpoint.propose_remote(alice.endpoint.local_rtp)
        alice.endpoint.send_rtcp(build_compound([ReceiverReport(A_SSRC)]))
        await until(lambda: bob.endpoint.remote_rtp == alice.endpoint.local_rtp)
        confirmed = bob.events_of(RemoteAddressConfirmed)
        assert isinstance(confirmed[0], RemoteAddressConfirmed) and confirmed[0].confirmed_by_rtcp
    finally:
        alice.endpoint.close()
        bob.endpoint.close()
    plain_in: list[bytes] = []
    receiver = MediaEndpoint("127.0.0.1", tx=None, rx=None,
                             on_rtp=lambda data, src: plain_in.append(data))
    sender = MediaEndpoint("127.0.0.1", tx=None, rx=None)
    await receiver.open()
    await sender.open()
    try:
        assert sender.send_rtp(build_rtp(0, 1, 1, 5, b"x")) is False  # no remote yet
        sender.set_remote(receiver.local_rtp)
        sender.send_rtp(build_rtp(0, 1, 1, 5, b"x"))
        await until(lambda: len(plain_in) == 1)
        assert plain_in == [build_rtp(0, 1, 1, 5, b"x")]
        assert receiver.remote_rtp == sender.local_rtp  # latched: nothing was known
    finally:
        receiver.close()
        sender.close()


async def test_ipv6_loopback() -> None:
    alice, bob = await call(ip_a="::1", ip_b="::1")
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        assert bob.rtp[0][1] == alice.endpoint.local_rtp
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


@pytest.mark.parametrize("mux", [False, True], ids=["separate", "rtcp-mux"])
async def test_garbage_is_counted_never_raised(mux: bool) -> None:
    """Random datagrams on both sockets: each is counted as a failure, nothing escapes
    into the event loop, nothing is delivered, the remote never changes."""
    import random

    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    alice, bob = await call(mux)
    noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    noise.bind(("127.0.0.5", 0))
    generator = random.Random(4711)
    sent = 0
    try:
        for _ in range(150):
            size = generator.choice([0, 1, 2, 7, 8, 11, 12, 13, 21, 22, 40, 172, 1400])
            data = bytearray(generator.randbytes(size))
            if size > 1 and generator.random() < 0.5:
                data[0] = 0x80 | (data[0] & 0x3F)  # version 2, to pass the cheap checks
            target = bob.endpoint.local_rtcp if generator.random() < 0.3 else (
                bob.endpoint.local_rtp)
            noise.sendto(bytes(data), target)
            sent += 1
        counters = bob.endpoint.counters
        await until(lambda: counters.auth_failures + counters.replays + counters.malformed
                    == sent)
        assert bob.rtp == [] and bob.rtcp == []
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        assert loop_errors == []
        reported = [e.total for e in bob.events_of(AuthFailureCounted)
                    if isinstance(e, AuthFailureCounted)]
        assert reported == [1, 2, 4, 8, 16, 32, 64, 128]  # rate-limited, counts exact
    finally:
        noise.close()
        alice.endpoint.close()
        bob.endpoint.close()
        loop.set_exception_handler(None)


@pytest.mark.parametrize("mux", [False, True])
async def test_announce_after_rebind_confirms_new_address_without_rtp(mux: bool) -> None:
    """Issue 5 media gap: right after a rebind the mover sends one SRTCP empty RR
    (RFC 3550 §6.4.2, RC = 0) with its own SSRC; the peer's gate takes it as the
    authenticated-packet half of the proof (RFC 3711 §3.4) without any RTP frame."""
    alice, bob = await call(mux=mux)
    try:
        assert alice.endpoint.announce() is False  # no RTP sent yet: no SSRC, nothing sent
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        await alice.endpoint.rebind("127.0.0.2")
        bob.endpoint.propose_remote(None, any_source=True)
        assert alice.endpoint.announce() is True
        await until(lambda: bob.endpoint.remote_rtp == alice.endpoint.local_rtp)
        assert bob.endpoint.remote_rtcp == alice.endpoint.local_rtcp
        assert len(bob.rtp) == 1  # confirmed by the report alone
        confirmed = bob.events_of(RemoteAddressConfirmed)
        assert isinstance(confirmed[0], RemoteAddressConfirmed) and confirmed[0].confirmed_by_rtcp
        packets = parse_compound(bob.rtcp[-1][0])
        assert packets == (ReceiverReport(A_SSRC),)
        counters = bob.endpoint.counters
        assert counters.auth_failures == counters.replays == counters.malformed == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def _moved_after(alice: Peer, bob: Peer, sent_before: int) -> None:
    """Bob sends ``sent_before`` packets Alice receives; Alice rebinds (closing her old
    sockets) and announces from the new address."""
    for _ in range(sent_before):
        bob.send(B_SSRC)
    await until(lambda: len(alice.rtp) == sent_before)
    await alice.endpoint.rebind("127.0.0.2")


async def test_switch_resends_last_packet_the_moved_peer_never_got() -> None:
    """Issue 5 media gap: Bob's last packet went to Alice's old (closed) address; her
    report from the new one says she has not got it, so the switch re-sends the very
    same SRTP bytes there (no second protection of that index, RFC 3711 §9.1) and
    Alice accepts it: new to her replay list (RFC 3711 §3.3.2)."""
    alice, bob = await call()
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        await _moved_after(alice, bob, 3)
        lost = bob.send(B_SSRC)  # to Alice's old address: nobody listens there any more
        protected_before = bob.tx.counters(B_SSRC).packets
        assert alice.endpoint.announce() is True
        await until(lambda: len(bob.rtcp) == 1)
        report = parse_compound(bob.rtcp[0][0])[0]
        assert isinstance(report, ReceiverReport) and report.reports[0].ssrc == B_SSRC
        lost_seq = int.from_bytes(lost[2:4], "big")
        assert report.reports[0].highest_sequence & 0xFFFF == (lost_seq - 1) & 0xFFFF
        bob.endpoint.propose_remote(None, any_source=True)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        await until(lambda: len(alice.rtp) == 4)
        assert alice.rtp[-1][0] == lost
        assert bob.endpoint.counters.rtp_resent == 1
        assert bob.tx.counters(B_SSRC).packets == protected_before  # not protected again
        counters = alice.endpoint.counters
        assert counters.replays == counters.auth_failures == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_switch_does_not_resend_what_the_peer_reported_or_without_report() -> None:
    """The report says Alice got Bob's last packet: nothing is re-sent (it would be a
    replay at her end). A switch proven by RTP alone carries no such report: nothing
    is re-sent either."""
    alice, bob = await call()
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        await _moved_after(alice, bob, 3)
        alice.endpoint.announce()
        await until(lambda: len(bob.rtcp) == 1)
        bob.endpoint.propose_remote(None, any_source=True)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp
        await asyncio.sleep(0.05)
        assert bob.endpoint.counters.rtp_resent == 0 and len(alice.rtp) == 3
        # moved again, Bob's last packet lost, proof by RTP only: no re-send
        await alice.endpoint.rebind("127.0.0.4")
        bob.send(B_SSRC)
        bob.endpoint.propose_remote(None, any_source=True)
        alice.send(A_SSRC)
        await until(lambda: bob.endpoint.remote_rtp == alice.endpoint.local_rtp)
        await asyncio.sleep(0.05)
        assert bob.endpoint.counters.rtp_resent == 0 and len(alice.rtp) == 3
        assert alice.endpoint.counters.replays == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_resend_last_to_a_new_receiver() -> None:
    """Issue 6 (call transfer): Bob's stream switches to a device that never received
    it (Carol, holding Alice's keys as the user's other device does); resend_last()
    gives her Bob's last packet at once, the very same SRTP bytes (not protected
    again, RFC 3711 §9.1), which she decrypts (new to her replay list, RFC 3711
    §3.3.2). Nothing is sent before Bob sent anything or once closed."""
    alice, bob = await call()
    carol = Peer("127.0.0.1", A_KEYS, B_KEYS, mux=False)
    await carol.endpoint.open()
    try:
        assert bob.endpoint.resend_last() is False  # nothing sent yet
        for _ in range(3):
            last = bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) == 3)
        protected = bob.tx.counters(B_SSRC).packets
        bob.endpoint.set_remote(carol.endpoint.local_rtp, carol.endpoint.local_rtcp)
        assert bob.endpoint.resend_last() is True
        await until(lambda: len(carol.rtp) == 1)
        assert carol.rtp[0][0] == last
        assert bob.tx.counters(B_SSRC).packets == protected
        assert bob.endpoint.counters.rtp_resent == 1
        assert carol.endpoint.counters.auth_failures == carol.endpoint.counters.replays == 0
        bob.send(B_SSRC)  # the stream goes on from there
        await until(lambda: len(carol.rtp) == 2)
        assert carol.endpoint.counters.replays == 0
    finally:
        for peer in (alice, bob, carol):
            peer.endpoint.close()
    assert bob.endpoint.resend_last() is False  # closed


async def test_fan_out_sends_the_same_bytes_to_both_until_stopped() -> None:
    """Issue 6 / thesis §15.1: while the call moves, Bob's stream goes to the new
    device (Carol, where he sends) and a copy to the old one (Alice): the same SRTP
    bytes, protected once (RFC 3711 §9.1), decrypted by both; RTCP only to where he
    sends; fan_out(None) stops the copies."""
    alice, bob = await call()
    carol = Peer("127.0.0.1", A_KEYS, B_KEYS, mux=False)
    await carol.endpoint.open()
    try:
        bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) == 1)
        old = bob.endpoint.remote_rtp
        bob.endpoint.set_remote(carol.endpoint.local_rtp, carol.endpoint.local_rtcp)
        bob.endpoint.fan_out(old)
        assert bob.endpoint.fan_out_rtp == old
        protected = bob.tx.counters(B_SSRC).packets
        sent = [bob.send(B_SSRC) for _ in range(3)]
        await until(lambda: len(alice.rtp) == 4 and len(carol.rtp) == 3)
        assert [data for data, _ in carol.rtp] == sent == [data for data, _ in alice.rtp[1:]]
        assert bob.tx.counters(B_SSRC).packets == protected + 3  # once per packet
        assert bob.endpoint.counters.fanned_out == 3
        assert bob.endpoint.send_rtcp(bytes(ReceiverReport(B_SSRC))) is True
        await until(lambda: len(carol.rtcp) == 1)
        bob.endpoint.fan_out(None)
        bob.send(B_SSRC)
        await until(lambda: len(carol.rtp) == 4)
        await asyncio.sleep(0.05)
        assert len(alice.rtp) == 4 and alice.rtcp == []
        bob.endpoint.fan_out(carol.endpoint.local_rtp)  # a copy to where he sends: none
        bob.send(B_SSRC)
        await until(lambda: len(carol.rtp) == 5)
        assert bob.endpoint.counters.fanned_out == 3
        for peer in (alice, carol):
            counters = peer.endpoint.counters
            assert counters.auth_failures == counters.replays == 0
    finally:
        for peer in (alice, bob, carol):
            peer.endpoint.close()


@pytest.mark.parametrize("mux", [False, True])
async def test_both_move_at_once_probes_end_the_silence(mux: bool) -> None:
    """Issue 5 "both move at once": both rebind before either announce arrives (each
    announces to the other's old, closed sockets), both verified the other's update
    (propose_remote with any_source). Neither gate can confirm: each peer sends to the
    other's old address -- silence both ways. One probe each (the announce report sent
    to the verified SDP's addresses, MediaEndpoint.probe) ends it: each gate confirms
    only on the other's authenticated packet (step 4), no (SSRC, index) is protected
    twice (RFC 3711 §9.1), the SRTP sessions stay the same objects."""
    alice, bob = await call(mux=mux)
    sessions = (alice.tx, alice.rx, bob.tx, bob.rx)
    try:
        alice.send(A_SSRC)
        bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) == 1 and len(bob.rtp) == 1)
        await alice.endpoint.rebind("127.0.0.2")
        await bob.endpoint.rebind("127.0.0.3")
        assert alice.endpoint.announce() and bob.endpoint.announce()  # to the old: lost
        alice.endpoint.propose_remote(None, any_source=True)
        bob.endpoint.propose_remote(None, any_source=True)
        for _ in range(3):
            alice.send(A_SSRC)
            bob.send(B_SSRC)
        await asyncio.sleep(0.1)
        assert len(alice.rtp) == len(bob.rtp) == 1  # the deadlock: nothing arrives
        assert not alice.events_of(RemoteAddressConfirmed)
        assert not bob.events_of(RemoteAddressConfirmed)

        assert alice.endpoint.probe(bob.endpoint.local_rtp, bob.endpoint.local_rtcp) is True
        assert bob.endpoint.probe(alice.endpoint.local_rtp, alice.endpoint.local_rtcp) is True
        await until(lambda: alice.endpoint.remote_rtp == bob.endpoint.local_rtp
                    and bob.endpoint.remote_rtp == alice.endpoint.local_rtp)
        for _ in range(3):
            alice.send(A_SSRC)
            bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) >= 4 and len(bob.rtp) >= 4)
        assert alice.endpoint.remote_rtcp == bob.endpoint.local_rtcp
        assert bob.endpoint.remote_rtcp == alice.endpoint.local_rtcp
        for peer in (alice, bob):
            confirmed = peer.events_of(RemoteAddressConfirmed)
            assert len(confirmed) == 1
            counters = peer.endpoint.counters
            assert counters.auth_failures == counters.replays == counters.malformed == 0
            assert counters.probes_sent >= 1
            history = peer.tx.index_history
            assert history is not None and len(history) == peer.tx.counters(
                A_SSRC if peer is alice else B_SSRC).packets
        assert (alice.tx, alice.rx, bob.tx, bob.rx) == sessions
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_probe_is_not_a_redirect_and_is_bounded() -> None:
    """A probe to an address nobody authenticated (e.g. an SDP c= an on-path attacker
    rewrote: the MIKEY MAC does not cover it) gets the SRTCP report 1 + PROBE_RETRIES
    times (20, 40, 80 ms apart), never our RTP stream; where we send stays where it
    was. The probes are SRTCP receiver reports (RFC 3711 §3.4: header in the clear)."""
    from mobilityd.media.endpoint import PROBE_RETRIES, PROBE_RETRY_FIRST

    alice, bob = await call()
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.setblocking(False)
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        before = (alice.endpoint.remote_rtp, alice.endpoint.remote_rtcp)
        alice.endpoint.propose_remote(None, any_source=True)
        probed = target.getsockname()
        assert alice.endpoint.probe((probed[0], probed[1] - 1)) is True  # RTCP = port + 1
        await asyncio.sleep(PROBE_RETRY_FIRST * (2 ** PROBE_RETRIES) + 0.2)
        for _ in range(3):
            alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 4)
        got = []
        while True:
            try:
                got.append(target.recv(2048))
            except BlockingIOError:
                break
        assert len(got) == 1 + PROBE_RETRIES == alice.endpoint.counters.probes_sent
        assert all(p[1] == 201 and p[4:8] == A_SSRC.to_bytes(4, "big") for p in got)
        assert len(set(got)) == len(got)  # a fresh SRTCP index each (RFC 3711 §3.4)
        assert (alice.endpoint.remote_rtp, alice.endpoint.remote_rtcp) == before
        assert alice.events_of(RemoteAddressConfirmed) == []
    finally:
        target.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_probe_stops_once_a_new_address_is_confirmed() -> None:
    alice, bob = await call()
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    try:
        alice.send(A_SSRC)
        bob.send(B_SSRC)
        await until(lambda: len(alice.rtp) == 1 and len(bob.rtp) == 1)
        alice.endpoint.propose_remote(None, any_source=True)
        assert alice.endpoint.probe(target.getsockname(), target.getsockname()) is True
        await bob.endpoint.rebind("127.0.0.3")
        bob.endpoint.announce()
        await until(lambda: alice.endpoint.remote_rtp == bob.endpoint.local_rtp)
        sent = alice.endpoint.counters.probes_sent
        await asyncio.sleep(0.3)
        assert alice.endpoint.counters.probes_sent == sent  # no re-probe after that
    finally:
        target.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_probe_sends_nothing_where_it_has_no_point() -> None:
    """Before our first RTP packet (no SSRC for the report), to where we send RTCP
    anyway, to the other IP version, without a held unconfirmed move (none proposed,
    or the gate switched on the proposal: authenticated media from the new address
    came first, so no one waits); an address that is no (IP, port) is a
    MediaLocalError. None of them changes where we send."""
    from mobilityd.media.errors import MediaLocalError

    alice, bob = await call()
    try:
        alice.endpoint.propose_remote(None, any_source=True)
        assert alice.endpoint.probe(("127.0.0.1", 40000)) is False  # no SSRC yet
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        assert alice.endpoint.probe(bob.endpoint.local_rtp, bob.endpoint.local_rtcp) is False
        assert alice.endpoint.probe(("::1", 40000)) is False
        for bad in [("example.com", 40000), ("127.0.0.1", 0), ("127.0.0.1", 70000)]:
            with pytest.raises(MediaLocalError):
                alice.endpoint.probe(bad)
        with pytest.raises(MediaLocalError):
            alice.endpoint.probe(("127.0.0.1", 40000), ("nope", 1))
        assert alice.endpoint.counters.probes_sent == 0
        assert alice.endpoint.remote_rtp == bob.endpoint.local_rtp
        # the held move is confirmed by Bob's media from his new address: no one waits
        await bob.endpoint.rebind("127.0.0.3")
        bob.send(B_SSRC)
        await until(lambda: alice.endpoint.remote_rtp == bob.endpoint.local_rtp)
        assert alice.endpoint.probe(("127.0.0.1", 40000)) is False
        assert alice.endpoint.counters.probes_sent == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


def _queued(endpoint: MediaEndpoint, rtcp: bool) -> int:
    """Bytes waiting on the endpoint's RTCP (or RTP) socket, unread by the loop."""
    channel = endpoint._rtcp_channel if rtcp else endpoint._rtp_channel
    assert channel is not None
    sock = channel._sock
    try:
        return len(sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return 0


@pytest.mark.parametrize("mux", [False, True])
async def test_proposal_takes_an_announce_already_queued(mux: bool) -> None:
    """Issue 5 media gap: when the mover's SRTCP announce arrives while the peer
    verifies the update (delayed on its way, or sent after the re-INVITE), it is
    queued on the peer's socket. Proposing the verified move handles what is queued
    at once (same authentication, RFC 3711 §3.4): the stream switches inside
    propose_remote, without another loop turn."""
    alice, bob = await call(mux=mux)
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        await alice.endpoint.rebind("127.0.0.2")
        loop = asyncio.get_running_loop()
        assert alice.endpoint.announce() is True  # no await: bob's loop has not read it
        deadline = loop.time() + WAIT
        while not _queued(bob.endpoint, rtcp=not mux) and loop.time() < deadline:
            pass  # loopback delivers within microseconds; never yield to the loop here
        assert bob.rtcp == []
        bob.endpoint.propose_remote(None, any_source=True)
        assert bob.endpoint.remote_rtp == alice.endpoint.local_rtp  # switched right here
        assert bob.endpoint.remote_rtcp == alice.endpoint.local_rtcp
        confirmed = bob.events_of(RemoteAddressConfirmed)
        assert len(confirmed) == 1
        assert isinstance(confirmed[0], RemoteAddressConfirmed) and confirmed[0].confirmed_by_rtcp
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_proposal_takes_nothing_from_a_forged_queued_packet() -> None:
    """What propose_remote takes from the queue goes through SRTCP authentication
    first (RFC 3711 §3.4): a forged report queued from a new address is counted as an
    authentication failure and moves nothing."""
    alice, bob = await call()
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        forger.bind(("127.0.0.3", 0))
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        forged = bytearray(alice.tx.protect_rtcp(build_compound([ReceiverReport(A_SSRC)])))
        forged[-1] ^= 0x01  # the authentication tag no longer matches
        forger.sendto(bytes(forged), bob.endpoint.local_rtcp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not _queued(bob.endpoint, rtcp=True) and loop.time() < deadline:
            pass
        before = bob.endpoint.remote_rtp
        bob.endpoint.propose_remote(None, any_source=True)
        assert bob.endpoint.remote_rtp == before
        assert bob.endpoint.counters.auth_failures == 1
        assert bob.events_of(RemoteAddressConfirmed) == []
    finally:
        forger.close()
        alice.endpoint.close()
        bob.endpoint.close()


async def test_make_before_break_rebind_keeps_receiving_on_the_old_address() -> None:
    """Issue 5 make-before-break: with ``keep_old_for`` the old sockets keep receiving
    (through the same SRTP authentication, RFC 3711 §3.3) while the peer still sends
    there; we send only from the new address; the next rebind (here: back to the old
    address, same ports) closes them first, and nothing is left open after close()."""
    alice, bob = await call()
    try:
        alice.send(A_SSRC)
        await until(lambda: len(bob.rtp) == 1)
        old_rtp = alice.endpoint.local_rtp
        await alice.endpoint.rebind("127.0.0.2", keep_old_for=30.0)
        assert alice.endpoint.retired_addresses == [old_rtp, (old_rtp[0], old_rtp[1] + 1)]
        still_old = bob.send(B_SSRC)  # Bob has not switched yet: to the old address
        await until(lambda: len(alice.rtp) == 1)
        assert alice.rtp[0] == (still_old, bob.endpoint.local_rtp)
        alice.send(A_SSRC)  # from the new address only
        await until(lambda: len(bob.rtp) == 2)
        assert bob.endpoint.counters.unconfirmed_source == 1  # new source seen, not sent to
        await alice.endpoint.rebind(old_rtp[0], keep_old_for=30.0)  # back: same ports
        assert alice.endpoint.local_rtp == old_rtp
        assert alice.endpoint.retired_addresses == [("127.0.0.2", old_rtp[1]),
                                                    ("127.0.0.2", old_rtp[1] + 1)]
        alice.endpoint.close()
        assert alice.endpoint.retired_addresses == []
        counters = alice.endpoint.counters
        assert counters.auth_failures == counters.replays == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


@pytest.mark.parametrize("mux", [False, True], ids=["separate", "rtcp-mux"])
async def test_moving_back_takes_up_the_kept_sockets(mux: bool) -> None:
    """Issue 5 make-before-break, moving back within ``keep_old_for``: the kept
    sockets are taken up again (same ports), so a packet the peer sent to that address
    and that is still queued on them, unread, is received after the move instead of
    being dropped with a closed socket; it passes the same SRTP check (RFC 3711 §3.3).
    The sockets of the address left are kept in turn."""
    alice, bob = await call(mux)
    try:
        old_rtp, old_rtcp = alice.endpoint.local_rtp, alice.endpoint.local_rtcp
        await alice.endpoint.rebind("127.0.0.2", keep_old_for=30.0)
        new_rtp, new_rtcp = alice.endpoint.local_rtp, alice.endpoint.local_rtcp
        sent = bob.send(B_SSRC)  # Bob still sends to the old (kept) address
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while len(alice.endpoint.retired_addresses) and loop.time() < deadline:
            kept = alice.endpoint._retired[0]._sock
            try:
                if kept.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    break
            except BlockingIOError:
                continue
        # no loop iteration since the packet arrived: it waits on the kept socket
        await alice.endpoint.rebind(old_rtp[0], keep_old_for=30.0)
        assert (alice.endpoint.local_rtp, alice.endpoint.local_rtcp) == (old_rtp, old_rtcp)
        assert alice.endpoint.retired_addresses == ([new_rtp] if mux else [new_rtp, new_rtcp])
        await until(lambda: len(alice.rtp) == 1)
        assert alice.rtp[0] == (sent, bob.endpoint.local_rtp)
        alice.send(A_SSRC)  # sending works from the sockets taken up again
        await until(lambda: len(bob.rtp) == 1)
        assert bob.rtp[0][1] == old_rtp
        assert alice.endpoint.counters.auth_failures == alice.endpoint.counters.replays == 0
    finally:
        alice.endpoint.close()
        bob.endpoint.close()
    assert alice.endpoint.retired_addresses == []


async def test_rebind_to_a_third_address_closes_the_kept_sockets_after_the_move() -> None:
    """Kept sockets on an address we do not go back to are closed on the loop's next
    iteration (off the move's path), not left open until their timer."""
    alice, bob = await call(ip_a="127.0.0.1")
    try:
        await alice.endpoint.rebind("127.0.0.2", keep_old_for=30.0)
        first_kept = list(alice.endpoint._retired)
        await alice.endpoint.rebind("127.0.0.3", keep_old_for=30.0)
        assert alice.endpoint.local_rtp[0] == "127.0.0.3"
        assert [a[0] for a in alice.endpoint.retired_addresses] == ["127.0.0.2", "127.0.0.2"]
        await asyncio.sleep(0)
        assert all(channel.closed for channel in first_kept)
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_rebind_without_keep_old_closes_the_old_sockets_at_once() -> None:
    alice, bob = await call()
    try:
        await alice.endpoint.rebind("127.0.0.2")
        assert alice.endpoint.retired_addresses == []
        with pytest.raises(MediaLocalError):
            await alice.endpoint.rebind("127.0.0.1", keep_old_for=-1.0)
        with pytest.raises(MediaLocalError):
            await alice.endpoint.rebind("127.0.0.1", keep_old_for=float("nan"))
    finally:
        alice.endpoint.close()
        bob.endpoint.close()


async def test_second_copy_of_the_last_packet_is_a_duplicate_not_a_replay() -> None:
    """A make-before-break move: the peer's last packet reaches our kept old socket and
    its re-send on switch our new one -- the same SRTP bytes from the same address. The
    second copy is dropped as SRTP would drop it (RFC 3711 §3.3.2) but counted as a
    duplicate, not a replay; an older packet sent again is still a replay."""
    alice, bob = await call()
    try:
        first = alice.tx.protect(build_rtp(0, alice.seq, 0, A_SSRC, b"\x00" * 20))
        second = alice.tx.protect(build_rtp(0, alice.seq + 1, 160, A_SSRC, b"\x00" * 20))
        alice.seq += 2
        alice.endpoint.send_protected_rtp(first)
        alice.endpoint.send_protected_rtp(second)
        alice.endpoint.send_protected_rtp(second)  # the re-send's copy
        await until(lambda: bob.endpoint.counters.duplicates == 1)
        assert len(bob.rtp) == 2
        assert bob.endpoint.counters.replays == 0 and bob.rx.counters(A_SSRC).replays == 0
        alice.endpoint.send_protected_rtp(first)  # not the last one: a replay
        await until(lambda: bob.endpoint.counters.replays == 1)
        assert bob.rx.counters(A_SSRC).replays == 1 and len(bob.rtp) == 2
        assert bob.endpoint.counters.duplicates == 1
    finally:
        alice.endpoint.close()
        bob.endpoint.close()
