"""The receiver's per-packet index estimate (inlined in ReceptionStats.update and
SrtpSession.unprotect_fields) agrees with the reference RFC 3711 §3.3.1 estimate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mobilityd.bench.media_load import call_keys, rtp_packet, sender_session, tone_payloads
from mobilityd.media.srtp import Direction, SrtpSession
from mobilityd.media.stats import StreamCounters, estimate_index
from mobilityd.media.stream import ReceptionStats


@given(st.integers(0, 0xFFFF), st.lists(st.integers(-40_000, 40_000), max_size=60))
def test_reception_stats_highest_index_follows_rfc3711_estimate(
    first: int, steps: list[int]
) -> None:
    stats = ReceptionStats(0x1234)
    stats.update(first, 0, 0.0)
    highest = first
    seq = first
    for step in steps:
        seq = (seq + step) & 0xFFFF
        stats.update(seq, 0, 0.0)
        highest = max(highest, estimate_index(highest >> 16, highest & 0xFFFF, seq))
        assert stats.highest_index == highest
    assert stats.received == len(steps) + 1


def test_unprotect_fields_gives_the_header_of_the_decrypted_packet() -> None:
    """RFC 3550 §5.1 fields read once after RFC 3711 §3.3 unprotect."""
    payload = tone_payloads()[0]
    sender = sender_session(3)
    receiver = SrtpSession(call_keys(3), Direction.INBOUND)
    for seq in (0, 1, 65535):
        plain = rtp_packet(3, seq, payload)
        rtp, sequence, timestamp, ssrc = receiver.unprotect_fields(sender.protect(plain))
        assert rtp == plain
        assert (sequence, timestamp, ssrc) == (seq, (seq * 160) & 0xFFFFFFFF, 0x10003)
    assert receiver.counters(0x10003).packets == 3


@given(st.integers(0, 3), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_stream_counters_index_of_is_the_rfc3711_estimate(roc: int, highest: int, seq: int) -> None:
    counters = StreamCounters(0x1234, initial_roc=roc)
    counters.accept(highest, 0)
    assert counters.index_of(seq) == estimate_index(roc, highest, seq)
