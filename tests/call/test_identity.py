"""The MIKEY identity of a SIP party (RFC 3830 §6.7 URI; our canonical form)."""

from __future__ import annotations

import pytest

from mobilityd.call.identity import sip_identity
from mobilityd.sip.uri import NameAddr, SipUri


@pytest.mark.parametrize(("party", "identity"), [
    ("sip:alice@A.Test", b"sip:alice@a.test"),
    ("<sip:alice@a.test:5070;transport=tcp>", b"sip:alice@a.test"),
    ("sips:bob@b.test", b"sips:bob@b.test"),
    ("tel:+4687900000", b"tel:+4687900000"),
])
def test_canonical_form(party: str, identity: bytes) -> None:
    assert sip_identity(party) == identity


def test_name_addr_and_uri_agree() -> None:
    uri = SipUri.parse("sip:carol@c.test;user=phone")
    assert sip_identity(NameAddr(uri=uri, display_name="Carol")) == sip_identity(uri) == (
        b"sip:carol@c.test")
