"""The transfer target's side (the PDA; issue 6 steps 3-4 and 6, thesis §15.1).

:func:`take_transfer` decides on the MIKEY offer of a transfer INVITE:

1. The offer must match an expectation filed from the user's own device
   (:class:`~.expectations.ExpectationBook`: correspondent and CSB ID, RFC 3830 §6.1);
   otherwise :class:`~.errors.NotExpectedError` (603) -- a REFER to one of the user's
   devices that was not asked to take the call ends here.
2. The I_MESSAGE is verified by an ordinary MIKEY :class:`Responder` holding the user's
   credentials towards the correspondent (the PSK of §3.1 or the user's private key of
   §3.2) and bound to the correspondent's identity; its replay cache and timestamp
   window (§5.4) refuse a replayed INVITE.
3. The CS ID map (§6.1.1) must keep the correspondent's SSRCs and give our streams
   SSRCs that the old device never used (the expectation lists them): otherwise the
   keystream would repeat (RFC 3711 §9.1) and the offer is refused.

Only then is the expectation consumed (so a forged INVITE cannot burn it) and
:class:`~.events.TransferTaken` returned with the V answer proving we hold the user's
credentials. :func:`open_transfer_sessions` keys SRTP from it: the inbound stream of
the correspondent starts at the ROC of the map (set through the ROC shim), so the first
packet decrypts.
"""

from __future__ import annotations

from mobilityd.media.keying import sessions_for_call
from mobilityd.media.srtp import SrtpSession
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.session import Responder, Rng
from mobilityd.mobility.transfer.errors import KeyTransportError
from mobilityd.mobility.transfer.events import TransferTaken
from mobilityd.mobility.transfer.expectations import ExpectationBook

__all__ = ["open_transfer_sessions", "take_transfer"]


def take_transfer(  # noqa: PLR0917
    book: ExpectationBook,
    responder: Responder,
    correspondent: str,
    mikey: bytes,
    now: float,
    rng: Rng | None = None,
) -> TransferTaken:
    """Verify a transfer offer from ``correspondent`` (SIP From URI text), see module."""
    try:
        csb_id = MikeyMessage.parse(mikey).header.csb_id
    except MikeyError as exc:
        raise KeyTransportError(f"transfer offer unreadable: {exc}", exc.error_type) from exc
    expectation = book.find(correspondent, csb_id, now)
    try:
        completed = responder.receive(mikey, now, rng)
    except MikeyError as exc:
        raise KeyTransportError(f"transfer offer refused: {exc}", exc.error_type) from exc
    context = completed.context
    ssrcs = [entry.ssrc for entry in context.cs_map]
    remote = tuple(s for s in ssrcs if s in expectation.correspondent_ssrcs)
    local = tuple(s for s in ssrcs if s not in expectation.correspondent_ssrcs)
    if set(remote) != set(expectation.correspondent_ssrcs):
        raise KeyTransportError("transfer offer drops a stream of the correspondent",
                                ErrorType.INVALID_SPPAR)
    reused = set(local) & set(expectation.released_ssrcs)
    if reused or not local:
        raise KeyTransportError(
            "transfer offer reuses an SSRC the old device sent (RFC 3711 §9.1)"
            if reused else "transfer offer has no stream for us",
            ErrorType.INVALID_SPPAR,
        )
    book.consume(expectation)
    return TransferTaken(context, completed.reply, expectation.call_id, local, remote)


def open_transfer_sessions(
    taken: TransferTaken, *, keep_index_history: bool = False
) -> tuple[SrtpSession, SrtpSession]:
    """(outbound, inbound) SRTP sessions of the new device (RFC 3830 §4.1.3, §6.1.1)."""
    return sessions_for_call(taken.context, taken.local_ssrcs, taken.remote_ssrcs,
                             keep_index_history=keep_index_history)
