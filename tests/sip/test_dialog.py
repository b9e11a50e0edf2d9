"""RFC 3261 §12 dialog state: creation, routing, CSeq rules and target refresh."""

from __future__ import annotations

import pytest

from mobilityd.sip.dialog import Dialog, DialogState
from mobilityd.sip.errors import SipError
from mobilityd.sip.transaction.facts import split_tag
from mobilityd.sip.ua import requests as rq
from mobilityd.sip.uri import NameAddr, SipUri

REMOTE = SipUri.parse("sip:user@remoteua")


def routes(*values: str) -> list[NameAddr]:
    return [NameAddr.parse(v) for v in values]


def uac(record_route: list[NameAddr], early: bool = False) -> Dialog:
    return Dialog.as_uac(
        call_id="c1", local_tag="lt", local_uri="<sip:alice@a>", remote_uri="<sip:bob@b>",
        local_target=SipUri.parse("sip:alice@10.0.0.1"), local_seq=1, remote_tag="rt",
        contact=REMOTE, record_route=record_route,
        request_uri=SipUri.parse("sip:bob@b"), early=early)


def test_uac_route_set_is_record_route_reversed() -> None:
    """§12.1.2: the UAC's route set is the Record-Route of the response, reversed."""
    dialog = uac(routes("<sip:p2;lr>", "<sip:p1;lr>"))
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1;lr", "sip:p2;lr"]
    assert dialog.id == ("c1", "lt", "rt")


def test_uas_route_set_keeps_record_route_order() -> None:
    """§12.1.1: the UAS keeps Record-Route order; an absent From tag is empty."""
    dialog = Dialog.as_uas(
        call_id="c1", local_tag="lt", local_uri="<sip:bob@b>", remote_uri="<sip:alice@a>",
        local_target=SipUri.parse("sip:bob@10.0.0.2"), remote_tag=None, remote_seq=5,
        contact=REMOTE, record_route=routes("<sip:p1;lr>", "<sip:p2;lr>"),
        request_uri=SipUri.parse("sip:bob@b"))
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1;lr", "sip:p2;lr"]
    assert dialog.remote_tag == "" and dialog.state is DialogState.EARLY


def test_loose_routing() -> None:
    """§12.2.1.1: first route has lr -> Request-URI is the remote target."""
    dialog = uac(routes("<sip:p2;lr>", "<sip:p1;lr>"))
    request_uri, route = dialog.request_routing()
    assert request_uri == REMOTE
    assert route == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert str(dialog.next_hop()) == "sip:p1;lr"


def test_strict_router_example_of_rfc_3261() -> None:
    """§12.2.1.1 example: route set <sip:proxy1>,<sip:proxy2>,<sip:proxy3;lr>,
    <sip:proxy4> gives "METHOD sip:proxy1" and Route: proxy2, proxy3, proxy4, target."""
    dialog = uac(list(reversed(routes("<sip:proxy1>", "<sip:proxy2>", "<sip:proxy3;lr>",
                                      "<sip:proxy4>"))))
    request_uri, route = dialog.request_routing()
    assert str(request_uri) == "sip:proxy1"
    assert route == ["<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>", "<sip:user@remoteua>"]
    request = rq.in_dialog_request(dialog, "BYE", via="SIP/2.0/UDP a;branch=z9hG4bKx",
                                   cseq=2, contact=False)
    assert str(request.uri) == "sip:proxy1"
    assert request.headers.get_all("Route") == route


def test_no_route_set() -> None:
    dialog = uac([])
    assert dialog.request_routing() == (REMOTE, [])
    assert dialog.next_hop() == REMOTE


def test_cseq_rules() -> None:
    """§12.2.1.1: local CSeq increments by one; §12.2.2: lower remote CSeq -> 500,
    ACK/CANCEL exempt."""
    dialog = uac([])
    assert dialog.next_local_seq() == 2
    assert dialog.next_local_seq() == 3
    dialog.check_remote_seq(10, "INVITE")
    dialog.check_remote_seq(10, "ACK")
    dialog.check_remote_seq(12, "BYE")  # gaps are fine
    with pytest.raises(SipError) as lower:
        dialog.check_remote_seq(11, "INFO")
    assert lower.value.status == 500
    assert dialog.remote_seq == 12


def test_target_refresh_is_read_then_applied() -> None:
    """§12.2.2: a target refresh request's Contact replaces the remote target - in two
    steps, so that refusing the request leaves the dialog as it was."""
    dialog = uac([])
    moved = SipUri.parse("sip:user@10.9.9.9:5070")
    assert dialog.target_refresh_of("INVITE", moved) == moved
    assert dialog.target_refresh_of("UPDATE", moved) == moved
    assert dialog.target_refresh_of("BYE", moved) is None  # not a target refresh
    assert dialog.target_refresh_of("INVITE", REMOTE) is None  # unchanged
    assert dialog.remote_target == REMOTE
    assert dialog.set_remote_target(moved) == REMOTE
    assert dialog.remote_target == moved


def test_local_contact_after_rebind() -> None:
    dialog = uac([])
    dialog.set_local_contact(SipUri.parse("sip:alice@10.7.7.7:5062"))
    request = rq.in_dialog_request(dialog, "INVITE", via="SIP/2.0/UDP a;branch=z9hG4bKx",
                                   cseq=dialog.next_local_seq(), contact=True)
    assert request.contacts[0].uri.host == "10.7.7.7"
    secure = uac([])
    secure.secure = True
    with pytest.raises(ValueError):
        secure.set_local_contact(SipUri.parse("sip:alice@10.7.7.7"))


def test_early_dialog_confirmed_by_2xx() -> None:
    """§13.2.2.4: the 2xx's Contact and Record-Route replace those of the 1xx."""
    dialog = uac([], early=True)
    before = dialog.state
    dialog.confirm(contact=SipUri.parse("sip:user@final"), record_route=routes("<sip:p;lr>"))
    assert (before, dialog.state) == (DialogState.EARLY, DialogState.CONFIRMED)
    assert str(dialog.remote_target) == "sip:user@final"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p;lr"]


@pytest.mark.parametrize(("value", "plain", "tag"), [
    ("Alice <sip:alice@a.com>;tag=1928", "Alice <sip:alice@a.com>", "1928"),
    ('"A;tag=x <b>" <sip:a@b;tag=no>;foo=1;tag=abc', '"A;tag=x <b>" <sip:a@b;tag=no>;foo=1',
     "abc"),
    ("sip:bob@b.com", "sip:bob@b.com", None),
    ("sip:bob@b.com;tag=77;x", "sip:bob@b.com;x", "77"),
    ("Bob <sip:bob@biloxi.com> ; tag = zz", "Bob <sip:bob@biloxi.com>", "zz"),
])
def test_split_tag(value: str, plain: str, tag: str | None) -> None:
    """§20.20/§20.39: the tag is a header parameter, never a URI parameter."""
    assert split_tag(value) == (plain, tag)


def test_split_tag_with_quoted_gt_in_a_parameter() -> None:
    """A quoted parameter value may hold ">" (§25.1 gen-value): not a URI end."""
    assert split_tag('<sip:a@b>;foo="x>y";tag=1') == ('<sip:a@b>;foo="x>y"', "1")
