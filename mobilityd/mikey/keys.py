"""MIKEY key derivation: the default PRF and the keys derived with it.

* :func:`prf` is the default PRF of RFC 3830 §4.1.2 (the TLS-like P-function over
  HMAC-SHA-1, with the input key split into 256-bit blocks whose outputs are XORed).
* :func:`derive_tek`, :func:`derive_srtp_salt` (and the auth/encr variants) derive
  crypto-session keys from a TGK with the constants of RFC 3830 §4.1.3 (Table 4.1.3).
* :func:`derive_message_keys` derives the keys that protect a MIKEY message from a
  pre-shared or envelope key with the constants of RFC 3830 §4.1.4 (Table 4.1.4).

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "MessageKeyConstant",
    "MessageKeys",
    "TgkKeyConstant",
    "derive_auth_key",
    "derive_encr_key",
    "derive_message_keys",
    "derive_salt",
    "derive_salt_key",
    "derive_srtp_salt",
    "derive_tek",
    "derive_tgk_auth_key",
    "derive_tgk_encr_key",
    "prf",
]

_SHA1_LEN = 20
_INKEY_BLOCK = 32  # 256 bits, RFC 3830 §4.1.2
_MAX_OUT_LEN = 8 * 1024  # far above any key MIKEY defines


class TgkKeyConstant(IntEnum):
    """Label constants for keys derived from a TGK (RFC 3830 §4.1.3, Table 4.1.3)."""

    TEK = 0x2AD01C64
    AUTH_KEY = 0x1B5C7973
    ENCR_KEY = 0x15798CEF
    SALT_KEY = 0x39A2C14B


class MessageKeyConstant(IntEnum):
    """Label constants for keys derived from a PSK/envelope key (RFC 3830 §4.1.4)."""

    ENCR_KEY = 0x150533E1
    AUTH_KEY = 0x2D22AC75
    SALT_KEY = 0x29B88916


def _p_function(secret: bytes, label: bytes, blocks: int) -> bytes:
    """``P(s, label, m)`` of RFC 3830 §4.1.2: ``A_0 = label``, ``A_i = HMAC(s, A_(i-1))``."""
    digest = hmac.digest
    a_i = digest(secret, label, "sha1")
    if blocks == 1:
        return digest(secret, a_i + label, "sha1")
    out = bytearray(digest(secret, a_i + label, "sha1"))
    for _ in range(blocks - 1):
        a_i = digest(secret, a_i, "sha1")
        out += digest(secret, a_i + label, "sha1")
    return bytes(out)


def prf(inkey: bytes, label: bytes, out_len: int) -> bytes:
    """The default MIKEY PRF, RFC 3830 §4.1.2.

    ``inkey`` is split into ``n = ceil(len/256 bits)`` blocks ``s_1 .. s_n`` (all 256 bits
    except possibly the last), ``m = ceil(outkey_len / 160 bits)``, and the result is the
    ``out_len`` most significant bytes of ``P(s_1, label, m) XOR ... XOR P(s_n, label, m)``.

    Lengths are whole bytes (MIKEY only derives byte-aligned keys). An empty ``inkey``
    gives ``n = 0`` in the RFC, which defines nothing: it is refused with ``ValueError``
    (a local misuse, never a peer's input), as is a negative or absurd ``out_len``.
    """
    if not inkey:
        raise ValueError("MIKEY PRF: the input key must not be empty (RFC 3830 §4.1.2)")
    if out_len < 0 or out_len > _MAX_OUT_LEN:
        raise ValueError(f"MIKEY PRF: output length {out_len} out of range")
    if out_len == 0:
        return b""
    blocks = -(-out_len // _SHA1_LEN)
    if len(inkey) <= _INKEY_BLOCK:  # n = 1: nothing to XOR (the common case)
        return _p_function(inkey, label, blocks)[:out_len]
    result = 0
    for start in range(0, len(inkey), _INKEY_BLOCK):
        chunk = _p_function(inkey[start : start + _INKEY_BLOCK], label, blocks)
        result ^= int.from_bytes(chunk, "big")
    return result.to_bytes(blocks * _SHA1_LEN, "big")[:out_len]


def _tgk_label(constant: int, cs_id: int, csb_id: int, rand: bytes) -> bytes:
    """``constant || cs_id || csb_id || RAND`` (RFC 3830 §4.1.3; 32, 8, 32 bits)."""
    return struct.pack("!IBI", constant, cs_id, csb_id) + rand


def _message_label(constant: int, csb_id: int, rand: bytes) -> bytes:
    """``constant || 0xFF || csb_id || RAND`` (RFC 3830 §4.1.4)."""
    return struct.pack("!IBI", constant, 0xFF, csb_id) + rand


def _check_ids(cs_id: int, csb_id: int) -> None:
    if not 0 <= cs_id <= 0xFF:
        raise ValueError(f"cs_id {cs_id} is not an 8-bit value (RFC 3830 §4.1.1)")
    if not 0 <= csb_id <= 0xFFFFFFFF:
        raise ValueError(f"csb_id {csb_id} is not a 32-bit value (RFC 3830 §4.1.1)")


def derive_tek(tgk: bytes, cs_id: int, csb_id: int, rand: bytes, out_len: int = 16) -> bytes:
    """TEK (for SRTP: the master key) of crypto session ``cs_id``, RFC 3830 §4.1.3."""
    _check_ids(cs_id, csb_id)
    return prf(tgk, _tgk_label(TgkKeyConstant.TEK, cs_id, csb_id, rand), out_len)


def derive_srtp_salt(
    tgk: bytes, cs_id: int, csb_id: int, rand: bytes, out_len: int = 14
) -> bytes:
    """Salting key (for SRTP: the master salt) of ``cs_id``, RFC 3830 §4.1.3 (0x39A2C14B).

    §4.1.3 says a salt carried in the Key data sub-payload takes precedence; that choice
    is made by :meth:`mobilityd.mikey.context.CryptoContext.srtp_master`.
    """
    _check_ids(cs_id, csb_id)
    return prf(tgk, _tgk_label(TgkKeyConstant.SALT_KEY, cs_id, csb_id, rand), out_len)


derive_salt = derive_srtp_salt
"""Alias named in ``docs/design/contracts.md``."""


def derive_tgk_auth_key(
    tgk: bytes, cs_id: int, csb_id: int, rand: bytes, out_len: int
) -> bytes:
    """Separate authentication key for a security protocol, RFC 3830 §4.1.3 (0x1B5C7973)."""
    _check_ids(cs_id, csb_id)
    return prf(tgk, _tgk_label(TgkKeyConstant.AUTH_KEY, cs_id, csb_id, rand), out_len)


def derive_tgk_encr_key(
    tgk: bytes, cs_id: int, csb_id: int, rand: bytes, out_len: int
) -> bytes:
    """Separate encryption key for a security protocol, RFC 3830 §4.1.3 (0x15798CEF)."""
    _check_ids(cs_id, csb_id)
    return prf(tgk, _tgk_label(TgkKeyConstant.ENCR_KEY, cs_id, csb_id, rand), out_len)


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """Keys protecting one MIKEY exchange's KEMAC and MAC/V (RFC 3830 §4.1.4)."""

    encr_key: bytes
    auth_key: bytes
    salt_key: bytes
    #: HMAC-SHA-1 keyed with ``auth_key`` on first use (:meth:`auth_hmac` hands out
    #: copies); as secret as the key and gone with it
    _auth_hmac: hmac.HMAC | None = field(default=None, init=False, repr=False,
                                         compare=False)

    def auth_hmac(self) -> hmac.HMAC:
        """A fresh HMAC-SHA-1 (RFC 3830 §4.2.4) keyed with ``auth_key``: a copy of the
        one keyed at the first call, so later messages' MACs skip the key schedule and
        the algorithm look-up (~40 us each with the cold caches of a move, issue 5
        media gap). Same MAC as ``hmac.digest(auth_key, data, "sha1")``. Keyed lazily:
        keys that never MAC through this (e.g. the CLI's) cost nothing extra."""
        keyed = self._auth_hmac
        if keyed is None:
            keyed = hmac.new(self.auth_key, digestmod="sha1")
            object.__setattr__(self, "_auth_hmac", keyed)
        return keyed.copy()

    def __repr__(self) -> str:  # never leak key material into logs
        return (
            f"MessageKeys(encr_key=<{len(self.encr_key)} bytes>, "
            f"auth_key=<{len(self.auth_key)} bytes>, salt_key=<{len(self.salt_key)} bytes>)"
        )


def derive_encr_key(env_key: bytes, csb_id: int, rand: bytes, out_len: int = 16) -> bytes:
    """KEMAC encryption key from a PSK/envelope key, RFC 3830 §4.1.4 (0x150533E1)."""
    _check_ids(0, csb_id)
    return prf(env_key, _message_label(MessageKeyConstant.ENCR_KEY, csb_id, rand), out_len)


def derive_auth_key(env_key: bytes, csb_id: int, rand: bytes, out_len: int = 20) -> bytes:
    """MAC/V authentication key from a PSK/envelope key, RFC 3830 §4.1.4 (0x2D22AC75)."""
    _check_ids(0, csb_id)
    return prf(env_key, _message_label(MessageKeyConstant.AUTH_KEY, csb_id, rand), out_len)


def derive_salt_key(env_key: bytes, csb_id: int, rand: bytes, out_len: int = 14) -> bytes:
    """KEMAC salting key from a PSK/envelope key, RFC 3830 §4.1.4 (0x29B88916)."""
    _check_ids(0, csb_id)
    return prf(env_key, _message_label(MessageKeyConstant.SALT_KEY, csb_id, rand), out_len)


def derive_message_keys(  # noqa: PLR0917 - positional API fixed by the CLI contract
    env_key: bytes,
    csb_id: int,
    rand: bytes,
    encr_len: int = 16,
    auth_len: int = 20,
    salt_len: int = 14,
) -> MessageKeys:
    """All three message-protection keys of RFC 3830 §4.1.4 at once.

    Defaults: a 128-bit AES key, a 160-bit HMAC-SHA-1 key (§4.2.4) and a 112-bit salt
    for AES-CM (§4.2.3). AES-KW uses an 8-byte salt (its IV, §4.2.3): pass ``salt_len=8``
    or use the first 8 bytes (the PRF output is a prefix-stable stream, so both agree).
    """
    return MessageKeys(
        encr_key=derive_encr_key(env_key, csb_id, rand, encr_len),
        auth_key=derive_auth_key(env_key, csb_id, rand, auth_len),
        salt_key=derive_salt_key(env_key, csb_id, rand, salt_len),
    )
