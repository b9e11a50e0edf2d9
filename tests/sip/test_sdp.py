"""SDP codec (RFC 8866), offer/answer checks (RFC 3264) and key-mgmt (RFC 4567)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.sip.errors import SipError, StatusCode
from mobilityd.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    KeyMgmt,
    Media,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    build_answer,
    check_answer,
    check_reoffer,
)

# RFC 8866 §5 example.
RFC8866_EXAMPLE = (
    "v=0\r\n"
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n"
    "s=Call to John Smith\r\n"
    "i=SDP Offer #1\r\n"
    "u=http://www.jdoe.example.com/home.html\r\n"
    "e=Jane Doe <jane@jdoe.example.com>\r\n"
    "p=+1 617 555-6011\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=audio 49180 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "c=IN IP6 2001:db8::2\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)

# RFC 4567 §7.1 shaped offer: MIKEY at session level, SRTP media.
MIKEY_OFFER = (
    "v=0\r\n"
    "o=alice 2891092738 2891092738 IN IP4 w-land.example.com\r\n"
    "s=Cool stuff\r\n"
    "e=alice@w-land.example.com\r\n"
    "c=IN IP4 w-land.example.com\r\n"
    "t=0 0\r\n"
    "a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAJAAAQbWlrZXlAZXhhbXBsZS5jb20=\r\n"
    "m=audio 49000 RTP/SAVP 98\r\n"
    "a=rtpmap:98 AMR/8000\r\n"
    "a=rtcp:49001\r\n"
    "m=video 52230 RTP/SAVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
    "a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAJAAAQbWlrZXlAZXhhbXBsZS5jb20=\r\n"
    "a=rtcp-mux\r\n"
    "a=sendonly\r\n"
)


def test_rfc8866_example_fields_and_round_trip() -> None:
    sd = SessionDescription.parse(RFC8866_EXAMPLE)
    assert sd.origin == Origin("jdoe", "3724394400", 3724394405, "IN", "IP4", "198.51.100.1")
    assert sd.session_name == "Call to John Smith" and sd.information == "SDP Offer #1"
    assert sd.uri == "http://www.jdoe.example.com/home.html"
    assert sd.emails == ["Jane Doe <jane@jdoe.example.com>"] and sd.phones == ["+1 617 555-6011"]
    assert sd.connection == Connection("IN", "IP4", "198.51.100.1")
    assert [(m.media, m.port, m.proto, m.fmts) for m in sd.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("audio", 49180, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["99"]),
    ]
    assert sd.connection_of(2) == Connection("IN", "IP6", "2001:db8::2")
    assert sd.media[2].rtpmaps == {99: RtpMap(99, "h263-1998", 90000)}
    assert str(sd) == RFC8866_EXAMPLE
    assert bytes(SessionDescription.parse(bytes(sd))) == RFC8866_EXAMPLE.encode()


def test_mikey_key_mgmt_session_and_media_level() -> None:
    sd = SessionDescription.parse(MIKEY_OFFER.encode())
    (session_km,) = sd.key_mgmt
    assert session_km.protocol == "mikey" and session_km.data.startswith("AQAFgM0X")
    assert sd.key_mgmt_for(0) == [session_km]  # inherited from the session level
    assert sd.key_mgmt_for(1) == sd.media[1].key_mgmt  # media level overrides
    audio, video = sd.media
    assert audio.is_srtp and audio.rtcp is not None and audio.rtcp.port == 49001
    assert not audio.rtcp_mux and video.rtcp_mux
    assert sd.direction_of(0) is Direction.SENDRECV
    assert sd.direction_of(1) is Direction.SENDONLY
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert str(sd) == MIKEY_OFFER


def test_attributes_keep_order_and_repeats() -> None:
    text = MIKEY_OFFER.replace(
        "a=rtpmap:98 AMR/8000\r\n",
        "a=rtpmap:98 AMR/8000\r\na=fmtp:98 octet-align=1\r\na=ptime:20\r\na=x\r\na=x:1\r\n",
    )
    media = SessionDescription.parse(text).media[0]
    assert [a.name for a in media.attributes] == ["rtpmap", "fmtp", "ptime", "x", "x", "rtcp"]
    assert media.fmtps == {"98": "octet-align=1"} and media.ptime == 20
    assert media.values("x") == ["1"] and media.has("x")


def test_lf_only_line_ends_are_tolerated() -> None:
    sd = SessionDescription.parse(RFC8866_EXAMPLE.replace("\r\n", "\n"))
    assert str(sd) == RFC8866_EXAMPLE


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "start with"),
        ("v=1\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n", "version"),
        ("v=0\r\ns=-\r\no=a 1 1 IN IP4 h\r\nt=0 0\r\n", "start with"),
        ("v=0\r\no=a 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n", "o="),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\n", "t="),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n", "c="),
        (
            "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
            "port",
        ),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 1 RTP/AVP\r\n", "m="),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nX=1\r\n", "malformed"),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nb=AS\r\n", "b="),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 h\r\nc=IN IP4 g\r\n", "c="),
        (
            "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\n"
            "m=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
            "media description",
        ),
        ("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na=\r\n", "a="),
    ],
)
def test_bad_sdp_raises_typed_error(text: str, words: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert info.value.status == StatusCode.BAD_REQUEST
    assert words.lower() in info.value.reason.lower()
    assert isinstance(info.value, SipError)


def test_bad_attribute_values_are_488() -> None:
    sd = SessionDescription.parse(
        MIKEY_OFFER.replace("AMR/8000", "AMR").replace("a=rtcp:49001", "a=rtcp:x")
    )
    for prop in ("rtpmaps", "rtcp"):
        with pytest.raises(SdpError) as info:
            getattr(sd.media[0], prop)
        assert info.value.status == StatusCode.NOT_ACCEPTABLE_HERE
    bad_km = SessionDescription.parse(
        MIKEY_OFFER.replace("key-mgmt:mikey AQ", "key-mgmt:mikey !AQ")
    )
    with pytest.raises(SdpError):
        _ = bad_km.key_mgmt


def test_non_utf8_and_oversize() -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(b"v=0\r\no=\xff 1 1 IN IP4 h\r\n")
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(b"a" * 70000)
    assert info.value.status == StatusCode.REQUEST_ENTITY_TOO_LARGE


def _accept_audio(index: int, offered: Media) -> Media | None:
    if offered.media != "audio":
        return None
    return Media(
        "audio",
        50000 + index,
        offered.proto,
        offered.fmts[:1],
        attributes=[
            Attribute("rtpmap", f"{offered.fmts[0]} AMR/8000"),
            Attribute("key-mgmt", "mikey AQAF"),
        ],
    )


def test_offer_answer_rfc3264_section6() -> None:
    offer = SessionDescription.parse(MIKEY_OFFER)
    answer = build_answer(
        offer,
        Origin("bob", "7", 7, "IN", "IP4", "192.0.2.2"),
        _accept_audio,
        connection=Connection("IN", "IP4", "192.0.2.2"),
    )
    assert [m.media for m in answer.media] == ["audio", "video"]
    assert answer.media[0].port == 50000 and answer.media[0].key_mgmt == [KeyMgmt("mikey", "AQAF")]
    assert answer.media[1].is_rejected and answer.media[1].fmts == ["31"]
    again = SessionDescription.parse(bytes(answer))
    check_answer(offer, again)


def test_check_answer_refuses_bad_answers() -> None:
    offer = SessionDescription.parse(MIKEY_OFFER)
    one_line = SessionDescription.parse(MIKEY_OFFER.split("m=video", maxsplit=1)[0])
    with pytest.raises(SdpError) as info:
        check_answer(offer, one_line)
    assert info.value.status == StatusCode.NOT_ACCEPTABLE_HERE
    swapped = SessionDescription.parse(MIKEY_OFFER.replace("m=audio", "m=text"))
    with pytest.raises(SdpError):
        check_answer(offer, swapped)
    plain = SessionDescription.parse(MIKEY_OFFER.replace("RTP/SAVP 98", "RTP/AVP 98"))
    with pytest.raises(SdpError, match="transport protocol"):
        check_answer(offer, plain)


def test_reoffer_version_rules_rfc3264_section8() -> None:
    first = SessionDescription.parse(MIKEY_OFFER)
    second = first.next_version()
    assert second.origin.sess_version == first.origin.sess_version + 1
    check_reoffer(first, second)
    check_reoffer(first, SessionDescription.parse(MIKEY_OFFER))  # unchanged, same version
    changed = SessionDescription.parse(MIKEY_OFFER.replace("49000", "49002"))
    with pytest.raises(SdpError, match="version"):
        check_reoffer(first, changed)
    with pytest.raises(SdpError, match="version"):
        check_reoffer(first, second.next_version())
    with pytest.raises(SdpError, match="removes"):
        audio_only = SessionDescription.parse(MIKEY_OFFER.split("m=video", maxsplit=1)[0])
        check_reoffer(first, audio_only.next_version())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.integers(0, len(MIKEY_OFFER)))
def test_fuzz_only_sdp_error(noise: bytes, cut: int) -> None:
    for data in (noise, MIKEY_OFFER.encode()[:cut] + noise, MIKEY_OFFER.encode()[:cut]):
        try:
            sd = SessionDescription.parse(data)
        except SdpError:
            continue
        for index in range(len(sd.media)):
            for prop in ("rtpmaps", "rtcp", "fmtps", "ptime", "key_mgmt"):
                with contextlib.suppress(SdpError):
                    getattr(sd.media[index], prop)
            with contextlib.suppress(SdpError):
                sd.key_mgmt_for(index)
        SessionDescription.parse(bytes(sd))
