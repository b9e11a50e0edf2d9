"""RFC 4567 helpers: ``a=key-mgmt:mikey <base64>`` both ways and the SDP IDs extension."""

from __future__ import annotations

import base64

import pytest

from mobilityd.mikey.constants import DataType, ErrorType, GeneralExtType, IdType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import CommonHeader, GeneralExtension, IdPayload, Rand
from mobilityd.mikey.sdp import (
    check_sdp_ids,
    decode_key_mgmt,
    encode_key_mgmt,
    key_mgmt_protocols,
    read_sdp_ids,
    sdp_ids_extension,
)

MESSAGE = bytes(MikeyMessage.build(CommonHeader(DataType.PSK_INIT, 42), [Rand(b"r" * 16)]))

# RFC 4567 §4.1.4 example offer (key-mgmt data shortened to valid base64).
OFFER = """v=0\r
o=alice 2891092738 2891092738 IN IP4 lost.example.com\r
s=Secret discussion\r
t=0 0\r
c=IN IP4 lost.example.com\r
a=key-mgmt:mikey AQAFgM0X\r
a=key-mgmt:keyp1 727gkdOs\r
a=key-mgmt:keyp2 DFsnuiSD\r
m=audio 39000 RTP/SAVP 98\r
a=rtpmap:98 AMR/8000\r
"""


def test_encode_is_mikey_space_base64_rfc4567_3_1() -> None:
    value = encode_key_mgmt(MESSAGE)
    assert value == "mikey " + base64.b64encode(MESSAGE).decode()
    assert decode_key_mgmt(value) == MESSAGE


@pytest.mark.parametrize("prefix", ["", " ", "a=key-mgmt:", "a=key-mgmt: "])
def test_decode_accepts_optional_space_and_whole_line(prefix: str) -> None:
    assert decode_key_mgmt(prefix + encode_key_mgmt(MESSAGE) + "\r\n") == MESSAGE


@pytest.mark.parametrize(
    "value",
    [
        "keyp1 AQAFgM0X",  # another protocol
        "MIKEY AQAFgM0X",  # KMPID is case sensitive (RFC 4567 §3)
        "mikey",  # no data
        "mikey ",  # empty data
        "mikey AQAFgM0",  # unpadded
        "mikey AQAF gM0X",  # embedded space
        "mikey AQAF*M0X",  # not in the alphabet
        "mikey AQAFgM0X==",  # padding where none belongs
        "mi-key AQAFgM0X",  # not a KMPID
        "mikey " + "A" * 100_000,  # oversized
    ],
)
def test_decode_rejects_bad_values_with_mikey_error(value: str) -> None:
    with pytest.raises(MikeyError) as info:
        decode_key_mgmt(value)
    assert info.value.error_type is ErrorType.UNSPECIFIED


def test_decode_rejects_non_text() -> None:
    with pytest.raises(MikeyError):
        decode_key_mgmt(b"mikey AAAA")  # type: ignore[arg-type]


def test_protocol_list_from_sdp_rfc4567_4_1_4() -> None:
    assert key_mgmt_protocols(OFFER) == ["mikey", "keyp1", "keyp2"]


def test_sdp_ids_extension_carries_prtcl_list_rfc4567_7() -> None:
    ext = sdp_ids_extension(key_mgmt_protocols(OFFER))
    assert ext.ext_type == GeneralExtType.SDP_IDS
    assert ext.data == b"mikey;keyp1;keyp2"
    assert bytes(ext) == b"\x00\x01\x00\x11mikey;keyp1;keyp2"
    assert read_sdp_ids(GeneralExtension.parse(bytes(ext))) == ["mikey", "keyp1", "keyp2"]
    with pytest.raises(ValueError, match="invalid"):
        sdp_ids_extension(["mikey", "bad id"])


def test_check_sdp_ids_detects_bidding_down_rfc4567_4_1_4() -> None:
    hdr = CommonHeader(DataType.PSK_INIT, 1)
    msg = MikeyMessage.build(hdr, [sdp_ids_extension(["mikey", "keyp1"]), Rand(b"x" * 16)])
    check_sdp_ids(msg, ["mikey", "keyp1"])
    with pytest.raises(MikeyError) as info:
        check_sdp_ids(msg, ["mikey"])  # keyp1 peeled off by a man in the middle
    assert info.value.error_type is ErrorType.AUTH_FAILURE
    with pytest.raises(MikeyError) as missing:
        check_sdp_ids(MikeyMessage.build(hdr, [IdPayload(IdType.URI, b"sip:a@b")]), ["mikey"])
    assert missing.value.error_type is ErrorType.AUTH_FAILURE


@pytest.mark.parametrize("data", [b"mikey;;x", b"", b"\xff", b"mikey;a b"])
def test_read_sdp_ids_rejects_malformed_lists(data: bytes) -> None:
    with pytest.raises(MikeyError):
        read_sdp_ids(GeneralExtension(GeneralExtType.SDP_IDS, data))
    with pytest.raises(MikeyError):
        read_sdp_ids(GeneralExtension(GeneralExtType.VENDOR_ID, b"mikey"))
