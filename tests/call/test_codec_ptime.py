"""Codec preference and packet time in offer/answer (``[media] codecs`` / ``ptime_ms``):
offers list our formats in preference order (RFC 3264 §5.1), an answer takes the first
of OUR preferences that the offer contains (RFC 3264 §6.1), ``a=ptime`` carries our
packet time and we send at the peer's (RFC 8866 §6.4)."""

from __future__ import annotations

import random

import pytest

from mobilityd.call.audio import AudioOptions, ToneMonitor, samples_for_ptime
from mobilityd.call.errors import NegotiationError
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.media_options import MediaConfigError, MediaOptions
from mobilityd.call.negotiation import Answerer, CallSecurity, Offerer
from mobilityd.call.ports import MediaPortRange
from mobilityd.call.sdpmedia import MediaPort, payload_types_for, ptime_of
from mobilityd.sip.sdp import SessionDescription
from tests.call.credentials import NOW, PSK

ALICE = sip_identity("sip:alice@a.test")
BOB = sip_identity("sip:bob@b.test")
A_PORT = MediaPort("10.1.0.2", 40000, 40001)
B_PORT = MediaPort("10.2.0.2", 50000, 50001)
PCMU, PCMA = 0, 8


def _rng(seed: int):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


def _keying(peer: bytes) -> KeyingConfig:
    return KeyingConfig(peers={peer: PeerKeying(KeyMethod.PSK, PSK)})


def _offer(payload_types: tuple[int, ...], ptime_ms: int = 20) -> tuple[Offerer, bytes]:
    offerer = Offerer(ALICE, BOB, CallSecurity.REQUIRED, _keying(BOB),
                      payload_types=payload_types, ptime_ms=ptime_ms)
    return offerer, offerer.make_offer([A_PORT], NOW, _rng(1))


def _answerer(payload_types: tuple[int, ...], ptime_ms: int = 20) -> Answerer:
    return Answerer(BOB, CallSecurity.REQUIRED, _keying(ALICE), payload_types=payload_types,
                    ptime_ms=ptime_ms)


def test_offer_lists_formats_in_our_preference_order_with_ptime() -> None:
    _, offer = _offer((PCMA, PCMU), ptime_ms=30)
    media = SessionDescription.parse(offer).media[0]
    assert media.fmts == ["8", "0"]  # RFC 3264 §5.1: first is preferred
    assert media.values("rtpmap") == ["8 PCMA/8000", "0 PCMU/8000"]
    assert media.get("ptime") == "30"


@pytest.mark.parametrize(("offered", "ours", "chosen"), [
    ((PCMU, PCMA), (PCMA, PCMU), PCMA),  # ours first, not the offer's
    ((PCMA, PCMU), (PCMU, PCMA), PCMU),
    ((PCMU, PCMA), (PCMA,), PCMA),
    ((PCMA,), (PCMU, PCMA), PCMA),
])
def test_answer_takes_first_of_our_preferences_in_the_offer(
        offered: tuple[int, ...], ours: tuple[int, ...], chosen: int) -> None:
    offerer, offer = _offer(offered)
    answerer = _answerer(ours)
    plan = answerer.receive_offer(offer, ALICE, NOW + 0.1, _rng(2))
    assert plan.media.payload_type == chosen
    answer = answerer.build_answer(plan, B_PORT, 7)
    assert SessionDescription.parse(answer).media[0].fmts == [str(chosen)]
    assert offerer.receive_answer(answer, NOW + 0.2).payload_type == chosen


def test_offer_without_any_of_our_codecs_is_refused_488() -> None:
    _, offer = _offer((PCMA,))
    with pytest.raises(NegotiationError) as info:
        Answerer(BOB, CallSecurity.PREFERRED, _keying(ALICE),
                 payload_types=(PCMU,)).receive_offer(offer, ALICE, NOW, _rng(2))
    assert info.value.status == 488
    assert "PCMU" in info.value.reason


def test_answer_with_a_format_we_did_not_offer_is_refused() -> None:
    offerer, offer = _offer((PCMU,))
    plan = _answerer((PCMU,)).receive_offer(offer, ALICE, NOW + 0.1, _rng(2))
    answer = _answerer((PCMU,)).build_answer(plan, B_PORT, 7)
    tampered = answer.replace(b"m=audio 50000 RTP/SAVP 0", b"m=audio 50000 RTP/SAVP 8")
    with pytest.raises(NegotiationError):
        offerer.receive_answer(tampered, NOW + 0.2)


def test_each_side_sends_at_the_peers_ptime() -> None:
    """a=ptime is the receiver's recommendation (RFC 8866 §6.4): Alice asks for 40 ms,
    Bob for 30 ms; Alice sends 30 ms packets, Bob 40 ms ones."""
    offerer, offer = _offer((PCMU, PCMA), ptime_ms=40)
    answerer = _answerer((PCMU, PCMA), ptime_ms=30)
    plan = answerer.receive_offer(offer, ALICE, NOW + 0.1, _rng(2))
    assert plan.media.ptime_ms == 40
    answer = answerer.build_answer(plan, B_PORT, 7)
    assert SessionDescription.parse(answer).media[0].get("ptime") == "30"
    assert offerer.receive_answer(answer, NOW + 0.2).ptime_ms == 30


@pytest.mark.parametrize(("value", "expected"), [
    ("20", 20), ("30.0", 30), (" 60", 60), ("0", None), ("500", None), ("abc", None),
    ("nan", None), ("inf", None), ("", None),
])
def test_peer_ptime_values(value: str, expected: int | None) -> None:
    body = (b"v=0\r\no=- 1 0 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0\r\na=ptime:" + value.encode() + b"\r\n")
    media = SessionDescription.parse(body).media[0]
    assert ptime_of(media) == expected


def test_unusable_peer_ptime_falls_back_to_ours() -> None:
    offerer, offer = _offer((PCMU,), ptime_ms=20)
    odd = offer.replace(b"a=ptime:20", b"a=ptime:1000")
    plan = _answerer((PCMU,), ptime_ms=60).receive_offer(odd, ALICE, NOW + 0.1, _rng(2))
    assert plan.media.ptime_ms == 60
    del offerer


def test_codec_names_and_config_errors() -> None:
    assert payload_types_for(("PCMA", "pcmu")) == (PCMA, PCMU)
    assert payload_types_for(("PCMU", "PCMU")) == (PCMU,)
    with pytest.raises(ValueError, match="G722"):
        payload_types_for(("PCMU", "G722"))
    options = MediaOptions.from_settings(16384, 16483, ("PCMA",), 40)
    assert options.port_range == MediaPortRange(16384, 16483)
    assert options.codecs == ("PCMA",) and options.ptime_ms == 40
    with pytest.raises(MediaConfigError) as info:
        MediaOptions.from_settings(16384, 16483, ("opus",), 20)
    assert info.value.key == "codecs"
    with pytest.raises(MediaConfigError, match="ptime_ms"):
        MediaOptions.from_settings(16384, 16483, ("PCMU",), 5)
    with pytest.raises(MediaConfigError, match="rtp_port_min"):
        MediaOptions.from_settings(16385, 16483, ("PCMU",), 20)
    with pytest.raises(MediaConfigError, match="codecs"):
        MediaOptions(payload_types=())
    with pytest.raises(ValueError, match=r"only G\.711"):
        Offerer(ALICE, BOB, CallSecurity.OFF, payload_types=(9,)).make_offer(
            [A_PORT], NOW, _rng(1))
    with pytest.raises(ValueError, match="ptime"):
        Answerer(BOB, CallSecurity.OFF, ptime_ms=200)


@pytest.mark.parametrize("ptime_ms", [10, 20, 30, 60, 120])
def test_sources_give_frames_of_the_packet_time(ptime_ms: int) -> None:
    samples = samples_for_ptime(ptime_ms)
    assert samples == 8 * ptime_ms  # 8 kHz (RFC 3551 §4.5.14)
    for options in (AudioOptions(tone_hz=440), AudioOptions()):
        assert len(options.source(samples).read_frame()) == 2 * samples


def test_tone_monitor_keeps_seconds_whatever_the_frame_size() -> None:
    monitor = ToneMonitor(seconds=1.0)
    for _ in range(100):
        monitor.write_frame(bytes(2 * 480))  # 60 ms frames
    assert 2 * 8000 <= len(monitor.pcm()) < 2 * 8000 + 2 * 480
    assert monitor.frames == 100
