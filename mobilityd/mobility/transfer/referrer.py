"""The old device's side of a transfer (the laptop; issue 6 steps 1-2 and 5), sans-I/O.

:class:`Referrer` drives one move of call ``call_id`` to another device of the user:

=============  ===========================  ==========================================
state          input                        outcome
=============  ===========================  ==========================================
IDLE           :meth:`start`                EXPECT token to send to the device
IDLE           :meth:`start_parallel`       EXPECT token and :class:`TargetConfirmed`
ANNOUNCING     :meth:`receive_accept` ok    :class:`TargetConfirmed` (send REFER)
ANNOUNCING     timer                        :class:`TransferFailed` (device silent)
REFERRING      :meth:`refer_answered` 2xx   (wait for NOTIFY, RFC 3515 §2.4.4)
REFERRING      :meth:`refer_answered` >=300 :class:`TransferFailed`
REFERRING      NOTIFY sipfrag 1xx           :class:`TransferProgressed`
REFERRING      NOTIFY sipfrag 2xx           :class:`TransferSucceeded` (BYE old leg)
REFERRING      NOTIFY sipfrag >=300         :class:`TransferFailed`
REFERRING      timer                        :class:`TransferFailed` (no final NOTIFY)
REFERRING      :meth:`receive_accept` ok    nothing (parallel mode: late confirmation)
=============  ===========================  ==========================================

``start_parallel`` sends the REFER right after the EXPECT token instead of waiting for
the ACCEPT (one round trip less; docs/transfer.md "Parallel announce"): the token
travels one hop to the new device while the REFER and Alice's INVITE travel two, and
the new device still refuses an INVITE it was not told to expect.

Every failure leaves the call untouched: the engine never asks for anything but a
REFER before success, and only :class:`TransferSucceeded` ends the old leg (RFC 5631
§3.2 "transfer" of the session, RFC 3515 §2.4.7 final NOTIFY). Inputs in other states
are local errors (:class:`TransferUsageError`); a bad ACCEPT token is a
:class:`TokenError` and changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mobilityd.mikey.session import Rng
from mobilityd.mobility.transfer.errors import TokenError, TransferUsageError
from mobilityd.mobility.transfer.events import (
    TargetConfirmed,
    TransferEvent,
    TransferFailed,
    TransferProgressed,
    TransferSucceeded,
)
from mobilityd.mobility.transfer.token import NONCE_LEN, HandOffToken, TokenKind

__all__ = ["Referrer", "ReferrerState"]


class ReferrerState(enum.Enum):
    IDLE = "idle"
    ANNOUNCING = "announcing"
    REFERRING = "referring"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Referrer:
    """One move of a call to ``device`` (see the module docstring).

    ``refer_to``: the device's GRUU (RFC 5627) or address; ``referred_by``: the user's
    address of record (RFC 3892). ``released_ssrcs``: the SSRCs this device sent.
    ``now`` is wall-clock seconds (tokens cross machines).
    """

    call_id: str
    own_device: str
    device: str
    key: bytes = field(repr=False)
    refer_to: str
    referred_by: str
    correspondent: str
    csb_id: int
    correspondent_ssrcs: tuple[int, ...]
    released_ssrcs: tuple[int, ...]
    announce_timeout: float = 4.0
    transfer_timeout: float = 32.0
    token_lifetime: float = 60.0
    state: ReferrerState = ReferrerState.IDLE
    _token: HandOffToken | None = field(default=None, repr=False)
    _deadline: float | None = None
    _confirmed: bool = True

    def start(self, now: float, rng: Rng) -> bytes:
        """The EXPECT token for the target device (issue 6 step 2)."""
        self._expect(ReferrerState.IDLE, "start")
        token = HandOffToken(
            TokenKind.EXPECT, now, now + self.token_lifetime, rng(NONCE_LEN), self.csb_id,
            self.call_id, self.correspondent, self.own_device, self.device,
            self.correspondent_ssrcs, self.released_ssrcs,
        ).sealed(self.key)
        self._token = token
        self._enter(ReferrerState.ANNOUNCING, now + self.announce_timeout)
        return bytes(token)

    def start_parallel(self, now: float, rng: Rng) -> tuple[bytes, list[TransferEvent]]:
        """The EXPECT token and, at once, :class:`TargetConfirmed` (send the REFER)."""
        token = self.start(now, rng)
        self._enter(ReferrerState.REFERRING, now + self.transfer_timeout)
        self._confirmed = False
        return token, [TargetConfirmed(self.call_id, self.device, self.refer_to,
                                       self.referred_by)]

    def receive_accept(self, data: bytes, now: float) -> list[TransferEvent]:
        """The device's ACCEPT token: it must answer our EXPECT field for field."""
        if self.state is not ReferrerState.REFERRING or self._confirmed:
            self._expect(ReferrerState.ANNOUNCING, "receive_accept")
        sent = self._token
        assert sent is not None
        token = HandOffToken.open(data, self.key, receiver=self.own_device, now=now)
        if token.body() != sent.answer(TokenKind.ACCEPT).body():
            raise TokenError("ACCEPT token does not answer our EXPECT token")
        self._confirmed = True
        if self.state is ReferrerState.REFERRING:
            return []
        self._enter(ReferrerState.REFERRING, now + self.transfer_timeout)
        return [TargetConfirmed(self.call_id, self.device, self.refer_to, self.referred_by)]

    def refer_answered(self, status: int, now: float) -> list[TransferEvent]:
        """The final response to our REFER (RFC 3515 §2.4.2: 202 Accepted)."""
        del now
        self._expect(ReferrerState.REFERRING, "refer_answered")
        if status >= 300:
            return self._fail(f"REFER refused with {status}", status)
        return []

    def progress_notified(self, status: int, now: float) -> list[TransferEvent]:
        """A NOTIFY's sipfrag status line of the referred INVITE (RFC 3515 §2.4.5)."""
        del now
        self._expect(ReferrerState.REFERRING, "progress_notified")
        if status < 200:
            return [TransferProgressed(self.call_id, status)]
        if status < 300:
            self._enter(ReferrerState.SUCCEEDED, None)
            return [TransferSucceeded(self.call_id, self.device)]
        return self._fail(f"target answered {status}", status)

    def get_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> list[TransferEvent]:
        if self._deadline is None or now < self._deadline:
            return []
        if self.state is ReferrerState.ANNOUNCING:
            return self._fail(f"device {self.device} did not confirm", 0)
        return self._fail("no final NOTIFY for the REFER", 0)

    @property
    def done(self) -> bool:
        return self.state in {ReferrerState.SUCCEEDED, ReferrerState.FAILED}

    def _fail(self, reason: str, status: int) -> list[TransferEvent]:
        self._enter(ReferrerState.FAILED, None)
        return [TransferFailed(self.call_id, self.device, reason, status)]

    def _enter(self, state: ReferrerState, deadline: float | None) -> None:
        self.state = state
        self._deadline = deadline

    def _expect(self, state: ReferrerState, what: str) -> None:
        if self.state is not state:
            raise TransferUsageError(f"{what} in state {self.state.value}")


