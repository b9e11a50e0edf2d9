"""Device hand-off tokens: how the user's own devices agree on a transfer (issue 6, step 2).

A token is a short HMAC-SHA256-protected message between two devices of the same user
that share the user's *device key* (``service.config`` device key file). Wire format
(all integers big-endian, strings UTF-8 with a 16-bit length; see docs/transfer.md)::

    version(1)=1 kind(1) issued_ms(8) expires_ms(8) nonce(16) csb_id(4)
    call_id(str) correspondent(str) sender(str) receiver(str)
    n(1) correspondent_ssrcs(4*n)  m(1) released_ssrcs(4*m)
    mac(32) = HMAC-SHA256(K, all of the above),
    K = HMAC-SHA256(device_key, "mobilityd transfer token v1")   (RFC 2104)

* ``EXPECT`` (old device -> new device): "call ``call_id`` with ``correspondent``, MIKEY
  CSB ``csb_id`` (RFC 3830 §6.1), will be offered to you; the user-side streams used the
  ``released_ssrcs`` and must never be sent again under this key (RFC 3711 §9.1)".
* ``ACCEPT`` (new -> old): the same fields and nonce, proving the new device holds the
  device key, is online and consents; only then is the REFER sent (RFC 3515 §2.4.1).
* ``PULL`` (new -> old): "move call ``call_id`` to me" (the reverse direction).

Times are wall-clock seconds (the devices are different machines): a token is valid
between ``issued - skew`` and ``expires``; its lifetime is capped; nonces are
remembered until expiry so a captured token cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Self

from mobilityd.mobility.transfer.errors import TokenError

__all__ = ["MAC_LEN", "NONCE_LEN", "HandOffToken", "TokenKind", "token_key"]

VERSION = 1
NONCE_LEN = 16
MAC_LEN = 32
_KEY_LABEL = b"mobilityd transfer token v1"
_MAX_STR = 1024
_MAX_SSRCS = 16
_FIXED = 1 + 1 + 8 + 8 + NONCE_LEN + 4


class TokenKind(IntEnum):
    """What a hand-off token asks (docs/transfer.md)."""

    EXPECT = 1
    ACCEPT = 2
    PULL = 3


def token_key(device_key: bytes) -> bytes:
    """The MAC key of hand-off tokens: HMAC-SHA256(device key, label) (RFC 2104)."""
    if len(device_key) < 16:
        raise ValueError("a device key needs at least 128 bits")
    return hmac.new(device_key, _KEY_LABEL, hashlib.sha256).digest()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise TokenError(f"hand-off token truncated in {what}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def text(self, what: str) -> str:
        length = int.from_bytes(self.take(2, what), "big")
        if length > _MAX_STR:
            raise TokenError(f"hand-off token {what} too long ({length})")
        try:
            return self.take(length, what).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenError(f"hand-off token {what} is not UTF-8") from exc

    def ssrcs(self, what: str) -> tuple[int, ...]:
        count = self.take(1, what)[0]
        if count > _MAX_SSRCS:
            raise TokenError(f"hand-off token has {count} {what}")
        return tuple(int.from_bytes(self.take(4, what), "big") for _ in range(count))


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > _MAX_STR:
        raise ValueError(f"{value[:40]!r}... longer than {_MAX_STR} octets")
    return len(raw).to_bytes(2, "big") + raw


def _ssrcs(values: tuple[int, ...]) -> bytes:
    if len(values) > _MAX_SSRCS:
        raise ValueError(f"at most {_MAX_SSRCS} SSRCs")
    return bytes((len(values),)) + b"".join(v.to_bytes(4, "big") for v in values)


@dataclass(frozen=True, slots=True)
class HandOffToken:
    """One hand-off token (see the module docstring); ``mac`` is empty until sealed."""

    kind: TokenKind
    issued: float
    expires: float
    nonce: bytes
    csb_id: int
    call_id: str
    correspondent: str
    sender: str
    receiver: str
    correspondent_ssrcs: tuple[int, ...] = ()
    released_ssrcs: tuple[int, ...] = ()
    mac: bytes = field(default=b"", repr=False)

    def body(self) -> bytes:
        """Everything the MAC covers."""
        if len(self.nonce) != NONCE_LEN:
            raise ValueError(f"nonce must be {NONCE_LEN} octets")
        return b"".join((
            bytes((VERSION, self.kind)),
            round(self.issued * 1000).to_bytes(8, "big"),
            round(self.expires * 1000).to_bytes(8, "big"),
            self.nonce,
            self.csb_id.to_bytes(4, "big"),
            _text(self.call_id), _text(self.correspondent), _text(self.sender),
            _text(self.receiver),
            _ssrcs(self.correspondent_ssrcs), _ssrcs(self.released_ssrcs),
        ))

    def __bytes__(self) -> bytes:
        if len(self.mac) != MAC_LEN:
            raise ValueError("an unsealed hand-off token has no wire form")
        return self.body() + self.mac

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Decode (not verify) a token; anything malformed is a :class:`TokenError`."""
        if len(data) < _FIXED + MAC_LEN:
            raise TokenError(f"hand-off token of {len(data)} octets is too short")
        reader = _Reader(data[:-MAC_LEN])
        version, kind = reader.take(2, "header")
        if version != VERSION:
            raise TokenError(f"hand-off token version {version} unsupported")
        try:
            token_kind = TokenKind(kind)
        except ValueError:
            raise TokenError(f"unknown hand-off token kind {kind}") from None
        issued = int.from_bytes(reader.take(8, "issued"), "big") / 1000
        expires = int.from_bytes(reader.take(8, "expires"), "big") / 1000
        nonce = reader.take(NONCE_LEN, "nonce")
        csb_id = int.from_bytes(reader.take(4, "CSB ID"), "big")
        call_id = reader.text("call id")
        correspondent = reader.text("correspondent")
        sender = reader.text("sender")
        receiver = reader.text("receiver")
        correspondent_ssrcs = reader.ssrcs("correspondent SSRCs")
        released = reader.ssrcs("released SSRCs")
        if reader.pos != len(reader.data):
            raise TokenError("trailing octets in hand-off token")
        return cls(token_kind, issued, expires, nonce, csb_id, call_id, correspondent, sender,
                   receiver,
                   correspondent_ssrcs=correspondent_ssrcs, released_ssrcs=released,
                   mac=data[-MAC_LEN:])

    def sealed(self, key: bytes) -> HandOffToken:
        """This token with its MAC computed under ``key`` (from :func:`token_key`)."""
        return replace(self, mac=hmac.new(key, self.body(), hashlib.sha256).digest())

    def answer(self, kind: TokenKind) -> HandOffToken:
        """The reply token: same call, CSB, nonce and expiry, sender and receiver swapped."""
        return replace(self, kind=kind, sender=self.receiver, receiver=self.sender, mac=b"")

    @classmethod
    def open(cls, data: bytes, key: bytes, *, receiver: str, now: float,
             skew: float = 30.0, max_lifetime: float = 300.0) -> HandOffToken:
        """Parse and verify a token addressed to ``receiver`` at wall-clock ``now``.

        Checks, in order: format, MAC (constant time), addressee, validity window
        (``issued - skew <= now < expires``, lifetime at most ``max_lifetime``).
        Replay protection is the caller's (:class:`ExpectationBook` keeps nonces).
        """
        token = cls.parse(data)
        expected = hmac.new(key, data[:-MAC_LEN], hashlib.sha256).digest()
        if not hmac.compare_digest(expected, token.mac):
            raise TokenError("hand-off token MAC does not verify")
        if token.receiver != receiver:
            raise TokenError(f"hand-off token is for {token.receiver!r}, not {receiver!r}")
        if token.expires - token.issued > max_lifetime or token.expires <= token.issued:
            raise TokenError("hand-off token lifetime out of bounds")
        if now < token.issued - skew:
            raise TokenError("hand-off token issued in the future")
        if now >= token.expires:
            raise TokenError("hand-off token expired")
        return token
