"""Direct per-packet calls into the libsrtp that pylibsrtp bundles (RFC 3711 §3.3).

Why: pylibsrtp's ``Session.protect`` / ``unprotect`` wrap each libsrtp call in Python
that allocates a fresh ``int *`` with cffi, checks types, and calls a Python helper to
test the status; profiled on our receive path this wrapper cost about twice the C
``srtp_unprotect`` itself. :class:`DirectSrtp` makes the very same libsrtp calls on the
very same session handle with a buffer and a length cell allocated once, and raises
the very same ``pylibsrtp.Error`` (same message) on a non-zero status, so callers see
no difference but speed.

What this relies on (the ROC shim, :mod:`mobilityd.media.roc_shim`, relies on the
same): ``pylibsrtp._binding`` is the cffi module (``ffi``, ``lib``) and a
``pylibsrtp.Session`` keeps its ``srtp_t *`` in the private attribute ``_srtp``. If
either is missing, :func:`direct_srtp` returns None and :class:`SrtpSession` keeps
pylibsrtp's own methods.
"""

from __future__ import annotations

import importlib
from typing import Any

import pylibsrtp

#: pylibsrtp's own packet buffer size and trailer room (RFC 3711 §3.1: auth tag + MKI)
BUFFER_LEN = 1500
RTP_TRAILER_LEN = pylibsrtp.SRTP_MAX_TRAILER_LEN
RTCP_TRAILER_LEN = pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN


class DirectSrtp:
    """``protect`` / ``unprotect`` (and RTCP) of one ``pylibsrtp.Session``, allocation-free
    apart from the returned bytes. Not thread-safe (one buffer), like the session."""

    __slots__ = ("_buffer", "_cdata", "_handle", "_length", "_lib", "_session")

    def __init__(self, session: pylibsrtp.Session, ffi: Any, lib: Any) -> None:
        self._session = session  # keeps the srtp_t alive as long as we use it
        self._handle = session._srtp[0]
        self._lib = lib
        self._cdata = ffi.new("char[]", BUFFER_LEN)
        self._buffer = ffi.buffer(self._cdata)
        self._length = ffi.new("int *")

    def _process(self, data: bytes, func: Any, trailer: int) -> bytes:
        size = len(data)
        if size > BUFFER_LEN - trailer:
            raise ValueError("packet is too long")  # pylibsrtp's check and message
        buffer, length = self._buffer, self._length
        buffer[0:size] = data
        length[0] = size
        status = func(self._handle, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_reason(status))
        result: bytes = buffer[0:length[0]]
        return result

    def protect(self, rtp: bytes) -> bytes:
        """``srtp_protect`` (RFC 3711 §3.3), :meth:`_process` written out (per packet)."""
        size = len(rtp)
        if size > BUFFER_LEN - RTP_TRAILER_LEN:
            raise ValueError("packet is too long")
        buffer, length = self._buffer, self._length
        buffer[0:size] = rtp
        length[0] = size
        status = self._lib.srtp_protect(self._handle, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_reason(status))
        result: bytes = buffer[0:length[0]]
        return result

    def unprotect(self, srtp: bytes) -> bytes:
        """``srtp_unprotect`` (RFC 3711 §3.3): :meth:`_process` written out, since this
        runs for every packet received (one Python call fewer)."""
        size = len(srtp)
        if size > BUFFER_LEN:
            raise ValueError("packet is too long")
        buffer, length = self._buffer, self._length
        buffer[0:size] = srtp
        length[0] = size
        status = self._lib.srtp_unprotect(self._handle, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_reason(status))
        result: bytes = buffer[0:length[0]]
        return result

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """``srtp_protect_rtcp`` (RFC 3711 §3.4)."""
        return self._process(rtcp, self._lib.srtp_protect_rtcp, RTCP_TRAILER_LEN)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """``srtp_unprotect_rtcp`` (RFC 3711 §3.4)."""
        return self._process(srtcp, self._lib.srtp_unprotect_rtcp, 0)


def _reason(status: int) -> str:
    """pylibsrtp's message for a libsrtp status (what ``pylibsrtp.Error`` would say)."""
    errors: list[str] = pylibsrtp.ERRORS
    return errors[status] if 0 <= status < len(errors) else f"libsrtp status {status}"


def direct_srtp(session: pylibsrtp.Session) -> DirectSrtp | None:
    """Direct calls on ``session``'s handle, or None if this pylibsrtp does not have the
    internals described in the module docstring (then use the session's own methods)."""
    try:
        binding = importlib.import_module("pylibsrtp._binding")
        ffi, lib = binding.ffi, binding.lib
        handle = getattr(session, "_srtp", None)
        if handle is None or ffi.typeof(handle) is not ffi.typeof("srtp_t *"):
            return None
        for name in ("srtp_protect", "srtp_unprotect", "srtp_protect_rtcp",
                     "srtp_unprotect_rtcp"):
            getattr(lib, name)
    except (ImportError, AttributeError, TypeError):
        return None
    return DirectSrtp(session, ffi, lib)
