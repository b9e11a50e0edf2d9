"""Every RFC 4475 torture-test message, handled as RFC 4475 §3 says.

The messages are the bit-exact files of RFC 4475 Appendix A, extracted by
tests/sip/data/extract_rfc4475.py into tests/sip/data/rfc4475/.  Valid messages parse
and the fields each section talks about are checked; invalid ones raise SipParseError
with the status RFC 4475 asks for and a reason naming the problem, answerable (with a
`partial`) or to be dropped.  No other exception ever escapes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from mobilityd.sip.errors import SipError, SipParseError, StatusCode
from mobilityd.sip.framing import StreamFramer
from mobilityd.sip.message import (
    Request,
    Response,
    check_request_uri_scheme,
    make_response,
    parse_message,
)

DATA = Path(__file__).parent / "data" / "rfc4475"


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def response_of(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def request(name: str) -> Request:
    msg = parse_message(load(name))
    assert isinstance(msg, Request)
    return msg


def response(name: str) -> Response:
    msg = parse_message(load(name))
    assert isinstance(msg, Response)
    return msg


# ---------------------------------------------------------------- §3.1.1 valid messages


def test_3_1_1_1_wsinv_short_tortuous_invite() -> None:
    msg = request("wsinv")
    assert msg.method == "INVITE" and "unknownparam" in msg.uri.params
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68  # leading zeros
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    vias = msg.vias  # short and long form, comma separated, folded with LWS everywhere
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    (route,) = msg.route
    assert route.uri.lr and route.uri.params["unknown-no-value"] is None
    assert len(msg.body) == 150


def test_3_1_1_2_intmeth_wide_range_of_valid_characters() -> None:
    msg = request("intmeth")
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.cseq.method == msg.method
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert msg.max_forwards == 255


def test_3_1_1_3_esc01_valid_escapes() -> None:
    msg = request("esc01")
    assert msg.uri.user == "sips:user@example.com" and msg.uri.host == "example.net"
    assert msg.to.uri.user == "user"
    assert msg.from_.uri.user == "I have spaces"
    (contact,) = msg.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params == {"lr": None, "name": "value%41"}


def test_3_1_1_4_escnull_escaped_nulls() -> None:
    msg = request("escnull")
    assert msg.to.uri.user == "null-\x00-null"
    users = [c.uri.user for c in msg.contacts]
    assert users == ["\x00", "\x00\x00"]  # two distinct contacts, not shortened


def test_3_1_1_5_esc02_percent_not_an_escape() -> None:
    msg = request("esc02")
    assert msg.method == "RE%47IST%45R"  # unknown method, NOT REGISTER
    assert msg.to.display_name == "%Z%45"
    assert len(msg.contacts) == 2  # "C%6Fntact" is another header field
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert msg.top_via.branch == "z9hG4bK209%fzsnel234"


def test_3_1_1_6_lwsdisp_no_lws_before_laquot() -> None:
    msg = request("lwsdisp")
    assert msg.from_.display_name == "caller" and msg.from_.uri.user == "caller"


def test_3_1_1_7_longreq_long_values() -> None:
    msg = request("longreq")
    assert len(msg.to.display_name or "") > 80
    assert len(msg.from_.params) == 3 and msg.from_.tag is not None
    assert len(msg.call_id) > 100
    assert len(msg.vias) > 30
    assert (
        len(
            msg.headers.get_all(
                "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name"
            )
        )
        == 1
    )


def test_3_1_1_8_dblreq_extra_trailing_octets() -> None:
    msg = request("dblreq")
    assert msg.method == "REGISTER" and msg.body == b""
    assert b"INVITE" not in bytes(msg)  # the trailing octets are not forwarded


def test_3_1_1_9_semiuri_semicolon_in_user_part() -> None:
    msg = request("semiuri")
    assert msg.uri.user == "user;par=u@example.net" and msg.uri.host == "example.com"
    assert len(msg.headers.get_all("Accept")) == 6


def test_3_1_1_10_transports_varied_and_unknown() -> None:
    msg = request("transports")
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_3_1_1_11_mpart01_multipart_binary_body() -> None:
    msg = request("mpart01")
    assert len(msg.body) == 553 and b"\x00" in msg.body
    assert msg.content_type == "multipart/mixed"
    assert msg.date is not None and msg.date.year == 2005


def test_3_1_1_12_unreason_unusual_reason_phrase() -> None:
    msg = response("unreason")
    assert msg.status == 200
    assert msg.reason.startswith("= 2**3 * 5**2 \u043d\u043e")
    assert response_of(bytes(msg)).reason == msg.reason  # UTF-8 survives the round trip


def test_3_1_1_13_noreason_empty_reason_phrase() -> None:
    msg = response("noreason")
    assert (msg.status, msg.reason) == (100, "")


# -------------------------------------------------------------- §3.1.2 invalid messages

# name: (section, status, words in the reason, answerable)
INVALID = {
    "badinv01": ("3.1.2.1", 400, "empty element in Via", True),
    "clerr": ("3.1.2.2", 400, "Content-Length larger", True),
    "ncl": ("3.1.2.3", 400, "Content-Length", True),
    "scalar02": ("3.1.2.4", 400, "CSeq", True),
    "scalarlg": ("3.1.2.5", 400, "CSeq", False),  # a response: discarded
    "quotbal": ("3.1.2.6", 400, "unterminated quoted string", True),
    "ltgtruri": ("3.1.2.7", 400, "enclosed in <>", True),
    "lwsruri": ("3.1.2.8", 400, "white space inside Request-URI", True),
    "lwsstart": ("3.1.2.9", 400, "multiple SP", True),
    "trws": ("3.1.2.10", 400, "SP characters at end", True),
    "escruri": ("3.1.2.11", 400, "escaped headers", True),
    "regbadct": ("3.1.2.13", 400, "enclosed in <>", True),
    "badaspec": ("3.1.2.14", 400, "spaces within addr-spec", True),
    "baddn": ("3.1.2.15", 400, "display name", True),
    "badvers": ("3.1.2.16", 505, "version", True),
    "mismatch01": ("3.1.2.17", 400, "CSeq method does not match", True),
    "mismatch02": ("3.1.2.18", 501, "not implemented", True),
    "bigcode": ("3.1.2.19", 400, "status code", False),  # a response: dropped
    "insuf": ("3.3.1", 400, "missing", True),
    "multi01": ("3.3.8", 400, "more than one", True),
    "mcl01": ("3.3.9", 400, "more than one Content-Length", True),
    "test": ("A (extra archive file)", 400, "header field line", False),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages(name: str) -> None:
    section, status, words, answerable = INVALID[name]
    with pytest.raises(SipParseError) as info:
        parse_message(load(name))
    error = info.value
    assert error.status == status, section
    assert words.lower() in error.reason.lower(), (section, error.reason)
    assert (error.partial is not None) == answerable, section
    if error.partial is not None:
        answer = make_response(error.partial, error.status, error.reason, to_tag="t1")
        data = bytes(answer)
        assert data.startswith(b"SIP/2.0 %d " % status)
        assert error.reason.encode() in data.split(b"\r\n", 1)[0]
        assert answer.headers.get_all("Via") == error.partial.headers.get_all("Via")


def test_3_1_2_12_baddate_non_gmt_date() -> None:
    # Accepted unless the Date matters; reading the Date raises a typed error.
    msg = request("baddate")
    with pytest.raises(SipParseError, match="GMT"):
        _ = msg.date


# ------------------------------------------------------- §3.2 / §3.3 / §3.4 semantics


def test_3_2_1_badbranch_missing_transaction_identifier() -> None:
    msg = request("badbranch")
    assert msg.top_via.branch == "z9hG4bK" and not msg.top_via.has_rfc3261_branch


def test_3_3_2_unkscm_unknown_request_uri_scheme() -> None:
    msg = request("unkscm")
    assert msg.uri.scheme == "nobodyknowsthisscheme" and msg.uri.opaque == "totallyopaquecontent"
    with pytest.raises(SipError) as info:
        check_request_uri_scheme(msg.uri)
    assert info.value.status == StatusCode.UNSUPPORTED_URI_SCHEME


def test_3_3_3_novelsc_known_but_atypical_scheme() -> None:
    msg = request("novelsc")
    assert msg.uri.scheme == "soap.beep"
    with pytest.raises(SipError) as info:
        check_request_uri_scheme(msg.uri)
    assert info.value.status == StatusCode.UNSUPPORTED_URI_SCHEME


def test_3_3_4_unksm2_unknown_schemes_in_header_fields() -> None:
    msg = request("unksm2")
    assert msg.to.uri.scheme == "isbn" and not msg.to.uri.is_sip
    assert msg.from_.uri.scheme == "http" and msg.from_.tag == "3234233"
    assert msg.contacts[0].uri.scheme == "name"


def test_3_3_5_bext01_require_and_proxy_require() -> None:
    msg = request("bext01")
    assert msg.require == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert msg.proxy_require == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def test_3_3_6_invut_unknown_content_type() -> None:
    assert request("invut").content_type == "application/unknownformat"


def test_3_3_7_regaut01_unknown_authorization_scheme() -> None:
    (creds,) = request("regaut01").authorization
    assert creds.scheme == "NoOneKnowsThisScheme" and creds.params == {"opaque-data": "here"}


def test_3_3_10_bcast_broadcast_via() -> None:
    msg = response("bcast")
    assert msg.vias[1].host == "255.255.255.255"


def test_3_3_11_zeromf_max_forwards_zero() -> None:
    assert request("zeromf").max_forwards == 0


def test_3_3_12_cparam01_contact_header_parameter() -> None:
    (contact,) = request("cparam01").contacts
    assert "unknownparam" in contact.params and "unknownparam" not in contact.uri.params


def test_3_3_13_cparam02_uri_parameter() -> None:
    (contact,) = request("cparam02").contacts
    assert "unknownparam" in contact.uri.params and "unknownparam" not in contact.params


def test_3_3_14_regescrt_escaped_header_in_contact() -> None:
    (contact,) = request("regescrt").contacts
    assert contact.uri.headers == {"Route": "<sip:sip.example.com>"}
    assert "?Route=%3Csip:sip.example.com%3E" in str(contact)


def test_3_3_15_sdp01_unacceptable_accept() -> None:
    msg = request("sdp01")
    assert msg.headers.get_all("Accept") == ["text/nobodyKnowsThis"]


def test_3_4_1_inv2543_rfc2543_syntax() -> None:
    msg = request("inv2543")
    assert msg.top_via.branch is None and not msg.top_via.has_rfc3261_branch
    assert msg.from_.tag is None
    assert msg.max_forwards is None
    assert "Content-Length" not in msg.headers and msg.body.startswith(b"v=0")


# ------------------------------------------------------------------------- coverage

VALID = {
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "baddate",
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
}


def test_every_archive_message_is_covered() -> None:
    names = {p.stem for p in DATA.glob("*.dat")}
    assert len(names) == 50
    assert names == VALID | set(INVALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_messages_round_trip(name: str) -> None:
    msg = parse_message(load(name))
    data = bytes(msg)
    again = parse_message(data)
    assert bytes(again) == data

    def without_length(m: Request | Response) -> list[tuple[str, str]]:
        return [(k, v) for k, v in m.headers if k != "Content-Length"]

    assert without_length(again) == without_length(msg) and again.body == msg.body


@pytest.mark.parametrize("name", sorted(VALID - {"inv2543", "dblreq"}))
def test_valid_messages_over_a_stream_byte_by_byte(name: str) -> None:
    data = load(name)
    framer = StreamFramer()
    got: list[Request | Response] = []
    for index in range(len(data)):
        got += framer.feed(data[index : index + 1])
    assert got == [parse_message(data)]


@pytest.mark.parametrize("name", sorted(VALID | set(INVALID)))
def test_every_prefix_raises_only_the_typed_error(name: str) -> None:
    data = load(name)
    for cut in range(0, len(data), max(1, len(data) // 60)):
        with contextlib.suppress(SipParseError):
            parse_message(data[:cut])


# ------------------------------------------------------------- the same over a stream


def test_3_1_2_2_clerr_over_a_stream_waits_for_the_rest() -> None:
    # "If this message arrived over a stream-based transport ... wait for more data."
    framer = StreamFramer()
    assert framer.feed(load("clerr")) == []
    assert not framer.broken and framer.buffered == len(load("clerr"))


@pytest.mark.parametrize("name", ["ncl", "mcl01"])
def test_framing_errors_close_the_stream(name: str) -> None:
    # RFC 4475 §3.1.2.3 and §3.3.9: over TCP the framing error is not recoverable.
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(load(name))
    assert info.value.status == 400 and framer.broken


# ---------------------------------------------------- the archive against the RFC text


def _text_messages() -> dict[str, bytes]:
    import importlib.util

    script = Path(__file__).parent / "data" / "extract_rfc4475.py"
    spec = importlib.util.spec_from_file_location("extract_rfc4475", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rfc = Path("/work/shared/rfc/rfc4475.txt")
    if not rfc.exists():
        pytest.fail(f"{rfc} is missing: the RFC text is needed to check the archive")
    found: dict[str, bytes] = module.messages_from_text(rfc.read_text(encoding="ascii"))
    return found


def test_archive_matches_the_rfc_text() -> None:
    # RFC 4475 §2: the markup (<allOneLine>, <hex>, <repeat>) renders the same octets as
    # the Appendix A archive.  Three known differences, each explained:
    text = _text_messages()
    assert set(text) == VALID | set(INVALID) - {"test"}  # "test" is only in the archive
    differing = set()
    for name, rendered in text.items():
        if rendered.rstrip(b"\r\n") != load(name).rstrip(b"\r\n"):
            differing.add(name)
    assert differing == {"dblreq", "mpart01", "trws"}
    # mpart01: the empty line before the binary part falls on a page break.
    mpart = text["mpart01"].replace(b"binary\r\n0\x82", b"binary\r\n\r\n0\x82")
    assert mpart.rstrip(b"\r\n") == load("mpart01").rstrip(b"\r\n")
    # dblreq: the archive has one more CRLF after the REGISTER than the text shows.
    dbl = text["dblreq"].replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 0\r\n\r\n\r\n", 1)
    assert dbl.rstrip(b"\r\n") == load("dblreq").rstrip(b"\r\n")
    # trws: the archive's Via says "host1.examle.com" where the text says "example".
    trws = text["trws"].replace(b"host1.example.com", b"host1.examle.com")
    assert trws.rstrip(b"\r\n") == load("trws").rstrip(b"\r\n")
