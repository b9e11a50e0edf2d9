"""Direct libsrtp calls give exactly what pylibsrtp gives: same bytes, same errors
(RFC 3711 §3.3 SRTP, §3.4 SRTCP)."""

from __future__ import annotations

import pylibsrtp
import pytest

from mobilityd.bench.media_load import call_keys, rtp_packet, tone_payloads
from mobilityd.media.errors import SrtpAuthError, SrtpReplayError
from mobilityd.media.libsrtp_direct import BUFFER_LEN, DirectSrtp, direct_srtp
from mobilityd.media.rtcp import ReceiverReport
from mobilityd.media.srtp import Direction, SrtpSession

KEY = call_keys(7).master_key + call_keys(7).master_salt


def session(inbound: bool) -> pylibsrtp.Session:
    kind = pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
    return pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=kind))


def direct(inbound: bool) -> DirectSrtp:
    calls = direct_srtp(session(inbound))
    assert calls is not None, "this pylibsrtp lacks the internals libsrtp_direct needs"
    return calls


def test_protect_and_unprotect_are_byte_identical_to_pylibsrtp() -> None:
    payload = tone_payloads()[0]
    ours, theirs = direct(inbound=False), session(inbound=False)
    packets = [rtp_packet(1, seq, payload) for seq in range(50)]
    protected = [ours.protect(p) for p in packets]
    assert protected == [theirs.protect(p) for p in packets]
    receiver = direct(inbound=True)
    assert [receiver.unprotect(p) for p in protected] == packets


def test_rtcp_both_ways_matches_pylibsrtp() -> None:
    report = bytes(ReceiverReport(0x10001, ()))
    ours, theirs = direct(inbound=False), session(inbound=False)
    srtcp = ours.protect_rtcp(report)
    assert srtcp == theirs.protect_rtcp(report)
    assert direct(inbound=True).unprotect_rtcp(srtcp) == report


def test_errors_are_pylibsrtp_errors_with_its_messages() -> None:
    payload = tone_payloads()[0]
    srtp = session(inbound=False).protect(rtp_packet(1, 5, payload))
    receiver = direct(inbound=True)
    tampered = srtp[:-1] + bytes([srtp[-1] ^ 1])
    with pytest.raises(pylibsrtp.Error, match=r"^authentication failure$"):
        receiver.unprotect(tampered)
    receiver.unprotect(srtp)
    with pytest.raises(pylibsrtp.Error, match=r"^replay check failed"):
        receiver.unprotect(srtp)
    with pytest.raises(ValueError, match="packet is too long"):
        receiver.unprotect(bytes(BUFFER_LEN + 1))
    with pytest.raises(ValueError, match="packet is too long"):
        direct(inbound=False).protect(rtp_packet(1, 6, bytes(BUFFER_LEN - 12)))


def test_srtp_session_counts_and_types_failures_through_the_direct_path() -> None:
    payload = tone_payloads()[0]
    sender = session(inbound=False)
    first, second = (sender.protect(rtp_packet(1, seq, payload)) for seq in (9, 10))
    receiver = SrtpSession(call_keys(7), Direction.INBOUND)
    assert receiver.unprotect(first) == rtp_packet(1, 9, payload)
    with pytest.raises(SrtpAuthError):
        receiver.unprotect(second[:-1] + bytes([second[-1] ^ 1]))
    with pytest.raises(SrtpReplayError):
        receiver.unprotect(first)
    assert receiver.unprotect(second) == rtp_packet(1, 10, payload)
    counters = receiver.counters(0x10001)
    assert (counters.packets, counters.auth_failures, counters.replays) == (2, 1, 1)


def test_without_the_internals_there_are_no_direct_calls() -> None:
    assert direct_srtp(object()) is None  # type: ignore[arg-type]
