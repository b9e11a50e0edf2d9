"""Media port pairs from the configured range (``[media] rtp_port_min..rtp_port_max``).

RTP goes on an even port and RTCP on the next odd one (RFC 3550 §11); a stream whose
RTCP ends up muxed (RFC 5761) still holds the pair while the offer is open, because
the offer names both ports before the answer says whether RTCP is muxed (RFC 3264 §5.1).

:meth:`MediaPortRange.reserve` binds the first free pair of the range, scanning from the
lowest even port: the kernel's ``bind()`` says which ports are in use (by our calls or by
anything else on the host), and a pair freed by an ended call is taken again by the next
one. A range without a free pair raises :class:`MediaPortsExhausted`, a
:class:`~mobilityd.call.errors.CallUsageError` that names the range: an incoming INVITE
gets 503 with it in a ``Warning`` (RFC 3261 §21.5.4, §20.43), an outgoing call is not
placed.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from mobilityd.call.errors import CallUsageError
from mobilityd.call.sdpmedia import MediaPort
from mobilityd.media.endpoint import bind_port_pair

__all__ = [
    "DEFAULT_PORT_RANGE",
    "MediaPortRange",
    "MediaPortsExhausted",
    "PortReservation",
    "range_binder",
]

#: ports that ``bind()`` may refuse because something holds them (skipped, not fatal)
_IN_USE = (errno.EADDRINUSE, errno.EACCES)


class MediaPortsExhausted(CallUsageError):
    """No free RTP/RTCP pair is left in the range (module docstring)."""

    def __init__(self, port_range: MediaPortRange, ip: str) -> None:
        super().__init__(f"no free RTP/RTCP port pair in the media range {port_range} on {ip}")
        self.port_range = port_range
        self.ip = ip


class PortReservation:
    """An RTP/RTCP port pair held (bound) until the call's media opens on it or ends
    (RFC 3264 §5.1: the ports of an offer are ours from the moment it is sent)."""

    def __init__(self, ip: str, rtp: socket.socket, rtcp: socket.socket | None) -> None:
        self.ip = ip
        self._sockets = [s for s in (rtp, rtcp) if s is not None]
        self.port = MediaPort(ip, rtp.getsockname()[1],
                              rtcp.getsockname()[1] if rtcp is not None else None)

    @property
    def held(self) -> bool:
        return bool(self._sockets)

    def release(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []


@dataclass(frozen=True)
class MediaPortRange:
    """Even ``low`` .. ``high`` inclusive: the pairs (low, low+1), (low+2, low+3) ... whose
    RTCP port is still ``<= high`` (RFC 3550 §11). ``high`` may be odd or even."""

    low: int = 16384
    high: int = 16483

    def __post_init__(self) -> None:
        if self.low % 2 or not 1024 <= self.low < self.high <= 65535:
            raise ValueError(f"bad media port range {self.low}-{self.high}: the first port "
                             f"must be even and 1024 <= first < last <= 65535")

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def pairs(self) -> int:
        """How many RTP/RTCP pairs fit."""
        return (self.high - self.low + 1) // 2

    def rtp_ports(self) -> range:
        """The even RTP ports, lowest first."""
        return range(self.low, self.low + 2 * self.pairs, 2)

    def contains(self, rtp_port: int) -> bool:
        return rtp_port in self.rtp_ports()

    def reserve(self, ip: str, netns: str | None = None) -> PortReservation:
        """Bind the lowest free pair on ``ip`` (module docstring)."""
        rtp, rtcp = self.bind_pair(ip, False, netns)
        return PortReservation(ip, rtp, rtcp)

    def bind_pair(self, ip: str, mux: bool, netns: str | None = None
                  ) -> tuple[socket.socket, socket.socket | None]:
        """The sockets of the lowest free pair on ``ip`` (RTP only when ``mux``: RFC 5761,
        still on an even port of the range); :class:`MediaPortsExhausted` when none is
        free. The signature of :func:`mobilityd.media.endpoint.bind_port_pair` without
        the port, for an endpoint that must move to another address (roaming) where its
        ports are taken."""
        for port in self.rtp_ports():
            try:
                return bind_port_pair(ip, port, mux, netns)
            except OSError as exc:
                if exc.errno in _IN_USE:
                    continue
                raise
        raise MediaPortsExhausted(self, ip)

    def reserve_many(self, ip: str, count: int,
                     netns: str | None = None) -> list[PortReservation]:
        """``count`` pairs, or none at all (what was taken is released on failure)."""
        reservations: list[PortReservation] = []
        try:
            for _ in range(count):
                reservations.append(self.reserve(ip, netns))
        except BaseException:
            for reservation in reservations:
                reservation.release()
            raise
        return reservations


def range_binder(port_range: MediaPortRange, netns: str | None = None
                 ) -> Callable[[str, bool], tuple[socket.socket, socket.socket | None]]:
    """``MediaEndpoint.rebind_pairs`` for ``port_range``: a roaming call whose ports are
    taken on its new address moves to the lowest free pair of the range there; a full
    range is an OSError (EADDRINUSE) naming it, which the endpoint reports."""

    def bind(ip: str, mux: bool) -> tuple[socket.socket, socket.socket | None]:
        try:
            return port_range.bind_pair(ip, mux, netns)
        except MediaPortsExhausted as exc:
            raise OSError(errno.EADDRINUSE, str(exc)) from exc

    return bind


DEFAULT_PORT_RANGE = MediaPortRange()
