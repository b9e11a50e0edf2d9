"""Independent generator of the numbers in tests/mikey/test_cli.py.

Written from the RFC text only (it imports nothing from mobilityd):
RFC 3830 §4.1.2 (PRF), §4.1.3 (TEK/salt from TGK), §4.1.4 (message keys), §4.2.3
(AES-CM IV, AES key wrap with the 64-bit salt as IV, RFC 3394 §2.2.1), §4.2.4
(HMAC-SHA-1), §6.1, §6.6, §6.10.1, §6.11, §6.2 and §6.13 (layouts, assembled by hand).
AES-KW pads the Key data plaintext with zero bytes to a multiple of 8 (minimum 16),
the convention documented in mobilityd/mikey/protection.py.

Run: .venv/bin/python tests/mikey/data/gen_cli_vectors.py
"""

import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def hmac_sha1(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha1).digest()


def p_func(s: bytes, label: bytes, m: int) -> bytes:
    out, a = b"", label
    for _ in range(m):
        a = hmac_sha1(s, a)
        out += hmac_sha1(s, a + label)
    return out


def prf(inkey: bytes, label: bytes, outlen: int) -> bytes:
    m = -(-outlen * 8 // 160)
    blocks = [inkey[i : i + 32] for i in range(0, len(inkey), 32)]
    acc = bytes(m * 20)
    for s in blocks:
        acc = bytes(x ^ y for x, y in zip(acc, p_func(s, label, m), strict=True))
    return acc[:outlen]


def tgk_key(const: int, tgk: bytes, cs_id: int, csb_id: int, rand: bytes, n: int) -> bytes:  # noqa: PLR0917
    return prf(tgk, struct.pack(">IBI", const, cs_id, csb_id) + rand, n)


def msg_key(const: int, psk: bytes, csb_id: int, rand: bytes, n: int) -> bytes:
    return prf(psk, struct.pack(">IBI", const, 0xFF, csb_id) + rand, n)


def aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def aes_kw(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    n = len(plaintext) // 8
    a, r = iv, [plaintext[i * 8 : i * 8 + 8] for i in range(n)]
    for j in range(6):
        for i in range(n):
            b = aes_ecb(key, a + r[i])
            t = n * j + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def build(psk, csb_id, tgk, rand, ssrcs, rocs, ts, encr):  # noqa: PLR0917
    hdr = bytes([1, 0, 5, 0]) + csb_id.to_bytes(4, "big") + bytes([len(ssrcs), 0])
    for ssrc, roc in zip(ssrcs, rocs, strict=True):
        hdr += bytes([0]) + ssrc.to_bytes(4, "big") + roc.to_bytes(4, "big")
    t = bytes([11, 0]) + ts
    rnd = bytes([10, len(rand)]) + rand
    params = [(0, 1), (1, 16), (2, 1), (3, 20), (4, 14), (5, 0), (6, 0), (7, 1), (8, 1),
              (9, 0), (10, 1), (11, 10), (12, 0)]
    body = b"".join(bytes([p, 1, v]) for p, v in params)
    sp = bytes([1, 0, 0]) + len(body).to_bytes(2, "big") + body
    keydata = bytes([0, 0x00]) + len(tgk).to_bytes(2, "big") + tgk  # TGK, KV NULL, last
    ekey = msg_key(0x150533E1, psk, csb_id, rand, 16)
    akey = msg_key(0x2D22AC75, psk, csb_id, rand, 20)
    salt = msg_key(0x29B88916, psk, csb_id, rand, 14)
    if encr == 0:
        enc = keydata
    elif encr == 1:
        iv_in = bytes(2) + csb_id.to_bytes(4, "big") + ts
        iv = bytes(a ^ b for a, b in zip(salt, iv_in, strict=True)) + bytes(2)
        c = Cipher(algorithms.AES(ekey), modes.CTR(iv)).encryptor()
        enc = c.update(keydata) + c.finalize()
    else:
        padded = keydata + bytes(-len(keydata) % 8)
        padded += bytes(max(0, 16 - len(padded)))
        enc = aes_kw(ekey, salt[:8], padded)
    kemac_head = bytes([0, encr]) + len(enc).to_bytes(2, "big") + enc + bytes([1])
    unsigned = hdr + t + rnd + sp + kemac_head
    return unsigned + hmac_sha1(akey, unsigned)


if __name__ == "__main__":
    tgk = bytes(range(16))
    rand = bytes(range(0xF0, 0x100))
    for cs_id in (1, 2):
        print("derive cs", cs_id,
              tgk_key(0x2AD01C64, tgk, cs_id, 0x12345678, rand, 16).hex(),
              tgk_key(0x39A2C14B, tgk, cs_id, 0x12345678, rand, 14).hex())
    long_tgk = bytes(range(40))  # two PRF input blocks (256 + 64 bits)
    print("derive long", tgk_key(0x2AD01C64, long_tgk, 3, 0xFFFFFFFF, rand, 32).hex(),
          tgk_key(0x39A2C14B, long_tgk, 3, 0xFFFFFFFF, rand, 14).hex())
    psk = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    ts = bytes.fromhex("e7c3a1b2a1a2a3a4")
    for encr in (0, 1, 2):
        msg = build(psk, 0x1234, bytes([0x11]) * 16, bytes([0x22]) * 16,
                    [0xDEADBEEF, 0xCAFEBABE], [0, 5], ts, encr)
        print("build", encr, base64.b64encode(msg).decode())
