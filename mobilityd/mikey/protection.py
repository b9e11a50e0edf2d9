"""Protection of MIKEY messages: KEMAC encryption and the MAC (RFC 3830 §4.2.3, §4.2.4).

* Key data transport encryption (§4.2.3): NULL, AES-CM-128 (the SRTP AES counter mode
  of RFC 3711 §4.1.1 with ``SRTP_PREFIX_LENGTH`` 0 and
  ``IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000``) and AES-KW-128 (RFC 3394 with the
  64-bit salt ``S`` as the key-wrap IV).
* MAC and verification message (§4.2.4): NULL and HMAC-SHA-1-160.

Choices where the RFC is silent (also in ``docs/mikey.md``):

* ``T`` in the AES-CM IV is the 64-bit T payload value; a 32-bit COUNTER timestamp is
  padded with leading zeros to 64 bits, as §6.6 prescribes for the PRF.
* RFC 3394 wraps whole 64-bit blocks (at least two) while a chain of Key data
  sub-payloads has any length. For AES-KW the plaintext is padded with zero bytes to a
  multiple of 8 bytes (minimum 16). The Key data chain is self-delimiting (its last
  sub-payload has Next payload = 0), so the receiver finds its end without a length;
  :func:`decrypt_key_data` returns the unwrapped bytes *including* the padding; the
  session parses the chain and accepts only zero bytes (fewer than 16) after its end.
* Any failure to decrypt or authenticate is :attr:`ErrorType.AUTH_FAILURE`; an
  algorithm we do not implement is ``INVALID_EA`` / ``INVALID_MAC`` (§6.12).
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mobilityd.mikey.constants import MAC_LENGTHS, EncrAlg, ErrorType, MacAlg
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import MessageKeys

__all__ = [
    "AES_CM_SALT_LEN",
    "AES_KEY_LEN",
    "AES_KW_SALT_LEN",
    "HMAC_SHA1_KEY_LEN",
    "aes_cm_iv",
    "aes_key_unwrap",
    "aes_key_wrap",
    "compute_mac",
    "decrypt_key_data",
    "encrypt_key_data",
    "mac_length",
    "verify_mac",
]

AES_KEY_LEN = 16  # AES-CM-128 / AES-KW-128 (§4.2.3)
AES_CM_SALT_LEN = 14  # 112-bit salt S (§4.2.3)
AES_KW_SALT_LEN = 8  # 64-bit salt S used as key-wrap IV (§4.2.3)
HMAC_SHA1_KEY_LEN = 20  # 160-bit auth key (§4.2.4)
_KW_BLOCK = 8
_MAX_KEY_DATA = 0xFFFF  # Encr data len is 16 bits (§6.2)


def mac_length(alg: MacAlg | int) -> int:
    """Length in bytes of the MAC of ``alg`` (RFC 3830 §6.2, Table 6.2.b)."""
    if type(alg) is MacAlg:
        return MAC_LENGTHS[alg]
    try:
        return MAC_LENGTHS[MacAlg(alg)]
    except (ValueError, KeyError):
        raise MikeyError(f"MAC algorithm {alg} not supported", ErrorType.INVALID_MAC) from None


def _timestamp64(timestamp: bytes) -> bytes:
    if len(timestamp) == 8:
        return timestamp
    if len(timestamp) == 4:  # COUNTER, padded with leading zeros (§6.6)
        return b"\x00\x00\x00\x00" + timestamp
    raise MikeyError(f"timestamp of {len(timestamp)} bytes", ErrorType.INVALID_TS)


def aes_cm_iv(salt: bytes, csb_id: int, timestamp: bytes) -> bytes:
    """``IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000`` (RFC 3830 §4.2.3)."""
    if len(salt) < AES_CM_SALT_LEN:
        raise ValueError(f"AES-CM needs a {AES_CM_SALT_LEN}-byte salt, got {len(salt)}")
    mix = b"\x00\x00" + csb_id.to_bytes(4, "big") + _timestamp64(timestamp)
    head = int.from_bytes(salt[:AES_CM_SALT_LEN], "big") ^ int.from_bytes(mix, "big")
    return head.to_bytes(AES_CM_SALT_LEN, "big") + b"\x00\x00"


def _aes_cm(keys: MessageKeys, csb_id: int, timestamp: bytes, data: bytes) -> bytes:
    if len(keys.encr_key) != AES_KEY_LEN:
        raise ValueError(f"AES-CM-128 needs a 16-byte key, got {len(keys.encr_key)}")
    iv = aes_cm_iv(keys.salt_key, csb_id, timestamp)
    encryptor = Cipher(algorithms.AES(keys.encr_key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_key_wrap(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """RFC 3394 §2.2.1 key wrap with an explicit 64-bit IV (RFC 3830 §4.2.3 uses ``S``).

    ``cryptography``'s ``aes_key_wrap`` only offers the default IV, so the index-based
    algorithm is written here over AES-ECB single-block encryption.
    """
    if len(iv) != _KW_BLOCK or len(plaintext) % _KW_BLOCK or len(plaintext) < 2 * _KW_BLOCK:
        raise ValueError("AES key wrap needs an 8-byte IV and n >= 2 64-bit blocks")
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    n = len(plaintext) // _KW_BLOCK
    a = iv
    r = [plaintext[i * _KW_BLOCK : (i + 1) * _KW_BLOCK] for i in range(n)]
    for j in range(6):
        for i in range(n):
            b = encryptor.update(a + r[i])
            t = n * j + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def aes_key_unwrap(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """RFC 3394 §2.2.2 key unwrap and §2.2.3 integrity check against ``iv``.

    Raises :class:`MikeyError` ``AUTH_FAILURE`` if the length is impossible or the
    integrity check fails (the comparison is constant time).
    """
    if len(ciphertext) % _KW_BLOCK or len(ciphertext) < 3 * _KW_BLOCK:
        raise MikeyError("AES-KW data has an impossible length", ErrorType.AUTH_FAILURE)
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    n = len(ciphertext) // _KW_BLOCK - 1
    a = ciphertext[:8]
    r = [ciphertext[(i + 1) * _KW_BLOCK : (i + 2) * _KW_BLOCK] for i in range(n)]
    for j in range(5, -1, -1):
        for i in range(n - 1, -1, -1):
            t = n * j + i + 1
            a_xor = (int.from_bytes(a, "big") ^ t).to_bytes(8, "big")
            b = decryptor.update(a_xor + r[i])
            a = b[:8]
            r[i] = b[8:]
    if not hmac.compare_digest(a, iv):
        raise MikeyError("AES-KW integrity check failed", ErrorType.AUTH_FAILURE)
    return b"".join(r)


def _kw_pad(plaintext: bytes) -> bytes:
    padded_len = max(2 * _KW_BLOCK, -(-len(plaintext) // _KW_BLOCK) * _KW_BLOCK)
    return plaintext + bytes(padded_len - len(plaintext))


def encrypt_key_data(
    alg: EncrAlg | int, keys: MessageKeys, csb_id: int, timestamp: bytes, plaintext: bytes
) -> bytes:
    """Encrypt the KEMAC Key data (RFC 3830 §4.2.3) with ``keys`` from §4.1.4.

    ``timestamp`` is the T payload value of the Initiator's message (8 bytes, or 4 for
    COUNTER). AES-KW output is zero-padded plaintext wrapped (see the module docstring).
    """
    alg = _encr_alg(alg)
    if alg is EncrAlg.NULL:
        return plaintext
    if alg is EncrAlg.AES_CM_128:
        return _aes_cm(keys, csb_id, timestamp, plaintext)
    if len(keys.salt_key) < AES_KW_SALT_LEN:
        raise ValueError("AES-KW needs at least an 8-byte salt")
    return aes_key_wrap(keys.encr_key, keys.salt_key[:AES_KW_SALT_LEN], _kw_pad(plaintext))


def decrypt_key_data(
    alg: EncrAlg | int, keys: MessageKeys, csb_id: int, timestamp: bytes, ciphertext: bytes
) -> bytes:
    """Inverse of :func:`encrypt_key_data`; AES-KW returns the plaintext with its padding.

    Errors: unknown algorithm ``INVALID_EA``, AES-KW integrity failure ``AUTH_FAILURE``,
    a timestamp of impossible length ``INVALID_TS``.
    """
    alg = _encr_alg(alg)
    if len(ciphertext) > _MAX_KEY_DATA:
        raise MikeyError("encrypted key data exceeds 64 KiB", ErrorType.UNSPECIFIED)
    if alg is EncrAlg.NULL:
        return ciphertext
    if alg is EncrAlg.AES_CM_128:
        return _aes_cm(keys, csb_id, timestamp, ciphertext)
    return aes_key_unwrap(keys.encr_key, keys.salt_key[:AES_KW_SALT_LEN], ciphertext)


def _encr_alg(alg: EncrAlg | int) -> EncrAlg:
    if type(alg) is EncrAlg:
        return alg
    try:
        return EncrAlg(alg)
    except ValueError:
        message = f"encryption algorithm {alg} not supported"
        raise MikeyError(message, ErrorType.INVALID_EA) from None


def compute_mac(alg: MacAlg | int, auth_key: bytes | MessageKeys, data: bytes) -> bytes:
    """MAC of ``data`` (RFC 3830 §4.2.4): NULL gives ``b""``, HMAC-SHA-1-160 20 bytes.

    ``auth_key`` is the key, or the :class:`MessageKeys` holding it (then its HMAC
    keyed once is reused: :meth:`MessageKeys.auth_hmac`; the same MAC)."""
    if mac_length(alg) == 0:
        return b""
    if isinstance(auth_key, MessageKeys):
        keyed = auth_key.auth_hmac()
        keyed.update(data)
        return keyed.digest()
    return hmac.digest(auth_key, data, "sha1")


def verify_mac(alg: MacAlg | int, auth_key: bytes | MessageKeys, data: bytes,
               mac: bytes) -> None:
    """Check ``mac`` over ``data`` in constant time (RFC 3830 §4.2.4, §5.3).

    Raises :class:`MikeyError` with ``AUTH_FAILURE`` when it does not match.
    """
    expected = compute_mac(alg, auth_key, data)
    if not hmac.compare_digest(expected, mac):
        raise MikeyError("MAC verification failed", ErrorType.AUTH_FAILURE)
