"""Recorded messages of another implementation, GStreamer's libgstsdp (built through its
GI API by tests/mikey/gst_mikey_helper.py, saved in tests/mikey/data/gstreamer_psk_*.b64):
decoded field by field (RFC 3830 §6), re-encoded byte-exact, and cut at every length.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mobilityd.mikey.constants import (
    DataType,
    EncrAlg,
    KeyDataType,
    MacAlg,
    PayloadType,
    ProtType,
    SrtpParam,
    TsType,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    Kemac,
    KeyData,
    KeySpi,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
    parse_key_data_chain,
)

DATA = Path(__file__).with_name("data")


def capture(index: int) -> bytes:
    return base64.b64decode((DATA / f"gstreamer_psk_{index}.b64").read_text().strip())


def key_data_of(msg: MikeyMessage) -> KeyData:
    kemac = msg.require(Kemac)
    assert (kemac.encr_alg, kemac.mac_alg, kemac.mac) == (EncrAlg.NULL, MacAlg.NULL, b"")
    (item,) = parse_key_data_chain(kemac.encr_data)
    assert isinstance(item, KeyData)
    return item


def test_capture_1_tgk_one_crypto_session() -> None:
    msg = MikeyMessage.parse(capture(1))
    hdr = msg.header
    assert (hdr.version, hdr.data_type, hdr.v_flag, hdr.csb_id) == (
        1, DataType.PSK_INIT, False, 0x12345678,
    )  # fmt: skip
    assert hdr.cs_map == (SrtpCsEntry(0, 0xDEADBEEF, 0),)
    assert [p.payload_type for p in msg.payloads] == [
        PayloadType.T, PayloadType.RAND, PayloadType.SP, PayloadType.KEMAC,
    ]  # fmt: skip
    assert msg.require(Timestamp) == Timestamp(
        TsType.NTP_UTC, 0xE7C3A1B2A1A2A3A4, next_payload=PayloadType.RAND
    )
    assert msg.require(Rand).rand == bytes(range(16))
    sp = msg.require(SecurityPolicy)
    assert (sp.policy_no, sp.prot_type) == (0, ProtType.SRTP)
    assert [(p.param_type, p.int_value) for p in sp.params] == [
        (SrtpParam.ENCR_ALG, 1), (SrtpParam.SESSION_ENCR_KEY_LEN, 16), (SrtpParam.AUTH_ALG, 1),
        (SrtpParam.SESSION_AUTH_KEY_LEN, 20), (SrtpParam.SESSION_SALT_KEY_LEN, 14),
        (SrtpParam.SRTP_ENCRYPTION, 1), (SrtpParam.AUTH_TAG_LEN, 10),
    ]  # fmt: skip
    assert key_data_of(msg) == KeyData(KeyDataType.TGK, b"\x11" * 16)


def test_capture_2_tek_salt_spi_two_crypto_sessions() -> None:
    msg = MikeyMessage.parse(capture(2))
    assert msg.header.csb_id == 0xFFFFFFFF
    assert msg.header.cs_map == (SrtpCsEntry(0, 1, 2), SrtpCsEntry(1, 0xCAFEBABE, 7))
    assert key_data_of(msg) == KeyData(
        KeyDataType.TEK_SALT, b"\x22" * 16, b"\x33" * 14, KeySpi(b"\x01\x02\x03\x04")
    )


def test_capture_3_no_crypto_session_no_policy() -> None:
    msg = MikeyMessage.parse(capture(3))
    assert msg.header.csb_id == 7
    assert msg.header.cs_map == ()
    assert [p.payload_type for p in msg.payloads] == [
        PayloadType.T, PayloadType.RAND, PayloadType.KEMAC,
    ]  # fmt: skip
    assert key_data_of(msg) == KeyData(KeyDataType.TGK, b"\x44" * 32, None, KeySpi(b"\x09"))


@pytest.mark.parametrize("index", [1, 2, 3])
def test_captures_re_encode_exactly_and_every_cut_is_rejected(index: int) -> None:
    data = capture(index)
    assert bytes(MikeyMessage.parse(data)) == data
    for cut in range(len(data)):
        with pytest.raises(MikeyError):
            MikeyMessage.parse(data[:cut])
    with pytest.raises(MikeyError):
        MikeyMessage.parse(data + b"\x00")
