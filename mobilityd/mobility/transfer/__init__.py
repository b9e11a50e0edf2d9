"""mobilityd.mobility.transfer: move a live secure call between the user's devices.

Issue 6 / thesis §15.1, RFC 3515 (REFER), RFC 5631 (session hand-off), RFC 3892
(Referred-By), RFC 3830 (MIKEY). Sans-I/O engines; design in docs/transfer.md.

* :mod:`.token` -- ``HandOffToken``: HMAC-protected EXPECT / ACCEPT / PULL tokens
  between the user's devices (device key).
* :mod:`.referrer` -- ``Referrer``: the old device (EXPECT, REFER, NOTIFY, BYE).
* :mod:`.correspondent` -- ``offer_transfer``: the correspondent's MIKEY offer with
  the same TGK/CSB ID/RAND, current ROCs and fresh user-side SSRCs; its verification.
* :mod:`.expectations` / :mod:`.target` -- the new device: ``ExpectationBook``,
  ``take_transfer``, ``open_transfer_sessions``.
* :mod:`.retransmit` / :mod:`.early` -- the reliable hand-off channel:
  ``TokenRetransmission`` (tokens resent like SIP requests over UDP, RFC 3261
  §17.1.2.2) and ``EarlyInvites`` (a transfer INVITE waiting for its EXPECT token).
"""

from mobilityd.mobility.transfer.correspondent import (
    TransferOffer,
    add_receive_streams,
    offer_transfer,
)
from mobilityd.mobility.transfer.early import EarlyInvites
from mobilityd.mobility.transfer.errors import (
    KeyTransportError,
    NotExpectedError,
    RetransmittedTokenError,
    TokenError,
    TransferError,
    TransferRefusedError,
    TransferUsageError,
)
from mobilityd.mobility.transfer.events import (
    TargetConfirmed,
    TransferAccepted,
    TransferFailed,
    TransferProgressed,
    TransferSucceeded,
    TransferTaken,
)
from mobilityd.mobility.transfer.expectations import ExpectationBook
from mobilityd.mobility.transfer.referrer import Referrer, ReferrerState
from mobilityd.mobility.transfer.retransmit import TokenRetransmission
from mobilityd.mobility.transfer.target import open_transfer_sessions, take_transfer
from mobilityd.mobility.transfer.token import HandOffToken, TokenKind, token_key

__all__ = [
    "EarlyInvites",
    "ExpectationBook",
    "HandOffToken",
    "KeyTransportError",
    "NotExpectedError",
    "Referrer",
    "ReferrerState",
    "RetransmittedTokenError",
    "TargetConfirmed",
    "TokenError",
    "TokenKind",
    "TokenRetransmission",
    "TransferAccepted",
    "TransferError",
    "TransferFailed",
    "TransferOffer",
    "TransferProgressed",
    "TransferRefusedError",
    "TransferSucceeded",
    "TransferTaken",
    "TransferUsageError",
    "add_receive_streams",
    "offer_transfer",
    "open_transfer_sessions",
    "take_transfer",
    "token_key",
]
