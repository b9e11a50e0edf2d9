"""Independent key-derivation vectors for MIKEY (RFC 3830 §4.1.2-§4.1.4, §4.2.3).

Written from the RFC text alone with hashlib/hmac, deliberately without importing
anything from ``mobilityd``: its output is pasted as literals into
``tests/mikey/test_keys.py`` (and ``test_protection.py``) so that our implementation is
checked against numbers it did not produce. Run: ``python tests/mikey/vectors/gen_kdf_vectors.py``.
"""

import hashlib
import hmac
import json


def hmac_sha1(key, msg):
    return hmac.new(key, msg, hashlib.sha1).digest()


def p_fn(s, label, m):
    # RFC 3830 §4.1.2: P(s,label,m) = HMAC(s, A_1||label) || ... || HMAC(s, A_m||label)
    # with A_0 = label and A_i = HMAC(s, A_(i-1)).
    a = [label]
    for i in range(1, m + 1):
        a.append(hmac_sha1(s, a[i - 1]))
    return b"".join(hmac_sha1(s, a[i] + label) for i in range(1, m + 1))


def mikey_prf(inkey, label, outkey_len_bits):
    inkey_len_bits = len(inkey) * 8
    n = (inkey_len_bits + 255) // 256
    m = (outkey_len_bits + 159) // 160
    blocks = [inkey[32 * i : 32 * (i + 1)] for i in range(n)]
    acc = bytearray(20 * m)
    for s in blocks:
        p = p_fn(s, label, m)
        for j in range(len(acc)):
            acc[j] ^= p[j]
    # "the outkey_len most significant bits"
    return bytes(acc[: outkey_len_bits // 8])


def be(value, nbytes):
    return value.to_bytes(nbytes, "big")


def tgk_label(constant, cs_id, csb_id, rand):
    # RFC 3830 §4.1.3: label = constant || cs_id || csb_id || RAND
    return be(constant, 4) + be(cs_id, 1) + be(csb_id, 4) + rand


def msg_label(constant, csb_id, rand):
    # RFC 3830 §4.1.4: label = constant || 0xFF || csb_id || RAND
    return be(constant, 4) + b"\xff" + be(csb_id, 4) + rand


def main():
    out = {}
    # Vector set 1: 128-bit TGK (one inkey block).
    tgk = bytes(range(0x10, 0x20))
    rand = bytes(range(0xA0, 0xB0))
    csb_id = 0x12345678
    out["tek_cs1_16"] = mikey_prf(tgk, tgk_label(0x2AD01C64, 1, csb_id, rand), 128).hex()
    out["salt_cs1_14"] = mikey_prf(tgk, tgk_label(0x39A2C14B, 1, csb_id, rand), 112).hex()
    out["tek_cs2_16"] = mikey_prf(tgk, tgk_label(0x2AD01C64, 2, csb_id, rand), 128).hex()
    out["auth_cs1_20"] = mikey_prf(tgk, tgk_label(0x1B5C7973, 1, csb_id, rand), 160).hex()
    out["encr_cs1_16"] = mikey_prf(tgk, tgk_label(0x15798CEF, 1, csb_id, rand), 128).hex()
    # Vector set 2: 600-bit inkey (three blocks, last one partial), 400-bit output (m=3).
    long_key = bytes((7 * i + 3) % 256 for i in range(75))
    label = b"MIKEY test label"
    out["prf_long_50"] = mikey_prf(long_key, label, 400).hex()
    # Vector set 3: message keys from a PSK (RFC 3830 §4.1.4).
    psk = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    rand2 = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
    csb2 = 0xCAFEBABE
    out["msg_encr_16"] = mikey_prf(psk, msg_label(0x150533E1, csb2, rand2), 128).hex()
    out["msg_auth_20"] = mikey_prf(psk, msg_label(0x2D22AC75, csb2, rand2), 160).hex()
    out["msg_salt_14"] = mikey_prf(psk, msg_label(0x29B88916, csb2, rand2), 112).hex()
    # Vector set 4: AES-CM IV of RFC 3830 §4.2.3: (S XOR (0x0000 || CSB ID || T)) || 0x0000
    salt = bytes.fromhex(out["msg_salt_14"])
    ts = bytes.fromhex("e8f0a1b2c3d4e5f6")
    mix = b"\x00\x00" + be(csb2, 4) + ts
    out["aes_cm_iv"] = (bytes(x ^ y for x, y in zip(salt, mix, strict=True)) + b"\x00\x00").hex()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
