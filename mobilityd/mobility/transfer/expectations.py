"""The new device's book of transfers it was told to expect (issue 6, step 2), sans-I/O.

:meth:`ExpectationBook.admit` verifies an ``EXPECT`` hand-off token from another device
of the user (:mod:`.token`), refuses a replayed nonce, files the expectation and returns
the sealed ``ACCEPT`` token to send back. A transfer INVITE is taken only if
:meth:`find` has an expectation for its correspondent and MIKEY CSB ID (the CSB ID of
the running call, RFC 3830 §6.1, which the correspondent keeps for the transfer);
:meth:`consume` removes it once the MIKEY exchange succeeded, so each expectation
admits one transfer. Nonces are remembered until their token expires.

Retransmissions (:mod:`.retransmit`): a copy *identical to the octet* of a token already
admitted is the sender resending it because our answer (or its first copy) was lost.
It is refused as a new request exactly like a replay -- it files no second expectation
and starts no second move -- but as a :class:`RetransmittedTokenError` carrying the
cached answer, so the adapter sends the same ACCEPT again (RFC 3261 §17.2.1: a server
transaction answers a retransmitted request with its last response) instead of
counting an attack. At most :data:`MAX_ANSWERS` answers per nonce (a replayer cannot
make us a reflector). A *different* token with a known nonce, or any token after its
window, is refused as before (:class:`TokenError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.mobility.transfer.errors import (
    NotExpectedError,
    RetransmittedTokenError,
    TokenError,
)
from mobilityd.mobility.transfer.token import HandOffToken, TokenKind

__all__ = ["MAX_ANSWERS", "ExpectationBook"]

MAX_ANSWERS = 8
"""Answers sent for one nonce at most (the first one and seven repeats)."""


@dataclass
class _Admitted:
    """What we admitted under one nonce: its exact octets and our answer to them."""

    expires: float
    data: bytes
    answer: bytes | None
    answers_sent: int = 1


@dataclass
class ExpectationBook:
    """Expectations of one device (``device``: its name in the user's device list)."""

    device: str
    key: bytes = field(repr=False)
    skew: float = 30.0
    max_entries: int = 64
    _expected: dict[tuple[str, int], HandOffToken] = field(default_factory=dict, repr=False)
    _nonces: dict[bytes, _Admitted] = field(default_factory=dict, repr=False)

    def admit(self, data: bytes, now: float) -> tuple[HandOffToken, bytes]:
        """Verify an EXPECT token and file it; returns it and the ACCEPT token bytes."""
        self._purge(now)
        token = HandOffToken.open(data, self.key, receiver=self.device, now=now, skew=self.skew)
        if token.kind is not TokenKind.EXPECT:
            raise TokenError(f"expected an EXPECT token, got {token.kind.name}")
        self._refuse_known_nonce(token, data)
        if len(self._expected) >= self.max_entries:
            raise TokenError("too many pending transfers")
        accept = bytes(token.answer(TokenKind.ACCEPT).sealed(self.key))
        self._nonces[token.nonce] = _Admitted(token.expires, data, accept)
        self._expected[(token.correspondent, token.csb_id)] = token
        return token, accept

    def admit_pull(self, data: bytes, now: float) -> HandOffToken:
        """Verify a PULL token ("move your call to me") from another device of the
        user; same checks and replay protection as :meth:`admit`."""
        self._purge(now)
        token = HandOffToken.open(data, self.key, receiver=self.device, now=now, skew=self.skew)
        if token.kind is not TokenKind.PULL:
            raise TokenError(f"expected a PULL token, got {token.kind.name}")
        self._refuse_known_nonce(token, data)
        self._nonces[token.nonce] = _Admitted(token.expires, data, None)
        return token

    def _refuse_known_nonce(self, token: HandOffToken, data: bytes) -> None:
        """A nonce seen before: an identical copy is a retransmission (answered from
        the cache), anything else a replay (module docstring)."""
        admitted = self._nonces.get(token.nonce)
        if admitted is None:
            return
        if admitted.data != data:
            raise TokenError("replayed hand-off token (nonce reused by another token)")
        answer = admitted.answer if admitted.answers_sent < MAX_ANSWERS else None
        if answer is not None:
            admitted.answers_sent += 1
        raise RetransmittedTokenError(
            "replayed hand-off token: an identical retransmission, answered from the cache",
            answer)

    def find(self, correspondent: str, csb_id: int, now: float) -> HandOffToken:
        """The live expectation for a transfer from ``correspondent`` of CSB ``csb_id``."""
        self._purge(now)
        token = self._expected.get((correspondent, csb_id))
        if token is None:
            raise NotExpectedError(
                f"no device of the user announced a transfer from {correspondent} "
                f"(CSB {csb_id:#010x})", correspondent, csb_id,
            )
        return token

    def consume(self, token: HandOffToken) -> None:
        """Remove ``token``'s expectation (one transfer per EXPECT token)."""
        key = (token.correspondent, token.csb_id)
        if self._expected.get(key) is token:
            del self._expected[key]

    @property
    def pending(self) -> int:
        return len(self._expected)

    def _purge(self, now: float) -> None:
        for key, token in list(self._expected.items()):
            if token.expires <= now:
                del self._expected[key]
        for nonce, admitted in list(self._nonces.items()):
            if admitted.expires + self.skew <= now:
                del self._nonces[nonce]
