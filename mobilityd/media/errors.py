"""Typed errors of the media layer.

Two families, following the house style: :class:`MediaRemoteError` means the peer (or
the network) sent something we cannot accept -- the packet is dropped and counted,
never answered (RFC 3711 §3.3: a packet failing authentication is discarded);
:class:`MediaLocalError` means our own caller misused the API.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of every error raised by :mod:`mobilityd.media`."""


class MediaRemoteError(MediaError):
    """Input from the network could not be accepted (drop and count it)."""


class MediaLocalError(MediaError):
    """The caller misused the API (bad argument, wrong state)."""


class RtpParseError(MediaRemoteError):
    """An RTP packet is malformed (RFC 3550 §5.1, §A.1 validity checks)."""


class RtcpParseError(MediaRemoteError):
    """An RTCP packet or compound packet is malformed (RFC 3550 §6.1, §A.2)."""


class SrtpError(MediaRemoteError):
    """libsrtp refused a packet; ``reason`` is libsrtp's own text."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class SrtpAuthError(SrtpError):
    """The authentication tag did not verify (RFC 3711 §3.3 step 5, §3.4)."""


class SrtpReplayError(SrtpError):
    """The packet index was already seen or is too old (RFC 3711 §3.3.2)."""


class SrtpConfigError(MediaLocalError):
    """Bad key material, suite or stream setup given to the SRTP layer."""


class SrtpIndexReuseError(MediaLocalError):
    """We were asked to encrypt an (SSRC, index) pair again (RFC 3711 §9.1 two-time pad)."""


class RocShimError(MediaLocalError):
    """The installed pylibsrtp does not have the internals the ROC shim relies on."""


class G711Error(MediaLocalError):
    """Bad PCM input for the G.711 encoder (ITU-T G.711)."""


class WavFormatError(MediaError):
    """A WAV file is not 8 kHz-compatible 16-bit mono PCM or is unreadable."""
