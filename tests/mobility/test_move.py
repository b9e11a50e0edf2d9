"""The moving side's re-INVITE offer (issue 5 step 2): RFC 3264 §8 ``o=`` version + 1,
new ``c=``/ports (RFC 8866 §5.7, RFC 3605 §2.1) and an RFC 3830 §4.5 update message in
``a=key-mgmt`` (RFC 4567 §3.1) that leaves every key as it was."""

from __future__ import annotations

import pytest

from mobilityd.mikey.constants import DataType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import Rand
from mobilityd.mikey.sdp import decode_key_mgmt
from mobilityd.mobility.move import MediaAddress, MoveUsageError, move_offer, relocated_sdp
from mobilityd.sip.sdp import SessionDescription
from tests.mobility.moving import NOW, bob_sdp, dh_call, pki, psk_call, seeded


def _update_of(sdp: SessionDescription) -> bytes:
    (key_mgmt,) = sdp.key_mgmt
    return decode_key_mgmt(f"mikey {key_mgmt.data}")


def test_offer_moves_origin_connection_ports_rfc3264_8() -> None:
    bob, _ = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40002, 40003), NOW + 1)
    sdp = SessionDescription.parse(offer.body)
    assert (sdp.origin.sess_id, sdp.origin.sess_version) == ("4242", 2)
    assert sdp.origin.address == "10.3.0.7"
    assert str(sdp.connection) == "IN IP4 10.3.0.7"
    assert sdp.media[0].port == 40002
    assert sdp.media[0].get("rtcp") == "40003 IN IP4 10.3.0.7"
    assert sdp.media[0].rtpmaps == bob_sdp().media[0].rtpmaps
    assert offer.content_type == "application/sdp"


def test_offer_carries_a_rfc3830_4_5_update_same_csb_no_rand() -> None:
    bob, _ = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    update = _update_of(SessionDescription.parse(offer.body))
    assert update == offer.update
    message = MikeyMessage.parse(update)
    assert message.header.csb_id == bob.csb_id
    assert message.header.data_type == DataType.PSK_INIT
    assert message.find(Rand) is None
    assert offer.context.tgk == bob.tgk
    assert offer.context.srtp_master(1) == bob.srtp_master(1)
    assert offer.context.srtp_master(2) == bob.srtp_master(2)


def test_each_move_has_a_new_timestamp_and_version() -> None:
    bob, _ = psk_call()
    first = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    second = move_offer(first.sdp, first.context, MediaAddress("10.4.0.2", 40000), NOW + 1)
    assert second.sdp.origin.sess_version == 3
    assert first.update != second.update  # the T is bumped even when the clock stood still
    assert first.context.last_timestamp < second.context.last_timestamp


def test_ipv4_to_ipv6_changes_addrtype_rfc8866_5_7() -> None:
    bob, _ = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("fd00:4::2", 40000, 40001), NOW)
    sdp = SessionDescription.parse(offer.body)
    assert str(sdp.connection) == "IN IP6 fd00:4::2"
    assert sdp.origin.addrtype == "IP6"
    assert sdp.media[0].get("rtcp") == "40001 IN IP6 fd00:4::2"


def test_media_level_key_mgmt_and_connection_stay_at_media_level() -> None:
    bob, _ = psk_call()
    previous = SessionDescription.parse(
        "v=0\r\no=bob 1 5 IN IP4 10.2.0.2\r\ns=-\r\nt=0 0\r\n"
        "m=audio 4000 RTP/SAVP 0\r\nc=IN IP4 10.2.0.2\r\na=key-mgmt:mikey AQAFgQ==\r\n"
        "m=video 0 RTP/SAVP 96\r\n")
    sdp = move_offer(previous, bob, MediaAddress("10.3.0.7", 4000), NOW).sdp
    assert sdp.connection is None and not sdp.key_mgmt
    assert str(sdp.media[0].connections[0]) == "IN IP4 10.3.0.7"
    assert len(sdp.media[0].key_mgmt) == 1
    assert sdp.media[1].port == 0 and not sdp.media[1].key_mgmt  # rejected stays rejected


def test_dh_context_update_is_signed() -> None:
    bob, alice = dh_call(pki())
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1, seeded(3))
    message = MikeyMessage.parse(offer.update)
    assert message.header.data_type == DataType.DH_INIT
    assert alice.verify_update(offer.update, NOW + 1).tgk == alice.tgk


@pytest.mark.parametrize("bad", [
    lambda: MediaAddress("not-an-ip", 4000),
    lambda: MediaAddress("10.0.0.1", 0),
    lambda: MediaAddress("10.0.0.1", 4000, 70000),
])
def test_bad_local_address_is_a_usage_error(bad: object) -> None:
    with pytest.raises(MoveUsageError):
        bad()  # type: ignore[operator]


def test_nothing_to_move_is_a_usage_error() -> None:
    bob, _ = psk_call()
    no_media = SessionDescription.parse("v=0\r\no=bob 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n")
    with pytest.raises(MoveUsageError):
        move_offer(no_media, bob, MediaAddress("10.3.0.7", 4000), NOW)


def test_relocated_answer_drops_key_mgmt_and_bumps_version_rfc3264_8() -> None:
    sdp = relocated_sdp(bob_sdp(), MediaAddress("fd00:1::2", 40000, 40001))
    assert sdp.origin.sess_version == 2 and sdp.origin.addrtype == "IP6"
    assert str(sdp.connection) == "IN IP6 fd00:1::2"
    assert not sdp.key_mgmt and not sdp.media[0].key_mgmt
    assert SessionDescription.parse(bytes(sdp)) == sdp  # round trip
