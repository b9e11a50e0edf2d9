"""ROC shim: read and set libsrtp's per-stream rollover counter under pylibsrtp.

Why: a receiver that joins a running SRTP stream (session transfer, late join) must
start at the stream's current rollover counter (ROC), which MIKEY carries in the CS ID
map (RFC 3830 §6.1.1, RFC 3711 §3.3.1); otherwise the packet index, hence the keystream
and the authentication (RFC 3711 §4.2: the ROC is part of the authenticated portion),
are wrong and every packet fails authentication. pylibsrtp 1.0 does not expose
``srtp_set_stream_roc`` / ``srtp_get_stream_roc``, but the libsrtp it bundles in its
extension module exports both.

What this relies on (checked by :func:`roc_functions` / :func:`session_pointer`, each
raising :class:`~mobilityd.media.errors.RocShimError` with a clear message):

* ``pylibsrtp._binding`` is a cffi extension module (attribute ``ffi``) whose shared
  object exports ``srtp_set_stream_roc(srtp_t, uint32_t ssrc, uint32_t roc)`` and
  ``srtp_get_stream_roc(srtp_t, uint32_t ssrc, uint32_t *roc)`` (libsrtp >= 2.3);
  we ``dlopen`` that same file with ctypes, which returns the already-loaded copy, so
  both bindings share one libsrtp state.
* the **private** attribute ``pylibsrtp.Session._srtp``: a cffi ``srtp_t *`` (pointer to
  the libsrtp session handle) kept alive by the Session object. ``_srtp[0]`` is the
  ``srtp_t`` we hand to libsrtp.

libsrtp semantics (2.7.0 as bundled in pylibsrtp 1.0.0): ``srtp_set_stream_roc`` needs
an existing stream for that SSRC (not just the "any inbound/outbound" template) and
applies the ROC as the estimate for that stream's next packet; ``srtp_get_stream_roc``
returns the stream's current ROC. The SSRC is passed in host order.
"""

from __future__ import annotations

import ctypes
import importlib
import types
from dataclasses import dataclass
from typing import Any

from mobilityd.media.errors import RocShimError, SrtpConfigError

_SRTP_ERR_STATUS_OK = 0


@dataclass(frozen=True, slots=True)
class RocFunctions:
    """The two libsrtp entry points plus the cffi ``ffi`` used to unwrap session handles."""

    set_stream_roc: Any
    get_stream_roc: Any
    ffi: Any

    def session_pointer(self, session: object) -> int:
        """Address of the ``srtp_t`` held by a ``pylibsrtp.Session`` (private ``_srtp``)."""
        handle = getattr(session, "_srtp", None)
        if handle is None:
            raise RocShimError(
                "pylibsrtp.Session has no private attribute '_srtp' (srtp_t *): this "
                "pylibsrtp version is not supported by the ROC shim"
            )
        try:
            if self.ffi.typeof(handle) is not self.ffi.typeof("srtp_t *"):
                raise RocShimError(
                    f"pylibsrtp.Session._srtp is {self.ffi.typeof(handle)!r}, not 'srtp_t *'"
                )
            return int(self.ffi.cast("uintptr_t", handle[0]))
        except (TypeError, AttributeError, self.ffi.error) as exc:
            raise RocShimError(f"pylibsrtp.Session._srtp is not a cffi srtp_t *: {exc}") from exc

    def set_roc(self, session: object, ssrc: int, roc: int) -> None:
        """Set the ROC the stream ``ssrc`` uses for its next packet (RFC 3711 §3.3.1)."""
        if not 0 <= roc <= 0xFFFFFFFF or not 0 <= ssrc <= 0xFFFFFFFF:
            raise SrtpConfigError(f"ROC {roc} or SSRC {ssrc} out of 32-bit range")
        status = self.set_stream_roc(self.session_pointer(session), ssrc, roc)
        if status != _SRTP_ERR_STATUS_OK:
            raise SrtpConfigError(f"libsrtp has no stream for SSRC {ssrc:#010x} (status {status})")

    def get_roc(self, session: object, ssrc: int) -> int:
        """Current ROC of stream ``ssrc`` (RFC 3711 §3.3.1)."""
        if not 0 <= ssrc <= 0xFFFFFFFF:
            raise SrtpConfigError(f"SSRC {ssrc} out of 32-bit range")
        roc = ctypes.c_uint32()
        status = self.get_stream_roc(self.session_pointer(session), ssrc, ctypes.byref(roc))
        if status != _SRTP_ERR_STATUS_OK:
            raise SrtpConfigError(f"libsrtp has no stream for SSRC {ssrc:#010x} (status {status})")
        return roc.value


def load_roc_functions(binding: types.ModuleType | None = None) -> RocFunctions:
    """Find libsrtp's ROC functions in pylibsrtp's bundled shared object.

    ``binding`` defaults to ``pylibsrtp._binding``; tests pass another module to check
    that an incompatible build is detected. Raises :class:`RocShimError`.
    """
    if binding is None:
        try:
            binding = importlib.import_module("pylibsrtp._binding")
        except ImportError as exc:
            raise RocShimError(f"pylibsrtp._binding cannot be imported: {exc}") from exc
    path = getattr(binding, "__file__", None)
    ffi = getattr(binding, "ffi", None)
    if not path or ffi is None:
        raise RocShimError(
            f"{binding.__name__} is not pylibsrtp's cffi extension (no __file__ or ffi)"
        )
    try:
        library = ctypes.CDLL(path)
        set_fn = library.srtp_set_stream_roc
        get_fn = library.srtp_get_stream_roc
    except (OSError, AttributeError) as exc:
        raise RocShimError(
            f"{path} does not export srtp_set_stream_roc/srtp_get_stream_roc "
            f"(libsrtp >= 2.3 needed): {exc}"
        ) from exc
    set_fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
    set_fn.restype = ctypes.c_int
    get_fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]
    get_fn.restype = ctypes.c_int
    try:
        ffi.typeof("srtp_t *")
    except Exception as exc:
        raise RocShimError(f"{binding.__name__}.ffi does not know 'srtp_t *': {exc}") from exc
    return RocFunctions(set_fn, get_fn, ffi)


_DEFAULT: RocFunctions | None = None


def default_roc_functions() -> RocFunctions:
    """The shim for the installed pylibsrtp, loaded once."""
    global _DEFAULT  # noqa: PLW0603
    if _DEFAULT is None:
        _DEFAULT = load_roc_functions()
    return _DEFAULT
