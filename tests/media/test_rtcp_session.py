"""RTCP over SRTCP between two endpoints (RFC 3550 §6.4, RFC 3711 §3.4): SR from the
sender's counters, RR blocks from reception statistics, round-trip time, final BYE."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.reports import RtcpReporter, SenderState
from mobilityd.media.rtcp import ReceiverReport, SenderReport
from mobilityd.media.rtcp_session import RtcpSession
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession

A_KEYS = SrtpKeys(bytes(range(16)), bytes(range(14)))
B_KEYS = SrtpKeys(bytes(range(16, 32)), bytes(range(14, 28)))


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), 10)


async def test_reports_both_ways_with_rtt_and_bye() -> None:
    sessions: dict[str, RtcpSession] = {}
    alice = MediaEndpoint("127.0.0.1", tx=SrtpSession(A_KEYS, Direction.OUTBOUND),
                          rx=SrtpSession(B_KEYS, Direction.INBOUND), rtcp_mux=True)
    bob = MediaEndpoint("127.0.0.1", tx=SrtpSession(B_KEYS, Direction.OUTBOUND),
                        rx=SrtpSession(A_KEYS, Direction.INBOUND))
    await alice.open()
    await bob.open()
    alice.set_remote(bob.local_rtp, bob.local_rtcp)
    bob.set_remote(alice.local_rtp, alice.local_rtcp)
    sent = {"a": 0}

    def alice_sent() -> SenderState | None:
        return SenderState(0xA, sent["a"], 160 * sent["a"], 160 * sent["a"])

    sessions["a"] = RtcpSession(alice, RtcpReporter(0xA, b"alice@127.0.0.1"), alice_sent,
                                random.Random(1).randbytes, interval_scale=0.01)
    sessions["b"] = RtcpSession(bob, RtcpReporter(0xB, b"bob@127.0.0.1"), lambda: None,
                                random.Random(2).randbytes, interval_scale=0.01)
    for endpoint, session in ((alice, sessions["a"]), (bob, sessions["b"])):
        endpoint.on_rtp, endpoint.on_rtcp = session.on_rtp, session.on_rtcp
    try:
        for seq in range(20):
            if seq != 7:  # one packet lost on purpose
                alice.send_rtp(build_rtp(0, seq, seq * 160, 0xA, b"\xff" * 160))
            sent["a"] += 1
        await until(lambda: sessions["b"].receptions.get(0xA) is not None
                    and sessions["b"].receptions[0xA].received == 19)
        for session in sessions.values():
            session.start()
        await until(lambda: sessions["a"].reporter.round_trip is not None
                    and sessions["b"].reports_received >= 2)
        srs = [r for r in sessions["b"].peer_reports if isinstance(r, SenderReport)]
        assert srs and srs[-1].packet_count == 20 and srs[-1].octet_count == 3200
        rrs = [r for r in sessions["a"].peer_reports if isinstance(r, ReceiverReport)]
        blocks = [b for r in rrs for b in r.reports if b.ssrc == 0xA]
        assert blocks and blocks[-1].cumulative_lost == 1 and blocks[-1].highest_sequence == 19
        round_trip = sessions["a"].reporter.round_trip
        assert round_trip is not None and round_trip >= 0
        sessions["a"].stop(send_bye=True, reason=b"hangup")
        await until(lambda: bool(sessions["b"].byes))
        assert sessions["b"].byes[0].ssrcs == (0xA,) and sessions["b"].byes[0].reason == b"hangup"
        assert alice.counters.auth_failures == bob.counters.auth_failures == 0
    finally:
        for session in sessions.values():
            session.stop(send_bye=False)
        alice.close()
        bob.close()
