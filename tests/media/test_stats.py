"""Packet-index estimation (RFC 3711 §3.3.1) and loss counting (RFC 3550 §A.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mobilityd.media.stats import StreamCounters, estimate_index


def test_estimate_index_cases_of_rfc3711_3_3_1() -> None:
    assert estimate_index(0, 65535, 0) == 1 << 16  # wrap forward
    assert estimate_index(1, 2, 65534) == 65534  # late packet from before the wrap
    assert estimate_index(0, 100, 65000) == 65000  # ROC never goes below 0
    assert estimate_index(5, 40000, 39000) == (5 << 16) | 39000


@given(st.integers(0, 3), st.integers(0, 65535), st.lists(st.integers(-300, 3000), max_size=60))
def test_accept_agrees_with_index_of(roc: int, start: int, steps: list[int]) -> None:
    """The fast path equals index_of + record for any walk of sequence numbers."""
    fast = StreamCounters(1, initial_roc=roc)
    slow = StreamCounters(1, initial_roc=roc)
    position = (roc << 16) | start
    for step in [0, *steps]:
        position = max(position + step, 0)
        seq = position & 0xFFFF
        expected = slow.index_of(seq)
        slow.record(expected, 10)
        assert fast.accept(seq, 10) == expected
    assert fast.snapshot() == slow.snapshot()


def test_lost_counts_gaps() -> None:
    counters = StreamCounters(7)
    for seq in (10, 11, 14, 15):
        counters.accept(seq, 1)
    assert counters.lost == 2
    assert counters.snapshot().roc == 0
