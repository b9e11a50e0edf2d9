"""The ROC shim (RFC 3711 §3.3.1, ROC from the MIKEY CS ID map, RFC 3830 §6.1.1)."""

from __future__ import annotations

import ctypes.util
import types

import pytest

from mobilityd.media.errors import RocShimError, SrtpAuthError, SrtpConfigError
from mobilityd.media.roc_shim import default_roc_functions, load_roc_functions
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession

KEYS = SrtpKeys(bytes(range(1, 17)), bytes(range(50, 64)))
SSRC = 0x12345678


def packet(seq: int) -> bytes:
    return build_rtp(8, seq, seq * 160, SSRC, bytes(range(160)))


def running_sender(roc: int) -> SrtpSession:
    sender = SrtpSession(KEYS, Direction.OUTBOUND)
    sender.set_roc(SSRC, roc)
    return sender


def test_receiver_joining_at_roc_3_decrypts_first_packet() -> None:
    sender = running_sender(3)
    first = sender.protect(packet(4242))
    receiver = SrtpSession(KEYS, Direction.INBOUND, ssrcs=[SSRC])
    receiver.set_roc(SSRC, 3)
    assert receiver.unprotect(first) == packet(4242)
    assert receiver.get_roc(SSRC) == 3
    assert receiver.counters(SSRC).last_index == (3 << 16) | 4242
    assert receiver.unprotect(sender.protect(packet(4243))) == packet(4243)


def test_receiver_without_shim_fails_authentication() -> None:
    sender = running_sender(3)
    receiver = SrtpSession(KEYS, Direction.INBOUND)
    with pytest.raises(SrtpAuthError):
        receiver.unprotect(sender.protect(packet(4242)))
    assert receiver.unknown_ssrc_auth_failures == 1


def test_sender_roc_really_wraps_after_65535() -> None:
    sender = SrtpSession(KEYS, Direction.OUTBOUND)
    for seq in (65534, 65535, 0):
        sender.protect(packet(seq))
    assert sender.get_roc(SSRC) == 1


def test_get_roc_of_unknown_stream_is_typed() -> None:
    with pytest.raises(SrtpConfigError):
        SrtpSession(KEYS, Direction.INBOUND).get_roc(SSRC)


def test_incompatible_session_object_detected() -> None:
    shim = default_roc_functions()
    with pytest.raises(RocShimError, match="_srtp"):
        shim.get_roc(object(), SSRC)

    class WrongType:
        _srtp = shim.ffi.new("int *")

    with pytest.raises(RocShimError, match="srtp_t"):
        shim.get_roc(WrongType(), SSRC)


def test_incompatible_binding_detected() -> None:
    no_ffi = types.ModuleType("fake_binding")
    with pytest.raises(RocShimError, match="cffi"):
        load_roc_functions(no_ffi)
    libc = ctypes.util.find_library("c")
    assert libc is not None
    wrong_library = types.ModuleType("fake_binding")
    wrong_library.__file__ = "/lib/x86_64-linux-gnu/" + libc
    wrong_library.ffi = default_roc_functions().ffi  # type: ignore[attr-defined]
    with pytest.raises(RocShimError, match="srtp_set_stream_roc"):
        load_roc_functions(wrong_library)
