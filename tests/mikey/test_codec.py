"""MIKEY codec: field-by-field decoding of hand-encoded RFC 3830 §6 layouts, and errors."""

from __future__ import annotations

import pytest

from mobilityd.mikey.constants import (
    CacheType,
    CertType,
    CsIdMapType,
    DataType,
    DhGroup,
    EncrAlg,
    ErrorType,
    GeneralExtType,
    HashFunc,
    IdType,
    KeyDataType,
    MacAlg,
    PayloadType,
    ProtType,
    SignatureType,
    SrtpParam,
    TsType,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MAX_MESSAGE_SIZE, MAX_PAYLOADS, MikeyMessage
from mobilityd.mikey.payloads import (
    CertHash,
    CertPayload,
    CommonHeader,
    DhPayload,
    ErrorPayload,
    GeneralExtension,
    IdPayload,
    Kemac,
    KeyData,
    KeyInterval,
    KeySpi,
    Pke,
    Rand,
    SecurityPolicy,
    Signature,
    SrtpCsEntry,
    Timestamp,
    Verification,
    encode_key_data_chain,
    parse_key_data_chain,
)

H = bytes.fromhex

# RFC 3830 §6.1 / §6.1.1: version 1, data type 0 (PSK), next payload T (5), V=1, PRF 0,
# CSB ID 0x01020304, #CS 2, map type SRTP-ID, two entries (policy, SSRC, ROC).
HDR_BYTES = H("01 00 05 80 01020304 02 00 00 deadbeef 00000000 01 cafebabe 00000007")
T_BYTES = H("0b 00 e7c3a1b2 00112233")  # §6.6: next RAND(11), NTP-UTC, 64-bit value
RAND_BYTES = H("01 10") + bytes(range(16))  # §6.11: next KEMAC(1), len 16
KEMAC_BYTES = (  # §6.2: last, AES-CM, 4 bytes of encr data, HMAC-SHA-1-160, 20-byte MAC
    H("00 01 0004 a1a2a3a4 01") + bytes(range(100, 120))
)
PSK_MESSAGE = HDR_BYTES + T_BYTES + RAND_BYTES + KEMAC_BYTES


def test_common_header_fields_rfc3830_6_1() -> None:
    msg = MikeyMessage.parse(PSK_MESSAGE)
    hdr = msg.header
    assert hdr.version == 1
    assert hdr.data_type is DataType.PSK_INIT
    assert hdr.next_payload is PayloadType.T
    assert hdr.v_flag is True
    assert hdr.csb_id == 0x01020304
    assert hdr.cs_id_map_type is CsIdMapType.SRTP_ID
    assert hdr.cs_map == (SrtpCsEntry(0, 0xDEADBEEF, 0), SrtpCsEntry(1, 0xCAFEBABE, 7))
    assert bytes(hdr) == HDR_BYTES


def test_psk_message_payloads_in_wire_order() -> None:
    msg = MikeyMessage.parse(PSK_MESSAGE)
    assert [p.payload_type for p in msg.payloads] == [
        PayloadType.T,
        PayloadType.RAND,
        PayloadType.KEMAC,
    ]
    ts = msg.require(Timestamp)
    assert (ts.ts_type, ts.value, ts.value_bytes) == (
        TsType.NTP_UTC,
        0xE7C3A1B200112233,
        H("e7c3a1b200112233"),
    )
    assert msg.find(PayloadType.RAND) == Rand(bytes(range(16)), next_payload=PayloadType.KEMAC)
    kemac = msg.require(Kemac)
    assert kemac.encr_alg is EncrAlg.AES_CM_128
    assert kemac.encr_data == H("a1a2a3a4")
    assert kemac.mac_alg is MacAlg.HMAC_SHA1_160
    assert kemac.mac == bytes(range(100, 120))
    assert bytes(msg) == PSK_MESSAGE


def test_authenticated_bytes_exclude_only_the_mac_rfc3830_5_2() -> None:
    msg = MikeyMessage.parse(PSK_MESSAGE)
    assert msg.authenticated_bytes() == PSK_MESSAGE[:-20]
    assert msg.auth_field == bytes(range(100, 120))
    resigned = msg.with_auth_field(b"\x55" * 20)
    assert bytes(resigned) == PSK_MESSAGE[:-20] + b"\x55" * 20
    assert resigned.authenticated_bytes() == msg.authenticated_bytes()


def test_pke_kemac_mac_input_has_next_payload_zero_rfc3830_5_2() -> None:
    kemac = Kemac(
        EncrAlg.AES_CM_128, b"xy", MacAlg.HMAC_SHA1_160, b"m" * 20, next_payload=PayloadType.SIGN
    )
    assert kemac.pke_mac_input() == H("00 01 0002") + b"xy" + H("01")


def test_signature_covers_type_and_length_rfc3830_6_5() -> None:
    hdr = CommonHeader(DataType.DH_INIT, 7, (SrtpCsEntry(0, 1, 0),))
    dh = DhPayload(DhGroup.OAKLEY_5, bytes(192))
    msg = MikeyMessage.build(hdr, [dh, Signature(SignatureType.RSA_PSS, b"s" * 256)])
    wire = bytes(msg)
    assert wire[-258:-256] == ((1 << 12) | 256).to_bytes(2, "big")
    assert msg.authenticated_bytes() == wire[:-256]
    assert msg.payloads[0].next_payload is PayloadType.SIGN
    assert MikeyMessage.parse(wire) == msg


def test_empty_cs_map_rfc4563() -> None:
    hdr = CommonHeader(DataType.PSK_RESP, 9, (), CsIdMapType.EMPTY)
    wire = bytes(MikeyMessage.build(hdr, []))
    assert wire == H("01 01 00 00 00000009 00 01")
    assert MikeyMessage.parse(wire).header.cs_id_map_type is CsIdMapType.EMPTY


@pytest.mark.parametrize(
    ("payload", "encoded"),
    [
        (Pke(CacheType.CACHE_FOR_CSB, b"\xaa\xbb"), H("00 8002 aabb")),  # §6.3: C=2, len 2
        (
            DhPayload(DhGroup.OAKLEY_1, bytes(96), KeySpi(b"\x01\x02")),
            H("00 01") + bytes(96) + H("01 02 0102"),
        ),  # §6.4 / §6.14 SPI
        (DhPayload(DhGroup.OAKLEY_2, bytes(128)), H("00 02") + bytes(128) + H("00")),
        (Timestamp(TsType.COUNTER, 0x01020304), H("00 02 01020304")),  # §6.6 32-bit counter
        (IdPayload(IdType.URI, b"sip:a@b"), H("00 01 0007") + b"sip:a@b"),  # §6.7
        (CertPayload(CertType.X509V3_SIGN, b"DER"), H("00 02 0003") + b"DER"),
        (CertHash(HashFunc.MD5, bytes(16)), H("00 01") + bytes(16)),  # §6.8
        (Verification(MacAlg.HMAC_SHA1_160, bytes(20)), H("00 01") + bytes(20)),  # §6.9
        (Verification(MacAlg.NULL, b""), H("00 00")),
        (ErrorPayload(ErrorType.INVALID_TS), H("00 01 0000")),  # §6.12
        (GeneralExtension(GeneralExtType.SDP_IDS, b"mikey"), H("00 01 0005") + b"mikey"),
        (GeneralExtension(200, b""), H("00 c8 0000")),  # private type passes through
        (Signature(SignatureType.RSA_PKCS1_V15, b"\x01\x02\x03"), H("0003 010203")),
    ],
)
def test_payload_layouts_rfc3830_6(payload: object, encoded: bytes) -> None:
    assert bytes(payload) == encoded  # type: ignore[call-overload]
    assert type(payload).parse(encoded) == payload  # type: ignore[attr-defined]
    for cut in range(len(encoded)):
        with pytest.raises(MikeyError):
            type(payload).parse(encoded[:cut])  # type: ignore[attr-defined]
    with pytest.raises(MikeyError):
        type(payload).parse(encoded + b"\x00")  # type: ignore[attr-defined]


def test_security_policy_srtp_parameters_rfc3830_6_10_1() -> None:
    sp = SecurityPolicy.srtp_defaults(policy_no=3)
    wire = bytes(sp)
    assert wire[:5] == H("00 03 00 0027")  # 13 params x 3 bytes = 39
    parsed = SecurityPolicy.parse(wire)
    assert parsed == sp
    assert parsed.prot_type is ProtType.SRTP
    assert parsed.get_int(SrtpParam.ENCR_ALG) == 1  # AES-CM
    assert parsed.get_int(SrtpParam.SESSION_SALT_KEY_LEN) == 14
    assert parsed.get_int(SrtpParam.AUTH_TAG_LEN) == 10
    assert parsed.get(SrtpParam.SRTP_PREFIX_LEN) == b"\x00"
    assert [p.param_type for p in parsed.params] == list(SrtpParam)[:13]  # all §6.10.1 types


def test_key_data_sub_payloads_rfc3830_6_13() -> None:
    tgk = KeyData(KeyDataType.TGK, b"K" * 16)
    tek_salt = KeyData(
        KeyDataType.TEK_SALT, b"T" * 16, b"S" * 14, KeyInterval(bytes(6), b"\xff" * 6)
    )
    tgk_spi = KeyData(KeyDataType.TGK_SALT, b"G" * 16, b"s" * 14, KeySpi(b"\x07"))
    chain = encode_key_data_chain([tgk, tek_salt, tgk_spi])
    assert chain[:4] == H("14 00 0010")  # next Key data (20), TGK, KV null, len 16
    second = chain[20:]
    assert second[:4] == H("14 32 0010")  # TEK+SALT (3), KV interval (2)
    items = parse_key_data_chain(chain)
    assert [i.key_type for i in items if isinstance(i, KeyData)] == [
        KeyDataType.TGK,
        KeyDataType.TEK_SALT,
        KeyDataType.TGK_SALT,
    ]
    assert items[1] == KeyData(
        KeyDataType.TEK_SALT,
        b"T" * 16,
        b"S" * 14,
        KeyInterval(bytes(6), b"\xff" * 6),
        next_payload=PayloadType.KEY_DATA,
    )
    assert isinstance(items[2], KeyData) and items[2].kv == KeySpi(b"\x07")
    assert encode_key_data_chain(items) == chain
    for cut in range(1, len(chain)):
        with pytest.raises(MikeyError):
            parse_key_data_chain(chain[:cut])


def test_key_data_chain_public_key_method_starts_with_id_rfc3830_6_2() -> None:
    chain = encode_key_data_chain(
        [IdPayload(IdType.URI, b"sip:i@x"), KeyData(KeyDataType.TGK, b"k" * 16)]
    )
    items = parse_key_data_chain(chain, first=PayloadType.ID)
    assert isinstance(items[0], IdPayload) and items[0].next_payload is PayloadType.KEY_DATA
    with pytest.raises(MikeyError):
        parse_key_data_chain(chain)  # read as key data, the ID bytes are garbage


def test_key_data_chain_update_message_is_empty_and_padding_rules() -> None:
    assert parse_key_data_chain(b"") == ()
    chain = encode_key_data_chain([KeyData(KeyDataType.TGK, b"k" * 16)])
    assert len(parse_key_data_chain(chain + bytes(4), allow_zero_padding=True)) == 1
    with pytest.raises(MikeyError):
        parse_key_data_chain(chain + bytes(4))
    with pytest.raises(MikeyError):
        parse_key_data_chain(chain + b"\x00\x01", allow_zero_padding=True)


def test_key_data_chain_limit() -> None:
    chain = encode_key_data_chain([KeyData(KeyDataType.TGK, b"")] * 17)
    with pytest.raises(MikeyError, match="more than 16"):
        parse_key_data_chain(chain)


def test_find_helpers() -> None:
    hdr = CommonHeader(DataType.PK_INIT, 1)
    msg = MikeyMessage.build(hdr, [Rand(b"a"), IdPayload(IdType.NAI, b"x"), Rand(b"b")])
    assert msg.find(PayloadType.SP) is None
    assert [r.rand for r in msg.find_all(Rand)] == [b"a", b"b"]
    assert len(msg.find_all(PayloadType.RAND)) == 2
    with pytest.raises(MikeyError, match="missing KEMAC"):
        msg.require(Kemac)
    with pytest.raises(MikeyError):
        _ = msg.auth_field


def test_inconsistent_chain_is_a_local_error() -> None:
    hdr = CommonHeader(DataType.PSK_INIT, 1)
    with pytest.raises(ValueError, match="build"):
        MikeyMessage(hdr, (Rand(b"a"),))


def _error(data: bytes) -> MikeyError:
    with pytest.raises(MikeyError) as info:
        MikeyMessage.parse(data)
    return info.value


@pytest.mark.parametrize(
    ("data", "error_type"),
    [
        (H("02 00 00 00 00000001 00 00"), ErrorType.UNSPECIFIED),  # version 2
        (H("01 63 00 00 00000001 00 00"), ErrorType.INVALID_DT),  # data type 99
        (H("01 00 00 01 00000001 00 00"), ErrorType.INVALID_PRF),  # PRF 1
        (H("01 00 1e 00 00000001 00 00"), ErrorType.UNSPECIFIED),  # next payload 30
        (H("01 00 0d 00 00000001 00 00 00"), ErrorType.UNSPECIFIED),  # RFC 6043 TR not decoded
        (H("01 00 14 00 00000001 00 00") + H("00 00 0000"), ErrorType.UNSPECIFIED),  # key data
        (H("01 00 00 00 00000001 00 02"), ErrorType.UNSPECIFIED),  # GENERIC-ID map
        (H("01 00 00 00 00000001 01 01"), ErrorType.UNSPECIFIED),  # empty map, #CS 1
        (H("01 00 00 00 00000001 00 09"), ErrorType.UNSPECIFIED),  # map type 9
        (H("01 00 00 00 00000001 00 00 ff"), ErrorType.UNSPECIFIED),  # trailing byte
        (H("01 00 01 00 00000001 00 00 00 07 0000 00"), ErrorType.INVALID_EA),
        (H("01 00 01 00 00000001 00 00 00 00 0000 05"), ErrorType.INVALID_MAC),
        (H("01 00 03 00 00000001 00 00 00 09"), ErrorType.INVALID_DH),
        (H("01 00 03 00 00000001 00 00 00 01") + bytes(96) + H("10"), ErrorType.UNSPECIFIED),
        (H("01 00 03 00 00000001 00 00 00 01") + bytes(96) + H("03"), ErrorType.UNSPECIFIED),
        (H("01 00 05 00 00000001 00 00 00 03 00000000"), ErrorType.INVALID_TS),
        (H("01 00 06 00 00000001 00 00 00 05 0000"), ErrorType.INVALID_ID),
        (H("01 00 07 00 00000001 00 00 00 05 0000"), ErrorType.INVALID_CERT),
        (H("01 00 08 00 00000001 00 00 00 02"), ErrorType.INVALID_HA),
        (H("01 00 09 00 00000001 00 00 00 02"), ErrorType.INVALID_MAC),
        (H("01 00 0a 00 00000001 00 00 00 00 01 0000"), ErrorType.INVALID_SP),
        (H("01 00 0a 00 00000001 00 00 00 00 00 0003 0d 01 00"), ErrorType.INVALID_SPPAR),
        (H("01 00 0a 00 00000001 00 00 00 00 00 0003 00 01 07"), ErrorType.INVALID_SPPAR),
        (H("01 00 0a 00 00000001 00 00 00 00 00 0004 07 02 0001"), ErrorType.INVALID_SPPAR),
        (H("01 00 0a 00 00000001 00 00 00 00 00 0003 0b 05 00"), ErrorType.UNSPECIFIED),
        (H("01 00 0c 00 00000001 00 00 00 63 0000"), ErrorType.UNSPECIFIED),  # error no 99
        (H("01 00 02 00 00000001 00 00 00 c000"), ErrorType.UNSPECIFIED),  # PKE C=3
        (H("01 00 04 00 00000001 00 00 f000"), ErrorType.UNSPECIFIED),  # S type 15
        (H("01 00 04 00 00000001 00 00 0000 00"), ErrorType.UNSPECIFIED),  # after SIGN
    ],
)
def test_bad_input_gives_typed_error_rfc3830_6_12(data: bytes, error_type: ErrorType) -> None:
    error = _error(data)
    assert error.error_type is error_type
    assert error.error_type.name in str(error)


def test_every_truncation_of_a_valid_message_is_rejected() -> None:
    for cut in range(len(PSK_MESSAGE)):
        _error(PSK_MESSAGE[:cut])


def test_size_and_payload_count_limits() -> None:
    hdr = H("01 00 0b 00 00000001 00 00")
    rands = H("0b 00") * MAX_PAYLOADS + H("00 00")
    assert "more than" in str(_error(hdr + rands))
    assert (
        len(MikeyMessage.parse(hdr + H("0b 00") * (MAX_PAYLOADS - 1) + H("00 00")).payloads)
        == MAX_PAYLOADS
    )
    ext = H("01 00 15 00 00000001 00 00 00 00 ffff") + bytes(0xFFFF)
    assert len(ext) > MAX_MESSAGE_SIZE
    assert "exceeds" in str(_error(ext))


def test_non_bytes_input_is_a_mikey_error() -> None:
    with pytest.raises(MikeyError):
        MikeyMessage.parse("0100")  # type: ignore[arg-type]


def test_build_refuses_to_encode_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="RAND"):
        bytes(Rand(bytes(256)))
    with pytest.raises(ValueError, match="MAC"):
        bytes(Kemac(EncrAlg.NULL, b"", MacAlg.HMAC_SHA1_160, b""))
    with pytest.raises(ValueError, match="salt"):
        bytes(KeyData(KeyDataType.TGK_SALT, b"k"))


def test_build_refuses_an_oversized_message() -> None:
    ext = GeneralExtension(GeneralExtType.VENDOR_ID, bytes(0xFFFF))
    with pytest.raises(ValueError, match="exceeds"):
        MikeyMessage.build(CommonHeader(DataType.PSK_INIT, 1), [ext])


def test_build_reuses_payloads_whose_next_field_is_already_right() -> None:
    rand = Rand(b"x", next_payload=PayloadType.LAST)
    msg = MikeyMessage.build(CommonHeader(DataType.PSK_INIT, 1), [rand])
    assert msg.payloads[0] is rand
    chained = MikeyMessage.build(msg.header, [rand, rand])
    assert chained.payloads[0] == Rand(b"x", next_payload=PayloadType.RAND)
    assert chained.payloads[1] is rand
