"""The return-routability gate fed events alone, with a hand-advanced clock."""

from __future__ import annotations

import pytest

from mobilityd.media.errors import MediaLocalError
from mobilityd.media.events import (
    RemoteAddressConfirmed,
    RemoteAddressProposed,
    UnconfirmedSourceSeen,
)
from mobilityd.media.routability import ReturnRoutabilityGate

OLD, NEW, EVIL = ("10.0.0.2", 4000), ("10.9.0.7", 4000), ("192.0.2.66", 666)


def gate(mux: bool = False) -> ReturnRoutabilityGate:
    g = ReturnRoutabilityGate(rtcp_mux=mux)
    g.set_remote(OLD)
    return g


def test_packet_after_proposal_confirms() -> None:
    g = gate()
    assert g.propose(NEW, None, any_source=False, now=1.0) == [
        RemoteAddressProposed(NEW, ("10.9.0.7", 4001))]
    assert g.remote_rtp == OLD
    assert g.authenticated(OLD, rtcp=False, now=1.1) == []
    (event,) = g.authenticated(NEW, rtcp=False, now=1.2)
    assert event == RemoteAddressConfirmed(OLD, NEW, ("10.9.0.7", 4001), False, 1.2)
    assert (g.remote_rtp, g.remote_rtcp, g.proposal) == (NEW, ("10.9.0.7", 4001), None)


def test_unproposed_source_never_moves_and_is_reported_once() -> None:
    g = gate()
    assert g.authenticated(EVIL, rtcp=False, now=1.0) == [UnconfirmedSourceSeen(EVIL, False)]
    assert g.authenticated(EVIL, rtcp=False, now=1.1) == []
    assert g.remote_rtp == OLD and g.unconfirmed_packets == 2


def test_either_order_within_lifetime_only() -> None:
    g = gate()
    g.authenticated(NEW, rtcp=False, now=10.0)
    events = g.propose(None, None, any_source=True, now=10.0 + 32.0)
    assert isinstance(events[-1], RemoteAddressConfirmed) and g.remote_rtp == NEW

    late = gate()
    late.authenticated(NEW, rtcp=False, now=10.0)
    events = late.propose(None, None, any_source=True, now=10.0 + 32.1)
    assert events == [RemoteAddressProposed(None, None)] and late.remote_rtp == OLD


def test_proposal_consumed_once() -> None:
    g = gate()
    g.propose(None, None, any_source=True, now=0.0)
    g.authenticated(NEW, rtcp=False, now=0.1)
    assert g.remote_rtp == NEW
    assert g.authenticated(EVIL, rtcp=False, now=0.2) == [UnconfirmedSourceSeen(EVIL, False)]
    assert g.remote_rtp == NEW


def test_hint_is_not_trusted_with_any_source() -> None:
    """A rewritten c= line (EVIL) is only a hint: the authenticated source decides."""
    g = gate()
    g.propose(EVIL, None, any_source=True, now=0.0)
    (event,) = g.authenticated(NEW, rtcp=False, now=0.1)
    assert isinstance(event, RemoteAddressConfirmed) and g.remote_rtp == NEW


def test_confirmation_by_srtcp_derives_rtp_port() -> None:
    g = gate()
    g.propose(None, None, any_source=True, now=0.0)
    g.authenticated(("10.9.0.7", 4001), rtcp=True, now=0.1)
    assert (g.remote_rtp, g.remote_rtcp) == (NEW, ("10.9.0.7", 4001))
    muxed = gate(mux=True)
    muxed.propose(None, None, any_source=True, now=0.0)
    muxed.authenticated(NEW, rtcp=True, now=0.1)
    assert (muxed.remote_rtp, muxed.remote_rtcp) == (NEW, NEW)


def test_latch_when_nothing_known_and_misuse() -> None:
    g = ReturnRoutabilityGate(rtcp_mux=True)
    (event,) = g.authenticated(NEW, rtcp=False, now=0.0)
    assert isinstance(event, RemoteAddressConfirmed) and event.previous is None
    with pytest.raises(MediaLocalError):
        g.propose(None, None, any_source=False, now=0.0)
