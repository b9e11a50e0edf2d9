"""Fuzzing the SIP parser and framer: only SipParseError ever escapes (RFC 4475 §4).

Inputs are random bytes and mutated valid messages (the RFC 4475 valid messages and a
typical INVITE).  When a mutated message still parses, every typed accessor either
works or raises SipParseError, and the fast syntax checks never accept a value the
full parser refuses.  The default tier runs about 2000 examples in all; the slow tier
(MOBILITYD_SLOW=1) runs 25 times more.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.sip import grammar as g
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.framing import StreamFramer
from mobilityd.sip.headers import Via
from mobilityd.sip.message import Request, Response, make_response, parse_message
from mobilityd.sip.perf import TYPICAL_INVITE
from mobilityd.sip.uri import NameAddr

DATA = Path(__file__).parent / "data" / "rfc4475"
VALID = [TYPICAL_INVITE] + [
    (DATA / f"{name}.dat").read_bytes()
    for name in (
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "longreq",
        "mpart01",
        "unreason",
        "regescrt",
        "inv2543",
        "transports",
        "cparam01",
        "semiuri",
    )
]

SLOW = os.environ.get("MOBILITYD_SLOW") == "1"
SCALE = 25 if SLOW else 1
FUZZ = settings(
    max_examples=500 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not SLOW,
)

ACCESSORS = (
    "vias",
    "from_",
    "to",
    "call_id",
    "cseq",
    "contacts",
    "route",
    "record_route",
    "max_forwards",
    "expires",
    "date",
    "content_type",
    "supported",
    "require",
    "proxy_require",
    "allow",
    "refer_to",
    "refer_to_replaces",
    "referred_by",
    "replaces",
    "event",
    "subscription_state",
    "session_expires",
    "www_authenticate",
    "proxy_authenticate",
    "authorization",
    "proxy_authorization",
)


def exercise(data: bytes) -> None:
    """Parse; on success touch every accessor and serialise; on error maybe answer."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert 400 <= exc.status <= 599
        assert "\r" not in exc.reason and "\n" not in exc.reason
        if exc.partial is not None:
            bytes(make_response(exc.partial, exc.status, exc.reason, to_tag="z"))
        return
    assert isinstance(msg, Request | Response)
    for name in ACCESSORS:
        with contextlib.suppress(SipParseError):
            getattr(msg, name)
    for value in msg.headers.get_all("Via"):
        if g.via_syntax_ok(value):
            Via.parse(value)  # the fast check never accepts what the parser refuses
    for header in ("From", "To", "Contact"):
        for value in msg.headers.get_all(header):
            if g.name_addr_syntax_ok(value):
                NameAddr.parse(value)
    again = bytes(msg)
    exercise_reparse(again)


def exercise_reparse(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup", "special"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "dup":
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
        else:
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\r\n ",
                        b";",
                        b",",
                        b'"',
                        b"<",
                        b">",
                        b":",
                        b"%",
                        b"\x00",
                        b"\r",
                        b"\n",
                        b" ",
                        b"@",
                        b"?",
                        b"=",
                        b"\xff",
                    ]
                )
            )
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(mutated())
def test_mutated_valid_messages(data: bytes) -> None:
    exercise(data)


HEADER_ALPHABET = st.sampled_from(list('ab1 \t;,=:"<>@.%\\?&-_[]/sipSIP*+z9hG4bK'))


@FUZZ
@given(st.text(HEADER_ALPHABET, max_size=80))
def test_typed_values_raise_only_the_typed_error(text: str) -> None:
    for parse in (NameAddr.parse, Via.parse):
        with contextlib.suppress(SipParseError):
            parse(text)
    if g.name_addr_syntax_ok(text):
        NameAddr.parse(text)
    if g.via_syntax_ok(text):
        Via.parse(text)


@FUZZ
@given(
    st.lists(mutated(), min_size=1, max_size=4),
    st.lists(st.integers(1, 300), min_size=1, max_size=40),
)
def test_stream_of_mutated_messages(messages: list[bytes], cuts: list[int]) -> None:
    framer = StreamFramer(max_header_block=8192)
    stream = b"".join(messages)
    pos = 0
    index = 0
    limit = 8192 + framer._limits.max_body + 4
    while pos < len(stream):
        size = cuts[index % len(cuts)]
        index += 1
        try:
            framer.feed(stream[pos : pos + size])
        except SipParseError:
            assert framer.broken and framer.buffered == 0
            return
        assert framer.buffered <= limit  # memory stays bounded
        pos += size


@pytest.mark.slow
def test_slow_tier_runs_the_large_fuzz() -> None:
    # The slow tier only changes SCALE above; this marks that it was selected.
    assert SCALE == 25


@FUZZ
@given(
    st.text(HEADER_ALPHABET, max_size=40),
    st.text(HEADER_ALPHABET, max_size=20),
    st.text(HEADER_ALPHABET, max_size=20),
    st.sampled_from(["", ";"]),
)
def test_via_shape_memory_never_accepts_what_the_parser_refuses(
    head: str, branch: str, rest: str, semi: str
) -> None:
    """RFC 3261 §25.1 via-parm: after a Via with one branch was accepted, the same
    value with another branch is accepted only if it is valid."""
    for prefix in ("", "SIP/2.0/UDP host.example:5060"):
        g.via_syntax_ok(f"{prefix}{head};branch=z9hG4bK1{semi}{rest}")  # remembered if good
        value = f"{prefix}{head};branch={branch}{semi}{rest}"
        if g.via_syntax_ok(value):
            Via.parse(value)
            assert g.via_syntax_ok_full(value) or "ttl" in branch.lower() or (
                "received" in branch.lower()
            )


@FUZZ
@given(
    st.text(HEADER_ALPHABET, max_size=40),
    st.text(HEADER_ALPHABET, max_size=12),
    st.text(HEADER_ALPHABET, max_size=20),
    st.sampled_from(["", ";"]),
)
def test_name_addr_tag_memory_never_accepts_what_the_parser_refuses(
    head: str, tag: str, rest: str, semi: str
) -> None:
    """RFC 3261 §19.3 / §25.1: after a From/To with one tag was accepted, the same
    value with another tag is accepted only if it is valid."""
    for prefix in ("", "Bob <sip:bob@b.example>", '"A;tag=b" <sip:a@h'):
        g.name_addr_syntax_ok(f"{prefix}{head};tag=t1{semi}{rest}")  # remembered if good
        value = f"{prefix}{head};tag={tag}{semi}{rest}"
        if g.name_addr_syntax_ok(value):
            NameAddr.parse(value)
            assert g.name_addr_syntax_ok_full(value)
        # asked again (the call's ACK and BYE repeat it): the same answer
        assert g.name_addr_syntax_ok(value) == g.name_addr_syntax_ok_full(value)
