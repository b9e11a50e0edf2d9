"""The per-request facts read for matching (RFC 3261 §17.2.3, §20.16, §20.42)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.sip.errors import SipParseError
from mobilityd.sip.headers import CSeq, Via
from mobilityd.sip.transaction.facts import TopVia, parse_cseq

VIAS = [
    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1",
    "SIP / 2.0 / TCP [2001:db8::1] : 5060 ; rport ; BRANCH = z9hG4bKx",
    "SIP/2.0/UDP host.example.com;rport=5;received=1.2.3.4",
    "SIP/2.0/TLS [::1]:5061;branch=z9hG4bKa;rport",
    "SIP/2.0/UDP Host.Example.COM ;branch=z9hG4bKq",
    "SIP/2.0/SCTP pc33.atlanta.com;branch=z9hG4bK776asdhds;ttl=1",
]


@pytest.mark.parametrize("value", VIAS)
def test_top_via_fast_and_general_paths_agree_with_the_full_parser(value: str) -> None:
    """§20.42 (with LWS allowed around "/" and ":", RFC 4475 §3.1.1.1 style)."""
    fast = TopVia.parse(value)
    assert fast == TopVia._general(value)
    full = Via.parse(value)
    assert (fast.transport, fast.port, fast.branch) == (full.transport, full.port,
                                                        full.branch)
    assert fast.host == full.host.lower() or fast.host == f"[{full.host}]".lower()
    assert fast.has_rport == ("rport" in {k.lower() for k in full.params})


_HOSTS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True)
_BRANCHES = st.from_regex(r"z9hG4bK[A-Za-z0-9.!%*_+`'~-]{1,20}", fullmatch=True)


@given(transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "udp", "Tls"]), host=_HOSTS,
       port=st.one_of(st.none(), st.integers(0, 99999)), branch=_BRANCHES,
       tail=st.sampled_from(["", ";rport", ";rport=5060", ";received=10.0.0.1",
                             ";RPORT", ";rport;ttl=1", "; rport", ";branch=z9hG4bKsecond"]))
def test_canonical_via_shortcut_gives_the_reference_result(
        transport: str, host: str, port: int | None, branch: str, tail: str) -> None:
    """The one-regex shortcut of ``TopVia.parse`` for ``SIP/2.0/UDP host:port;branch=..``
    (§20.42) agrees with the reference path, and spellings it does not take fall back."""
    sent_by = host if port is None else f"{host}:{port}"
    value = f"SIP/2.0/{transport} {sent_by};branch={branch}{tail}"
    assert TopVia.parse(value) == TopVia.parse_any(value)
    if "branch" not in tail:  # (a repeated branch: the paths pick different ones)
        assert TopVia.parse(value) == TopVia._general(value)


_ANY_BRANCH = st.text(st.sampled_from("z9hG4bKAZaz09.!%*_+`'~-, \t=:/[]"), min_size=1,
                      max_size=12)


@given(host=_HOSTS, port=st.one_of(st.none(), st.integers(0, 99999)),
       learnt=_BRANCHES, branch=_ANY_BRANCH,
       tail=st.sampled_from(["", ";rport", ";rport=5", ";ttl=1"]),
       order=st.sampled_from(["branch first", "branch last"]))
def test_remembered_via_shape_gives_the_reference_result(
        *, host: str, port: int | None, learnt: str, branch: str, tail: str, order: str
) -> None:
    """``TopVia.parse`` remembers a canonical Via without its branch; a later value with
    the same remainder and any other branch (or the branch moved after the other
    parameters, which leaves the same remainder) parses as the reference path does."""
    sent_by = host if port is None else f"{host}:{port}"
    first = f"SIP/2.0/UDP {sent_by};branch={learnt}{tail}"
    assert TopVia.parse(first) == TopVia.parse_any(first)  # learns the shape
    if order == "branch first":
        value = f"SIP/2.0/UDP {sent_by};branch={branch}{tail}"
    else:
        value = f"SIP/2.0/UDP {sent_by}{tail};branch={branch}"
    try:
        expected = TopVia.parse_any(value)
    except SipParseError:
        with pytest.raises(SipParseError):
            TopVia.parse(value)
        return
    assert TopVia.parse(value) == expected


@pytest.mark.parametrize("value", ["", "SIP/2.0/UDP", "garbage;branch=z9hG4bK1"])
def test_bad_via(value: str) -> None:
    with pytest.raises(SipParseError):
        TopVia.parse(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("1 INVITE", CSeq(1, "INVITE")),
    ("  4711   BYE ", CSeq(4711, "BYE")),
    ("2147483647 OPTIONS", CSeq(2**31 - 1, "OPTIONS")),
])
def test_cseq(value: str, expected: CSeq) -> None:
    assert parse_cseq(value) == expected


@pytest.mark.parametrize("value", ["x INVITE", "1", "2147483648 INVITE", "1 IN VITE",
                                   "\u00b2 INVITE", "-1 BYE"])
def test_bad_cseq(value: str) -> None:
    """§20.16: the number is 32-bit below 2**31 (§8.1.1.5), the method a token."""
    with pytest.raises(SipParseError):
        parse_cseq(value)


def test_cseq_method_must_match_the_request() -> None:
    """§8.1.1.5: the CSeq method of a request is the request's method."""
    assert parse_cseq("3 BYE", "BYE") == CSeq(3, "BYE")
    with pytest.raises(SipParseError):
        parse_cseq("3 INVITE", "BYE")
