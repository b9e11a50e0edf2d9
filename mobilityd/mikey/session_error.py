"""MIKEY error messages (RFC 3830 §5.1.2, §6.12): ``HDR, T, {ERR}, {SP}, [V|SIGNr]``.

:func:`build_error_message` builds the unauthenticated form, which §5.1.2 recommends
when the failure is an authentication failure (a signed answer to an unauthenticated
message is a DoS lever). With ``v_key`` it appends a V payload computed like a
verification message (§5.2), for errors found after the peer was authenticated.
:func:`error_response` turns a :class:`MikeyError` raised while handling a message into
that message's error answer. :class:`PeerReportedError` is raised by an initiator that
receives one.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobilityd.mikey.constants import DataType, ErrorType, MacAlg
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CommonHeader,
    ErrorPayload,
    Payload,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.payloads._wire import Reader
from mobilityd.mikey.replay import ReplayedMessage
from mobilityd.mikey.session_common import build_verification
from mobilityd.mikey.timestamps import timestamp_payload

__all__ = ["PeerReportedError", "build_error_message", "error_response", "parse_error_message"]


class PeerReportedError(MikeyError):
    """The peer sent an error message; ``errors`` lists its ERR payloads (§6.12).

    ``error_type`` is the first of them. The message is not authenticated unless it
    carried a V payload that verified (``authenticated``); §5.1.2 says to treat an
    unauthenticated one as a hint only.
    """

    def __init__(
        self,
        message: str,
        error_type: ErrorType = ErrorType.UNSPECIFIED,
        errors: tuple[ErrorType, ...] = (),
        supported: tuple[SecurityPolicy, ...] = (),
    ) -> None:
        super().__init__(message, error_type)
        self.errors = errors or (error_type,)
        self.supported = supported


def build_error_message(
    csb_id: int,
    errors: Sequence[ErrorType],
    *,
    timestamp: Timestamp | None = None,
    now: float | None = None,
    cs_map: tuple[SrtpCsEntry, ...] = (),
    supported: Sequence[SecurityPolicy] = (),
    v_key: tuple[MacAlg, bytes, bytes, bytes] | None = None,
) -> bytes:
    """An error message for CSB ``csb_id`` (§5.1.2).

    ``timestamp`` is the Initiator's T when known (the Responder reuses it, §5.2),
    else one is made from ``now``. ``supported`` are the SPs we would accept (§5.1.1).
    ``v_key = (mac_alg, auth_key, id_i, id_r)`` adds a V payload.
    """
    if not errors:
        raise ValueError("an error message needs at least one ERR payload")
    if timestamp is None:
        if now is None:
            raise ValueError("give the Initiator's timestamp or now")
        timestamp = timestamp_payload(now)
    header = CommonHeader(DataType.ERROR, csb_id, cs_map)
    payloads: list[Payload] = [timestamp, *(ErrorPayload(e) for e in errors), *supported]
    if v_key is None:
        return bytes(MikeyMessage.build(header, payloads))
    mac_alg, auth_key, id_i, id_r = v_key
    return build_verification(header, payloads, mac_alg, auth_key, ids=(id_i, id_r), ts=timestamp)


_POLICY_ERRORS = frozenset({ErrorType.INVALID_SP, ErrorType.INVALID_SPPAR})


def error_response(
    data: bytes,
    error: MikeyError,
    now: float,
    supported: Sequence[SecurityPolicy] = (),
) -> bytes | None:
    """The error answer to ``data``, or None when none should be sent.

    None for a replayed message (§5.3: discard) and when ``data`` does not even have a
    Common Header to take the CSB ID from. The Initiator's T is echoed when readable.
    ``supported`` (our acceptable SPs) is added to ``INVALID_SP``/``INVALID_SPPAR``
    answers so the Initiator can choose again (§5.1.1, §5.1.2).
    """
    offer = supported if error.error_type in _POLICY_ERRORS else ()
    if isinstance(error, ReplayedMessage | PeerReportedError):
        return None
    try:
        msg = MikeyMessage.parse(data)
    except MikeyError:
        try:
            header = CommonHeader.read(Reader(bytes(data)))
        except MikeyError:
            return None
        return build_error_message(header.csb_id, [error.error_type], now=now, supported=offer)
    if msg.header.data_type == DataType.ERROR:
        return None  # never answer an error with an error
    ts = msg.find(Timestamp)
    return build_error_message(
        msg.header.csb_id,
        [error.error_type],
        timestamp=ts,
        now=now,
        cs_map=msg.header.cs_map,
        supported=offer,
    )


def parse_error_message(msg: MikeyMessage) -> PeerReportedError:
    """The :class:`PeerReportedError` an error message stands for (unauthenticated)."""
    errors = tuple(p.error_no for p in msg.find_all(ErrorPayload))
    supported = tuple(msg.find_all(SecurityPolicy))
    first = errors[0] if errors else ErrorType.UNSPECIFIED
    names = ", ".join(e.name for e in errors) or "no ERR payload"
    return PeerReportedError(f"peer reported: {names}", first, errors, supported)
