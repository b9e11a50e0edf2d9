"""The new device's book of transfers it was told to expect (issue 6, step 2), sans-I/O.

:meth:`ExpectationBook.admit` verifies an ``EXPECT`` hand-off token from another device
of the user (:mod:`.token`), refuses a replayed nonce, files the expectation and returns
the sealed ``ACCEPT`` token to send back. A transfer INVITE is taken only if
:meth:`find` has an expectation for its correspondent and MIKEY CSB ID (the CSB ID of
the running call, RFC 3830 §6.1, which the correspondent keeps for the transfer);
:meth:`consume` removes it once the MIKEY exchange succeeded, so each expectation
admits one transfer. Nonces are remembered until their token expires.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilityd.mobility.transfer.errors import NotExpectedError, TokenError
from mobilityd.mobility.transfer.token import HandOffToken, TokenKind

__all__ = ["ExpectationBook"]


@dataclass
class ExpectationBook:
    """Expectations of one device (``device``: its name in the user's device list)."""

    device: str
    key: bytes = field(repr=False)
    skew: float = 30.0
    max_entries: int = 64
    _expected: dict[tuple[str, int], HandOffToken] = field(default_factory=dict, repr=False)
    _nonces: dict[bytes, float] = field(default_factory=dict, repr=False)

    def admit(self, data: bytes, now: float) -> tuple[HandOffToken, bytes]:
        """Verify an EXPECT token and file it; returns it and the ACCEPT token bytes."""
        self._purge(now)
        token = HandOffToken.open(data, self.key, receiver=self.device, now=now, skew=self.skew)
        if token.kind is not TokenKind.EXPECT:
            raise TokenError(f"expected an EXPECT token, got {token.kind.name}")
        if token.nonce in self._nonces:
            raise TokenError("replayed hand-off token")
        if len(self._expected) >= self.max_entries:
            raise TokenError("too many pending transfers")
        self._nonces[token.nonce] = token.expires
        self._expected[(token.correspondent, token.csb_id)] = token
        return token, bytes(token.answer(TokenKind.ACCEPT).sealed(self.key))

    def admit_pull(self, data: bytes, now: float) -> HandOffToken:
        """Verify a PULL token ("move your call to me") from another device of the
        user; same checks and replay protection as :meth:`admit`."""
        self._purge(now)
        token = HandOffToken.open(data, self.key, receiver=self.device, now=now, skew=self.skew)
        if token.kind is not TokenKind.PULL:
            raise TokenError(f"expected a PULL token, got {token.kind.name}")
        if token.nonce in self._nonces:
            raise TokenError("replayed hand-off token")
        self._nonces[token.nonce] = token.expires
        return token

    def find(self, correspondent: str, csb_id: int, now: float) -> HandOffToken:
        """The live expectation for a transfer from ``correspondent`` of CSB ``csb_id``."""
        self._purge(now)
        token = self._expected.get((correspondent, csb_id))
        if token is None:
            raise NotExpectedError(
                f"no device of the user announced a transfer from {correspondent} "
                f"(CSB {csb_id:#010x})"
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
        for nonce, expires in list(self._nonces.items()):
            if expires + self.skew <= now:
                del self._nonces[nonce]
