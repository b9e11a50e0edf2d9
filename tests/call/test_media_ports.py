"""The media port range (``[media] rtp_port_min..rtp_port_max``, mobilityd.call.ports):
even RTP port + the next odd for RTCP (RFC 3550 §11), ports in use skipped, freed ones
taken again, a full range refused with a typed error naming it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from mobilityd.call.ports import MediaPortRange, MediaPortsExhausted, PortReservation

LOOPBACK = "127.0.0.1"


def _pair_free(port: int) -> bool:
    with contextlib.ExitStack() as stack:
        for p in (port, port + 1):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            try:
                sock.bind((LOOPBACK, p))
            except OSError:
                return False
    return True


def free_range(pairs: int, start: int = 41000) -> MediaPortRange:
    """A range of ``pairs`` pairs that are all free now (other tests share the host)."""
    low = start
    while low < 60000:
        if all(_pair_free(low + 2 * i) for i in range(pairs)):
            return MediaPortRange(low, low + 2 * pairs - 1)
        low += 2 * pairs + 2
    raise AssertionError("no free port window on loopback")


@contextlib.contextmanager
def held(port: int) -> Iterator[socket.socket]:
    """Something else on the host holding ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, port))
        yield sock


def test_pairs_are_even_rtp_and_next_odd_rtcp_from_the_lowest() -> None:
    port_range = free_range(3)
    first = port_range.reserve(LOOPBACK)
    second = port_range.reserve(LOOPBACK)
    try:
        assert first.port.rtp_port == port_range.low
        assert first.port.rtcp_port == port_range.low + 1
        assert second.port.rtp_port == port_range.low + 2  # the first is in use
        assert second.port.rtcp_port == port_range.low + 3
        assert all(r.port.rtp_port % 2 == 0 for r in (first, second))
    finally:
        first.release()
        second.release()


def test_ports_in_use_are_skipped_whether_rtp_or_rtcp() -> None:
    port_range = free_range(3)
    with held(port_range.low + 1):  # the first pair's RTCP port is taken by someone
        reservation = port_range.reserve(LOOPBACK)
        try:
            assert reservation.port.rtp_port == port_range.low + 2
        finally:
            reservation.release()


def test_freed_pair_is_reused() -> None:
    port_range = free_range(2)
    first = port_range.reserve(LOOPBACK)
    second = port_range.reserve(LOOPBACK)
    first.release()
    third = port_range.reserve(LOOPBACK)
    try:
        assert third.port == first.port
        assert not first.held and third.held
    finally:
        second.release()
        third.release()


def test_full_range_raises_typed_error_naming_it() -> None:
    port_range = free_range(2)
    taken = port_range.reserve_many(LOOPBACK, 2)
    try:
        with pytest.raises(MediaPortsExhausted) as info:
            port_range.reserve(LOOPBACK)
        assert str(port_range) in str(info.value)
        assert info.value.port_range == port_range
    finally:
        for reservation in taken:
            reservation.release()
    port_range.reserve(LOOPBACK).release()  # usable again once freed


def test_reserve_many_is_all_or_nothing() -> None:
    """The ``preferred`` policy's two pairs (RFC 3264 §5.1 SRTP + RTP alternatives)."""
    port_range = free_range(2)
    with held(port_range.low + 2), pytest.raises(MediaPortsExhausted):
        port_range.reserve_many(LOOPBACK, 2)
    # nothing of the failed attempt is left bound: both pairs are free again
    both: list[PortReservation] = port_range.reserve_many(LOOPBACK, 2)
    assert [r.port.rtp_port for r in both] == [port_range.low, port_range.low + 2]
    for reservation in both:
        reservation.release()


def test_odd_last_port_and_pair_count() -> None:
    assert MediaPortRange(16384, 16483).pairs == 50
    assert list(MediaPortRange(20000, 20004).rtp_ports()) == [20000, 20002]  # 20004 has no RTCP
    assert MediaPortRange(20000, 20005).pairs == 3
    assert str(MediaPortRange(16384, 16483)) == "16384-16483"


@pytest.mark.parametrize(("low", "high"), [(16385, 16483), (16384, 16384), (1000, 2000),
                                           (16384, 70000), (16484, 16384)])
def test_bad_ranges_are_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="bad media port range"):
        MediaPortRange(low, high)


def test_bind_pair_for_a_muxed_stream_binds_only_the_even_port() -> None:
    """RFC 5761: one port; still an even one of the range (the endpoint's rebind)."""
    port_range = free_range(2)
    with held(port_range.low):
        rtp, rtcp = port_range.bind_pair(LOOPBACK, True)
    try:
        assert rtcp is None and rtp.getsockname()[1] == port_range.low + 2
    finally:
        rtp.close()
