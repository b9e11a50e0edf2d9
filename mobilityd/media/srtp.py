"""SRTP/SRTCP sessions over pylibsrtp (RFC 3711), one :class:`SrtpSession` per direction.

Keys come from MIKEY (``CryptoContext.srtp_master(cs_id)`` -> 16-octet master key and
14-octet master salt, RFC 3830 §4.1.3) with the suite of the MIKEY security policy.
libsrtp derives the session keys (RFC 3711 §4.3, key derivation rate 0) and does the
AES-CM encryption (§4.1.1) and HMAC-SHA1 authentication (§4.2).

Added here on top of pylibsrtp:

* typed errors: :class:`SrtpAuthError` / :class:`SrtpReplayError` (both counted, the
  packet is dropped: RFC 3711 §3.3 steps 4-5), :class:`SrtpError` for the rest;
* per-SSRC counters (:mod:`mobilityd.media.stats`);
* the rollover counter (ROC) through :mod:`mobilityd.media.roc_shim`;
* a guard that never encrypts the same (SSRC, packet index) twice (RFC 3711 §9.1:
  keystream reuse), raising :class:`SrtpIndexReuseError` before libsrtp sees it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, IntEnum

import pylibsrtp

from mobilityd.media.errors import (
    MediaLocalError,
    SrtpAuthError,
    SrtpConfigError,
    SrtpError,
    SrtpIndexReuseError,
    SrtpReplayError,
)
from mobilityd.media.libsrtp_direct import DirectSrtp, direct_srtp
from mobilityd.media.roc_shim import RocFunctions, default_roc_functions
from mobilityd.media.stats import StreamCounters, StreamCounterSnapshot

MASTER_KEY_LEN = 16
MASTER_SALT_LEN = 14
MIN_RTP_LEN = 12
#: RTP fixed header (RFC 3550 §5.1) from octet 2: sequence number, timestamp, SSRC
_SEQ_TS_SSRC = struct.Struct("!2xHII")
_SEQ_SSRC = struct.Struct("!2xH4xI")
MIN_RTCP_LEN = 8


class SrtpSuite(IntEnum):
    """The crypto suites we offer (RFC 3711 §5 defaults; names as in RFC 4568 §6.2).

    The value is pylibsrtp's/libsrtp's profile number.
    """

    AES_CM_128_HMAC_SHA1_80 = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    AES_CM_128_HMAC_SHA1_32 = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32

    @property
    def tag_length(self) -> int:
        """Authentication tag length in octets (RFC 3711 §5.2: 80 or 32 bits)."""
        return 10 if self is SrtpSuite.AES_CM_128_HMAC_SHA1_80 else 4

    @classmethod
    def for_auth_tag_length(cls, octets: int) -> SrtpSuite:
        """The suite for an SRTP auth tag length in octets, as the MIKEY SP payload
        gives it (RFC 3830 §6.10.1 "Authentication tag length"): 10 or 4."""
        suite = _SUITE_BY_TAG_LENGTH.get(octets)
        if suite is None:
            raise SrtpConfigError(f"no AES-CM/HMAC-SHA1 suite with a {octets}-octet tag")
        return suite


_SUITE_BY_TAG_LENGTH = {suite.tag_length: suite for suite in SrtpSuite}


class Direction(Enum):
    """Which way a session works: we protect OUTBOUND packets, unprotect INBOUND ones."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """Master key + master salt and suite of one crypto session (RFC 3711 §8.2)."""

    master_key: bytes
    master_salt: bytes
    suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80

    def __post_init__(self) -> None:
        if len(self.master_key) != MASTER_KEY_LEN:
            raise SrtpConfigError(f"master key must be 16 octets, not {len(self.master_key)}")
        if len(self.master_salt) != MASTER_SALT_LEN:
            raise SrtpConfigError(f"master salt must be 14 octets, not {len(self.master_salt)}")

    @classmethod
    def from_master(
        cls, master: tuple[bytes, bytes], suite: SrtpSuite = SrtpSuite.AES_CM_128_HMAC_SHA1_80
    ) -> SrtpKeys:
        """From ``CryptoContext.srtp_master(cs_id)`` (RFC 3830 §4.1.3)."""
        return cls(master[0], master[1], suite)

    def __repr__(self) -> str:  # never log key material
        return f"SrtpKeys(suite={self.suite.name}, master_key=<hidden>, master_salt=<hidden>)"


_AUTH_REASONS = frozenset({"authentication failure"})
_REPLAY_REASONS = frozenset(
    {"replay check failed (bad index)", "replay check failed (index too old)"}
)


class SrtpSession:
    """One direction of SRTP + SRTCP for a call (all SSRCs keyed by one crypto session).

    ``ssrcs`` pre-creates streams (needed before :meth:`set_roc`); otherwise streams are
    created by libsrtp's "any inbound/outbound" template on first use.
    ``keep_index_history`` records every (SSRC, index) protected, for tests.
    """

    def __init__(
        self,
        keys: SrtpKeys,
        direction: Direction,
        *,
        ssrcs: Iterable[int] = (),
        replay_window: int | None = None,
        keep_index_history: bool = False,
        roc_functions: RocFunctions | None = None,
    ) -> None:
        self.keys = keys
        self.direction = direction
        self._inbound = direction is Direction.INBOUND
        self._min_srtp_len = MIN_RTP_LEN + keys.suite.tag_length
        self._min_srtcp_len = MIN_RTCP_LEN + 4 + keys.suite.tag_length
        self._window = replay_window
        self._roc_functions = roc_functions
        template = self._policy(
            pylibsrtp.Policy.SSRC_ANY_OUTBOUND
            if direction is Direction.OUTBOUND
            else pylibsrtp.Policy.SSRC_ANY_INBOUND
        )
        self._session = pylibsrtp.Session(template)
        # bound once, called for every packet: libsrtp directly where we can
        # (mobilityd.media.libsrtp_direct), else pylibsrtp's own methods
        calls: DirectSrtp | pylibsrtp.Session = direct_srtp(self._session) or self._session
        self._protect = calls.protect
        self._unprotect = calls.unprotect
        self._protect_rtcp = calls.protect_rtcp
        self._unprotect_rtcp = calls.unprotect_rtcp
        self._streams: dict[int, StreamCounters] = {}
        self.unknown_ssrc_auth_failures = 0
        #: protect() calls refused because the (SSRC, index) was already used (§9.1)
        self.index_reuse_refused = 0
        self.malformed = 0
        self.index_history: set[tuple[int, int]] | None = set() if keep_index_history else None
        for ssrc in ssrcs:
            self.add_stream(ssrc)

    def _policy(
        self, ssrc_type: int, ssrc: int = 0, keys: SrtpKeys | None = None
    ) -> pylibsrtp.Policy:
        keys = keys or self.keys
        policy = pylibsrtp.Policy(
            key=keys.master_key + keys.master_salt,
            ssrc_type=ssrc_type,
            ssrc_value=ssrc,
            srtp_profile=int(keys.suite),
        )
        if self._window is not None:
            policy.window_size = self._window
        return policy

    # -- streams and ROC ---------------------------------------------------------------

    def add_stream(self, ssrc: int, roc: int = 0, keys: SrtpKeys | None = None) -> None:
        """Create the libsrtp stream for ``ssrc`` now (optionally at ROC ``roc``), keyed
        with ``keys`` if this SSRC has its own crypto session (RFC 3830 §6.1.1 CS ID map:
        one key per SSRC), else with the session's keys."""
        if not 0 <= ssrc <= 0xFFFFFFFF:
            raise SrtpConfigError(f"SSRC {ssrc} out of 32-bit range")
        if ssrc not in self._streams:
            try:
                self._session.add_stream(
                    self._policy(pylibsrtp.Policy.SSRC_SPECIFIC, ssrc, keys)
                )
            except pylibsrtp.Error as exc:
                raise SrtpConfigError(f"libsrtp refused stream {ssrc:#010x}: {exc}") from exc
            self._streams[ssrc] = StreamCounters(ssrc)
        if roc:
            self.set_roc(ssrc, roc)

    def _shim(self) -> RocFunctions:
        if self._roc_functions is None:
            self._roc_functions = default_roc_functions()
        return self._roc_functions

    def set_roc(self, ssrc: int, roc: int) -> None:
        """Start stream ``ssrc`` at rollover counter ``roc`` (RFC 3711 §3.3.1), e.g. the
        ROC of the MIKEY CS ID map (RFC 3830 §6.1.1) when joining a running stream."""
        if ssrc not in self._streams:
            self.add_stream(ssrc)
        self._shim().set_roc(self._session, ssrc, roc)
        self._streams[ssrc].reset_roc(roc)

    def get_roc(self, ssrc: int) -> int:
        """libsrtp's current ROC of stream ``ssrc`` (read through the ROC shim)."""
        return self._shim().get_roc(self._session, ssrc)

    def counters(self, ssrc: int) -> StreamCounterSnapshot:
        """Counters of stream ``ssrc``; :class:`SrtpConfigError` if we never saw it."""
        try:
            return self._streams[ssrc].snapshot()
        except KeyError:
            raise SrtpConfigError(f"no stream for SSRC {ssrc:#010x}") from None

    @property
    def ssrcs(self) -> tuple[int, ...]:
        return tuple(self._streams)

    def _stream(self, ssrc: int) -> StreamCounters:
        stream = self._streams.get(ssrc)
        if stream is None:
            stream = self._streams[ssrc] = StreamCounters(ssrc)
        return stream

    # -- RTP ---------------------------------------------------------------------------

    def protect(self, rtp: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet (RFC 3711 §3.3)."""
        if self._inbound:
            raise MediaLocalError("protect() on an inbound SRTP session")
        if len(rtp) < MIN_RTP_LEN:
            raise SrtpConfigError(f"RTP packet of {len(rtp)} octets is too short to protect")
        seq, ssrc = _SEQ_SSRC.unpack_from(rtp)
        stream = self._streams.get(ssrc)
        if stream is None:
            stream = self._streams[ssrc] = StreamCounters(ssrc)
        index = stream.index_of(seq)
        last = stream.last_index
        if last is not None and index <= last:
            self.index_reuse_refused += 1
            raise SrtpIndexReuseError(
                f"SSRC {ssrc:#010x} index {index} not above {last}: "
                "keystream would be reused (RFC 3711 §9.1)"
            )
        try:
            srtp = self._protect(rtp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpConfigError(f"libsrtp could not protect: {exc}") from exc
        stream.record(index, len(rtp))
        if self.index_history is not None:
            self.index_history.add((ssrc, index))
        return srtp

    def unprotect(self, srtp: bytes) -> bytes:
        """Authenticate and decrypt one SRTP packet (RFC 3711 §3.3).

        Raises :class:`SrtpAuthError` / :class:`SrtpReplayError` (counted) or
        :class:`SrtpError`; the session state is unchanged by a rejected packet.
        """
        return self.unprotect_fields(srtp)[0]

    def unprotect_fields(self, srtp: bytes) -> tuple[bytes, int, int, int]:
        """:meth:`unprotect`, also giving the header fields the receiver needs next:
        ``(rtp, sequence number, timestamp, SSRC)`` (RFC 3550 §5.1), read once here.

        This is the per-packet path of every call's media: one C-level header read,
        no intermediate slices.
        """
        if not self._inbound:
            raise MediaLocalError("unprotect() on an outbound SRTP session")
        if len(srtp) < self._min_srtp_len:
            self.malformed += 1
            raise SrtpError(f"SRTP packet of {len(srtp)} octets is too short", "too short")
        try:
            rtp = self._unprotect(srtp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise self._failure(int.from_bytes(srtp[8:12], "big"), str(exc), rtcp=False) from exc
        seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(rtp)
        stream = self._streams.get(ssrc)
        if stream is None:
            stream = self._streams[ssrc] = StreamCounters(ssrc)
        stream.accept(seq, len(rtp))
        return rtp, seq, timestamp, ssrc

    def _failure(self, ssrc: int, reason: str, *, rtcp: bool) -> SrtpError:
        stream = self._streams.get(ssrc)
        kind = "SRTCP" if rtcp else "SRTP"
        if reason in _AUTH_REASONS:
            if stream is None:
                self.unknown_ssrc_auth_failures += 1
            elif rtcp:
                stream.rtcp_auth_failures += 1
            else:
                stream.auth_failures += 1
            return SrtpAuthError(f"{kind} authentication failed for SSRC {ssrc:#010x}", reason)
        if reason in _REPLAY_REASONS:
            if stream is not None:
                stream.replays += 1
            return SrtpReplayError(f"{kind} replay from SSRC {ssrc:#010x}: {reason}", reason)
        self.malformed += 1
        return SrtpError(f"{kind} packet from SSRC {ssrc:#010x} rejected: {reason}", reason)

    # -- RTCP --------------------------------------------------------------------------

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Encrypt and authenticate one (compound) RTCP packet (RFC 3711 §3.4)."""
        if self._inbound:
            raise MediaLocalError("protect_rtcp() on an inbound SRTP session")
        if len(rtcp) < MIN_RTCP_LEN:
            raise SrtpConfigError(f"RTCP packet of {len(rtcp)} octets is too short to protect")
        try:
            srtcp = self._protect_rtcp(rtcp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpConfigError(f"libsrtp could not protect RTCP: {exc}") from exc
        stream = self._stream(int.from_bytes(rtcp[4:8], "big"))
        stream.rtcp_packets += 1
        stream.rtcp_octets += len(rtcp)
        return srtcp

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Authenticate and decrypt one SRTCP packet (RFC 3711 §3.4)."""
        if not self._inbound:
            raise MediaLocalError("unprotect_rtcp() on an outbound SRTP session")
        if len(srtcp) < self._min_srtcp_len:
            self.malformed += 1
            raise SrtpError(f"SRTCP packet of {len(srtcp)} octets is too short", "too short")
        ssrc = int.from_bytes(srtcp[4:8], "big")
        try:
            rtcp = self._unprotect_rtcp(srtcp)
        except (pylibsrtp.Error, ValueError) as exc:
            raise self._failure(ssrc, str(exc), rtcp=True) from exc
        stream = self._stream(ssrc)
        stream.rtcp_packets += 1
        stream.rtcp_octets += len(rtcp)
        return rtcp
