"""SIP/SIPS/tel URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1; RFC 3966)."""

from __future__ import annotations

import pytest

from mobilityd.sip.errors import SipError, SipParseError, StatusCode
from mobilityd.sip.uri import NameAddr, SipUri, check_request_uri_scheme, parse_request_uri


def test_full_sip_uri_fields_and_round_trip() -> None:
    # RFC 3261 §19.1.3 examples.
    text = "sip:alice:secretword@atlanta.com;transport=tcp"
    uri = SipUri.parse(text)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        "secretword",
        "atlanta.com",
        None,
    )
    assert uri.transport == "tcp"
    assert str(uri) == text


def test_port_lr_maddr_and_embedded_headers() -> None:
    uri = SipUri.parse(
        "sips:alice@atlanta.com:5061;maddr=239.255.255.1;ttl=15;lr?subject=project%20x&priority=urgent"
    )
    assert uri.port == 5061
    assert uri.lr and uri.maddr == "239.255.255.1"
    assert uri.headers == {"subject": "project x", "priority": "urgent"}
    assert SipUri.parse(str(uri)) == uri


def test_refer_to_replaces_header_is_unescaped() -> None:
    # RFC 3891 §6.1 / RFC 3515 §2.1: Replaces embedded in a Refer-To URI.
    uri = SipUri.parse(
        "sip:bob@biloxi.example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994"
    )
    assert uri.headers["Replaces"] == "12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994"
    assert SipUri.parse(str(uri)).headers == uri.headers


def test_ipv6_host_is_stored_without_brackets() -> None:
    uri = SipUri.parse("sip:[2001:db8::10]:5070")
    assert uri.host == "2001:db8::10" and uri.port == 5070
    assert str(uri) == "sip:[2001:db8::10]:5070"
    assert uri.host_port == "[2001:db8::10]:5070"


def test_escaped_user_part() -> None:
    # RFC 4475 §3.1.1.3: %-escapes in the user part are decoded.
    uri = SipUri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"


def test_tel_uri() -> None:
    uri = SipUri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert uri.scheme == "tel" and uri.user == "+1-201-555-0123"
    assert uri.params == {"phone-context": "example.com"}
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_other_scheme_kept_opaque() -> None:
    uri = SipUri.parse("http://www.example.com/x?a=b")
    assert uri.opaque == "//www.example.com/x?a=b" and not uri.is_sip
    assert str(uri) == "http://www.example.com/x?a=b"


@pytest.mark.parametrize(
    "text",
    [
        "sip",  # no scheme
        "sip:",  # no host
        "sip:user@",  # no host
        "sip:us er@example.com",  # white space
        "sip:user@exa_mple.com",  # bad host
        "sip:user@example.com:99999",  # port out of range
        "sip:user@[2001:db8::zz]",  # bad IPv6
        "sip:user@300.1.1.1",  # bad IPv4
        "sip:user@example.com;=x",  # empty parameter name
        "sip:user@example.com;a=",  # empty parameter value
        "sip:user@example.com?x",  # header without value
        "sip:%zzuser@example.com",  # bad escape
        "sip:@example.com",  # empty user
        "tel:",  # empty number
    ],
)
def test_bad_uris_raise_typed_error(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        SipUri.parse(text)
    assert info.value.status == StatusCode.BAD_REQUEST


def test_request_uri_scheme_and_length() -> None:
    # RFC 4475 §3.3.2: any scheme parses; the UA answers 416 (RFC 3261 §8.2.2.1).
    uri = parse_request_uri("unknown:bob@example.com", 4096)
    with pytest.raises(SipError) as denied:
        check_request_uri_scheme(uri)
    assert denied.value.status == StatusCode.UNSUPPORTED_URI_SCHEME
    check_request_uri_scheme(parse_request_uri("sips:bob@example.com", 4096))
    with pytest.raises(SipParseError) as info:
        parse_request_uri("sip:" + "a" * 5000 + "@example.com", 4096)
    assert info.value.status == StatusCode.REQUEST_URI_TOO_LONG


def test_name_addr_with_quoted_display_name_and_tag() -> None:
    addr = NameAddr.parse('"Bob \\"B\\" Smith" <sip:bob@biloxi.com>;tag=a6c85cf')
    assert addr.display_name == 'Bob "B" Smith'
    assert addr.tag == "a6c85cf"
    assert NameAddr.parse(str(addr)) == addr


def test_addr_spec_parameters_belong_to_the_header() -> None:
    # RFC 3261 §20.10: without <>, parameters after the URI are header parameters.
    addr = NameAddr.parse("sip:alice@atlanta.com;tag=88sja8x;expires=60")
    assert addr.uri.params == {}
    assert addr.tag == "88sja8x" and addr.expires == 60


def test_contact_params_instance_q_expires() -> None:
    addr = NameAddr.parse(
        '<sip:alice@192.0.2.4;transport=tcp>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";q=0.7;expires=3600'
    )
    assert addr.instance == "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
    assert addr.q == pytest.approx(0.7)
    assert addr.expires == 3600
    assert addr.uri.transport == "tcp"
    assert NameAddr.parse(str(addr)) == addr


def test_wildcard_contact() -> None:
    addr = NameAddr.parse("*")
    assert addr.wildcard and str(addr) == "*"


def test_token_display_name() -> None:
    addr = NameAddr.parse("Anonymous Caller <sip:c8oqz84zk7z@privacy.org>;tag=hyh8")
    assert addr.display_name == "Anonymous Caller"


def test_with_tag_builds_a_new_value() -> None:
    addr = NameAddr.parse("<sip:bob@biloxi.com>")
    tagged = addr.with_tag("314159")
    assert addr.tag is None and tagged.tag == "314159"
    assert str(tagged) == "<sip:bob@biloxi.com>;tag=314159"


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',  # RFC 4475 §3.1.2.6
        "Joe@example.com <sip:joe@example.com>",  # RFC 4475 §3.1.2.15 non-token
        "sip:user@example.com?Route=%3Csip:example.com%3E",  # RFC 4475 §3.1.2.13
        "<sip:a@b",  # unterminated
        "<sip:a@b>;;",  # empty parameter
        "<sip:a@b> junk",
        '"x" sip:a@b',
    ],
)
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_long_token_display_name_without_uri_is_refused_promptly() -> None:
    # Regression: "(token LWS?)*" backtracked exponentially on this shape (found by the
    # fuzz test); the rule is now "token *(LWS token)" (RFC 3261 §25.1 display-name).
    for text in ["tok" * 40 + "!", "a" * 200 + " <sip:x@y", "a b " * 100 + '"']:
        with pytest.raises(SipParseError):
            NameAddr.parse(text)


EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_19_1_4_equivalent(a: str, b: str) -> None:
    assert SipUri.parse(a).equivalent(SipUri.parse(b))
    assert SipUri.parse(b).equivalent(SipUri.parse(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_19_1_4_not_equivalent(a: str, b: str) -> None:
    assert not SipUri.parse(a).equivalent(SipUri.parse(b))
    assert not SipUri.parse(b).equivalent(SipUri.parse(a))


def test_remembered_wire_form_follows_each_copy() -> None:
    """RFC 3261 §19.1.1: the text of a URI is built once per instance; copies made with
    other parameters or without headers print their own text, and equality and hashing
    stay on the fields."""
    uri = SipUri.parse("sip:bob@biloxi.example.com:5060;transport=udp?Subject=hi")
    first = str(uri)
    assert str(uri) is first
    assert str(uri.with_params(lr=None)) == (
        "sip:bob@biloxi.example.com:5060;transport=udp;lr?Subject=hi"
    )
    assert str(uri.without_headers()) == "sip:bob@biloxi.example.com:5060;transport=udp"
    assert str(uri) == first
    fresh = SipUri.parse(first)
    assert fresh == uri and hash(fresh) == hash(uri)
    assert repr(uri) == repr(fresh)
