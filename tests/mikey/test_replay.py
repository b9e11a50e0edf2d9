"""Timestamps and the replay cache (RFC 3830 §4.2.8, §5.3, §5.4, §6.6)."""

from __future__ import annotations

import pickle

import pytest

from mobilityd.mikey.constants import ErrorType, TsType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.payloads import Timestamp
from mobilityd.mikey.replay import ReplayCache, ReplayedMessage
from mobilityd.mikey.timestamps import (
    NTP_UNIX_OFFSET,
    check_freshness,
    ntp_from_unix,
    timestamp_payload,
    unix_from_ntp,
)

NOW = 1_795_000_000.25  # 2026


def test_ntp_conversion_rfc3830_4_2_8() -> None:
    value = ntp_from_unix(NOW)
    assert value >> 32 == int(NOW) + NTP_UNIX_OFFSET
    assert value & 0xFFFFFFFF == 1 << 30  # .25 s
    assert unix_from_ntp(value, NOW) == NOW
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32


def test_ntp_era_rollover_2036_rfc3830_4_2_8() -> None:
    """Seconds overflow on 2036-02-07; the era closest to the receiver's clock wins."""
    rollover = (1 << 32) - NTP_UNIX_OFFSET
    after = rollover + 10.0
    value = ntp_from_unix(after)
    assert value >> 32 == 10  # wrapped
    assert unix_from_ntp(value, rollover - 5.0) == after
    before = rollover - 10.0
    assert unix_from_ntp(ntp_from_unix(before), rollover + 5.0) == before


def test_freshness_window_rfc3830_5_4() -> None:
    ts = timestamp_payload(NOW)
    assert check_freshness(ts, NOW + 30, window=60) == pytest.approx(NOW)
    for skew in (-61.0, 61.0):
        with pytest.raises(MikeyError) as info:
            check_freshness(ts, NOW + skew, window=60)
        assert info.value.error_type is ErrorType.INVALID_TS


def test_counter_timestamp_refused_unless_allowed_rfc3830_6_6() -> None:
    ts = Timestamp(TsType.COUNTER, 7)
    with pytest.raises(MikeyError) as info:
        check_freshness(ts, NOW, 60)
    assert info.value.error_type is ErrorType.INVALID_TS
    assert check_freshness(ts, NOW, 60, allow_counter=True) == 7.0
    with pytest.raises(ValueError):
        timestamp_payload(NOW, TsType.COUNTER)


def test_replay_detected_per_peer_and_csb() -> None:
    cache = ReplayCache(window=60)
    cache.remember((b"alice", 1, 100), NOW, NOW)
    with pytest.raises(ReplayedMessage) as info:
        cache.check((b"alice", 1, 100), NOW, NOW)
    assert info.value.error_type is ErrorType.INVALID_TS
    cache.check((b"bob", 1, 100), NOW, NOW)  # other peer, same timestamp: fine
    cache.check((b"alice", 2, 100), NOW, NOW)  # other CSB: fine
    cache.check((b"alice", 1, 101), NOW, NOW)


def test_entries_expire_with_the_window() -> None:
    cache = ReplayCache(window=60)
    cache.remember((b"alice", 1, 100), NOW, NOW)
    cache.check((b"bob", 1, 1), NOW + 61, NOW + 61)
    assert len(cache) == 0


def test_full_cache_evicts_oldest_and_refuses_older_timestamps() -> None:
    cache = ReplayCache(window=600, max_entries=3)
    for i in range(4):
        cache.remember((b"p", 1, i), NOW + i, NOW + i)
    assert len(cache) == 3 and cache.evictions == 1
    with pytest.raises(MikeyError) as info:  # the evicted message, replayed
        cache.check((b"p", 1, 0), NOW, NOW + 4)
    assert info.value.error_type is ErrorType.INVALID_TS
    with pytest.raises(ReplayedMessage):
        cache.check((b"p", 1, 3), NOW + 3, NOW + 4)
    cache.check((b"p", 1, 9), NOW + 4, NOW + 4)


def test_replay_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(ReplayedMessage()))
    assert isinstance(err, ReplayedMessage) and err.error_type is ErrorType.INVALID_TS
