"""Key derivation (RFC 3830 §4.1.2-§4.1.4) against independently computed vectors.

The literals below were produced by ``tests/mikey/vectors/gen_kdf_vectors.py``, a
from-scratch implementation of the RFC text using only hashlib/hmac; rerun it to
reproduce them.
"""

from __future__ import annotations

import pytest

from mobilityd.mikey import keys

TGK = bytes(range(0x10, 0x20))
RAND = bytes(range(0xA0, 0xB0))
CSB_ID = 0x12345678
PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
RAND2 = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
CSB_ID2 = 0xCAFEBABE


def test_tek_from_tgk_rfc3830_4_1_3() -> None:
    assert keys.derive_tek(TGK, 1, CSB_ID, RAND).hex() == "392c8ba7d2732d4b838935ca7a943353"
    assert keys.derive_tek(TGK, 2, CSB_ID, RAND, 16).hex() == ("9e62ee4f8b5a1f87a1e54ee7a825a050")


def test_salt_from_tgk_rfc3830_4_1_3() -> None:
    assert keys.derive_srtp_salt(TGK, 1, CSB_ID, RAND).hex() == "a947ce162d2c231991bf30c4b423"
    assert keys.derive_salt is keys.derive_srtp_salt


def test_separate_auth_and_encr_keys_from_tgk_rfc3830_4_1_3() -> None:
    assert keys.derive_tgk_auth_key(TGK, 1, CSB_ID, RAND, 20).hex() == (
        "b3c981e4ef70d37baeefd7b585a8579822c919bb"
    )
    assert keys.derive_tgk_encr_key(TGK, 1, CSB_ID, RAND, 16).hex() == (
        "de6f3e7613d89667b3b66ffb5c2aff8d"
    )


def test_prf_multi_block_inkey_and_output_rfc3830_4_1_2() -> None:
    """600-bit inkey: n = 3 blocks (last partial) XORed; 400-bit output: m = 3."""
    long_key = bytes((7 * i + 3) % 256 for i in range(75))
    assert keys.prf(long_key, b"MIKEY test label", 50).hex() == (
        "ffdeadbf049612363aba53740b6011e325e7083d9fc8463a99401bc3f177a7b897cd"
        "051249ddb7cc88f10e3a728cf382a4d4"
    )


def test_message_keys_from_psk_rfc3830_4_1_4() -> None:
    mk = keys.derive_message_keys(PSK, CSB_ID2, RAND2, 16, 20, 14)
    assert mk.encr_key.hex() == "efc39853f12ab3b3586e0b7c3f694d4a"
    assert mk.auth_key.hex() == "ce6577affc779300c0d567fba733cd65a6d7d8b7"
    assert mk.salt_key.hex() == "2080c46dcf73af9f761dbe02e31f"
    assert keys.derive_auth_key(PSK, CSB_ID2, RAND2) == mk.auth_key
    assert keys.derive_encr_key(PSK, CSB_ID2, RAND2) == mk.encr_key
    assert keys.derive_salt_key(PSK, CSB_ID2, RAND2) == mk.salt_key


def test_prf_output_is_prefix_stable() -> None:
    """P blocks do not depend on m, so a shorter key is a prefix of a longer one."""
    assert keys.prf(TGK, b"x", 8) == keys.prf(TGK, b"x", 45)[:8]
    assert keys.prf(TGK, b"x", 0) == b""


def test_message_keys_repr_hides_key_material() -> None:
    mk = keys.derive_message_keys(PSK, CSB_ID2, RAND2)
    assert mk.auth_key.hex() not in repr(mk)
    assert "20 bytes" in repr(mk)


@pytest.mark.parametrize(("inkey", "out_len"), [(b"", 16), (b"k", -1), (b"k", 1 << 20)])
def test_prf_rejects_misuse(inkey: bytes, out_len: int) -> None:
    with pytest.raises(ValueError):
        keys.prf(inkey, b"label", out_len)


@pytest.mark.parametrize(("cs_id", "csb_id"), [(256, 1), (-1, 1), (1, 1 << 32), (1, -1)])
def test_derive_rejects_out_of_range_ids(cs_id: int, csb_id: int) -> None:
    with pytest.raises(ValueError):
        keys.derive_tek(TGK, cs_id, csb_id, RAND)
