"""The fields a UAS response copies from its request (RFC 3261 §8.2.6.2), read from
the parser's grouped fields: the same fields and values as a pass over the header
list, on every parsable request of RFC 4475 (the torture tests) and after the header
list changed (then the pass is what is used)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.sip.errors import SipParseError
from mobilityd.sip.message import Request, parse_message
from mobilityd.sip.perf import TYPICAL_INVITE
from mobilityd.sip.ua.actions import copied_response_lines, copied_to_response

TORTURE = sorted((Path(__file__).parent / "data" / "rfc4475").glob("*.dat"))
COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def by_header_pass(request: Request) -> list[tuple[str, str]]:
    return [(name, value) for name, value in request.headers if name in COPIED]


def by_name(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    return {name: [v for n, v in fields if n == name] for name in COPIED}


def parsed_request(data: bytes) -> Request | None:
    try:
        message = parse_message(data)
    except SipParseError:
        return None
    return message if isinstance(message, Request) else None


#: the torture messages that parse as requests (the others -- RFC 4475 §3.1.2's
#: invalid messages and the responses -- have no response to copy fields into)
REQUESTS = [path for path in TORTURE if parsed_request(path.read_bytes()) is not None]


def test_the_torture_tests_give_requests_to_copy_from() -> None:
    assert len(REQUESTS) >= 20, "RFC 4475 data missing? (tests/sip/data/rfc4475)"


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_grouped_fields_give_the_fields_a_header_pass_gives(path: Path) -> None:
    request = parsed_request(path.read_bytes())
    assert request is not None
    fast = copied_to_response(request)
    assert by_name(fast) == by_name(by_header_pass(request))
    assert sorted(fast) == sorted(by_header_pass(request))


def test_the_typical_invite_keeps_its_order_and_a_changed_list_is_read_again() -> None:
    request = parsed_request(TYPICAL_INVITE)
    assert request is not None
    assert copied_to_response(request) == by_header_pass(request)  # canonical order
    request.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKadded")
    copied = copied_to_response(request)
    assert copied == by_header_pass(request)
    assert copied[0] == ("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKadded")


def lines_from_pairs(request: Request, to_tag: str | None) -> list[str]:
    return ["SIP/2.0 200 OK"] + [
        f"To: {value};tag={to_tag}" if name == "To" and to_tag else f"{name}: {value}"
        for name, value in copied_to_response(request)]


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_response_lines_are_the_copied_fields(path: Path) -> None:
    """The lines the UAS writes are the §8.2.6.2 fields as copied_to_response gives
    them, with and without a To tag added - also once the header list changed."""
    request = parsed_request(path.read_bytes())
    assert request is not None
    for to_tag in (None, "t4g"):
        assert copied_response_lines(request, "SIP/2.0 200 OK", to_tag) == \
            lines_from_pairs(request, to_tag)
    request.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKadded")
    assert copied_response_lines(request, "SIP/2.0 200 OK", "t4g") == \
        lines_from_pairs(request, "t4g")
