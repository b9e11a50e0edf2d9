"""KEMAC encryption and MAC (RFC 3830 §4.2.3, §4.2.4; RFC 3394 key wrap)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_wrap as lib_key_wrap

from mobilityd.mikey.constants import EncrAlg, ErrorType, MacAlg
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import MessageKeys
from mobilityd.mikey.protection import (
    aes_cm_iv,
    aes_key_unwrap,
    aes_key_wrap,
    compute_mac,
    decrypt_key_data,
    encrypt_key_data,
    mac_length,
    verify_mac,
)

# From tests/mikey/vectors/gen_kdf_vectors.py (independent of our code).
MSG_ENCR = bytes.fromhex("efc39853f12ab3b3586e0b7c3f694d4a")
MSG_AUTH = bytes.fromhex("ce6577affc779300c0d567fba733cd65a6d7d8b7")
MSG_SALT = bytes.fromhex("2080c46dcf73af9f761dbe02e31f")
CSB_ID = 0xCAFEBABE
TS = bytes.fromhex("e8f0a1b2c3d4e5f6")
EXPECTED_IV = "20800e9375cd476fd7af7dd606e90000"
KEYS = MessageKeys(MSG_ENCR, MSG_AUTH, MSG_SALT)
KEY_DATA = bytes.fromhex("00100010") + bytes(range(16))  # a TGK Key data sub-payload


def test_aes_cm_iv_rfc3830_4_2_3() -> None:
    assert aes_cm_iv(MSG_SALT, CSB_ID, TS).hex() == EXPECTED_IV


def test_aes_cm_counter_timestamp_is_zero_padded_rfc3830_6_6() -> None:
    assert aes_cm_iv(MSG_SALT, CSB_ID, TS[4:]) == aes_cm_iv(MSG_SALT, CSB_ID, bytes(4) + TS[4:])


def test_aes_cm_matches_plain_aes_ctr_with_rfc_iv() -> None:
    """AES-CM of RFC 3711 §4.1.1 with prefix 0 is AES-CTR starting at the IV."""
    encryptor = Cipher(algorithms.AES(MSG_ENCR), modes.CTR(bytes.fromhex(EXPECTED_IV)))
    expected = encryptor.encryptor().update(KEY_DATA)
    got = encrypt_key_data(EncrAlg.AES_CM_128, KEYS, CSB_ID, TS, KEY_DATA)
    assert got == expected
    assert decrypt_key_data(EncrAlg.AES_CM_128, KEYS, CSB_ID, TS, got) == KEY_DATA


def test_null_encryption_is_identity() -> None:
    assert encrypt_key_data(EncrAlg.NULL, KEYS, CSB_ID, TS, KEY_DATA) == KEY_DATA
    assert decrypt_key_data(EncrAlg.NULL, KEYS, CSB_ID, TS, KEY_DATA) == KEY_DATA


def test_key_wrap_rfc3394_4_1_vector() -> None:
    """RFC 3394 §4.1: wrap 128 bits of key data with a 128-bit KEK (default IV)."""
    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    key_data = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    wrapped = aes_key_wrap(kek, bytes.fromhex("A6A6A6A6A6A6A6A6"), key_data)
    assert wrapped.hex().upper() == "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
    assert aes_key_unwrap(kek, bytes.fromhex("A6A6A6A6A6A6A6A6"), wrapped) == key_data


def test_key_wrap_matches_cryptography_for_default_iv() -> None:
    kek = bytes(range(16))
    data = bytes(range(40))
    assert aes_key_wrap(kek, b"\xa6" * 8, data) == lib_key_wrap(kek, data)


def test_aes_kw_uses_salt_as_iv_and_pads_rfc3830_4_2_3() -> None:
    wrapped = encrypt_key_data(EncrAlg.AES_KW_128, KEYS, CSB_ID, TS, KEY_DATA)
    assert len(wrapped) == 24 + 8  # 20 bytes padded to 24, plus the integrity block
    plain = aes_key_unwrap(MSG_ENCR, MSG_SALT[:8], wrapped)
    assert plain == KEY_DATA + bytes(4)
    assert decrypt_key_data(EncrAlg.AES_KW_128, KEYS, CSB_ID, TS, wrapped) == plain


def test_aes_kw_tampered_is_auth_failure() -> None:
    wrapped = bytearray(encrypt_key_data(EncrAlg.AES_KW_128, KEYS, CSB_ID, TS, KEY_DATA))
    wrapped[10] ^= 1
    with pytest.raises(MikeyError) as info:
        decrypt_key_data(EncrAlg.AES_KW_128, KEYS, CSB_ID, TS, bytes(wrapped))
    assert info.value.error_type is ErrorType.AUTH_FAILURE


@pytest.mark.parametrize("length", [0, 8, 16, 17, 23])
def test_aes_kw_impossible_length_is_auth_failure(length: int) -> None:
    with pytest.raises(MikeyError) as info:
        decrypt_key_data(EncrAlg.AES_KW_128, KEYS, CSB_ID, TS, bytes(length))
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_unknown_encryption_algorithm_is_invalid_ea() -> None:
    with pytest.raises(MikeyError) as info:
        decrypt_key_data(7, KEYS, CSB_ID, TS, KEY_DATA)
    assert info.value.error_type is ErrorType.INVALID_EA


def test_bad_timestamp_length_is_invalid_ts() -> None:
    with pytest.raises(MikeyError) as info:
        decrypt_key_data(EncrAlg.AES_CM_128, KEYS, CSB_ID, b"\x01\x02", KEY_DATA)
    assert info.value.error_type is ErrorType.INVALID_TS


def test_hmac_sha1_mac_rfc3830_4_2_4() -> None:
    data = b"a MIKEY message without its MAC"
    mac = compute_mac(MacAlg.HMAC_SHA1_160, MSG_AUTH, data)
    assert mac == hmac.new(MSG_AUTH, data, hashlib.sha1).digest()
    assert mac_length(MacAlg.HMAC_SHA1_160) == 20
    verify_mac(MacAlg.HMAC_SHA1_160, MSG_AUTH, data, mac)


def test_mac_with_the_message_keys_reuses_their_keyed_hmac() -> None:
    """RFC 3830 §4.2.4 with a :class:`MessageKeys` instead of the key bytes: the HMAC
    keyed once at construction is copied per message -- the same MAC, every time
    (the keyed original is never fed data), and a mismatch still fails."""
    for data in (b"first message", b"", b"first message", bytes(range(256)) * 3):
        expected = hmac.new(MSG_AUTH, data, hashlib.sha1).digest()
        assert compute_mac(MacAlg.HMAC_SHA1_160, KEYS, data) == expected
        verify_mac(MacAlg.HMAC_SHA1_160, KEYS, data, expected)
        with pytest.raises(MikeyError) as info:
            verify_mac(MacAlg.HMAC_SHA1_160, KEYS, data + b"!", expected)
        assert info.value.error_type is ErrorType.AUTH_FAILURE
    assert compute_mac(MacAlg.NULL, KEYS, b"x") == b""
    # the keyed HMAC is not part of the keys' value nor of their repr
    assert MessageKeys(MSG_ENCR, MSG_AUTH, MSG_SALT) == KEYS
    assert hash(KEYS) == hash(MessageKeys(MSG_ENCR, MSG_AUTH, MSG_SALT))
    assert MSG_AUTH.hex() not in repr(KEYS) and "hmac" not in repr(KEYS).lower()


@pytest.mark.parametrize("bad", ["flip", "short", "empty"])
def test_mac_mismatch_is_auth_failure(bad: str) -> None:
    data = b"message"
    mac = compute_mac(MacAlg.HMAC_SHA1_160, MSG_AUTH, data)
    wrong = {"flip": bytes([mac[0] ^ 1]) + mac[1:], "short": mac[:19], "empty": b""}[bad]
    with pytest.raises(MikeyError) as info:
        verify_mac(MacAlg.HMAC_SHA1_160, MSG_AUTH, data, wrong)
    assert info.value.error_type is ErrorType.AUTH_FAILURE


def test_null_mac() -> None:
    assert compute_mac(MacAlg.NULL, MSG_AUTH, b"x") == b""
    verify_mac(MacAlg.NULL, MSG_AUTH, b"x", b"")
    with pytest.raises(MikeyError):
        verify_mac(MacAlg.NULL, MSG_AUTH, b"x", b"\x00")


def test_unknown_mac_algorithm_is_invalid_mac() -> None:
    with pytest.raises(MikeyError) as info:
        compute_mac(9, MSG_AUTH, b"x")
    assert info.value.error_type is ErrorType.INVALID_MAC
