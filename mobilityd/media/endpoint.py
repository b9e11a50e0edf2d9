"""A call's media endpoint (asyncio): RTP and RTCP sockets, SRTP on the way out and in,
symmetric RTP, rebinding to a new local address, and the return-routability gate.

* Sockets: RTP on an even port and RTCP on the next one (RFC 3550 §11), or both on one
  port with RTP/RTCP multiplexing (RFC 5761 §4, demultiplexed by the second octet).
* Symmetric RTP (RFC 4961 §3): we send from the very socket we receive on.
* SRTP: ``tx.protect`` / ``tx.protect_rtcp`` before sending, ``rx.unprotect`` /
  ``rx.unprotect_rtcp`` on arrival; a packet failing authentication or the replay check
  is counted, reported (:class:`AuthFailureCounted`) and dropped, never answered
  (RFC 3711 §3.3).
* :meth:`MediaEndpoint.rebind` moves the sockets to a new local IP (same port where free)
  keeping the very same :class:`SrtpSession` objects: same keys, SSRCs, and packet
  indices continue (issue 5 step 1).
* Return routability (issue 5 step 4): where we send changes only when a packet from
  the candidate address passes SRTP/SRTCP authentication after signalling proposed the
  move (:meth:`MediaEndpoint.propose_remote`). Unauthenticated packets never change it;
  authenticated packets from an unproposed address are delivered but do not move it.
* :meth:`MediaEndpoint.announce` (issue 5 media gap): right after a rebind the mover
  sends one SRTCP empty receiver report (RFC 3550 §6.4.2, RC = 0) from its new address,
  so the peer's gate gets its authenticated-packet half at once instead of at our next
  paced frame (SRTCP authenticates like SRTP, RFC 3711 §3.4). The report carries a
  block per source we receive (RFC 3550 §6.4.1, our own §A.3/§A.8 statistics).
* Re-send on switch (issue 5 media gap): when the gate moves where we send, the last
  RTP packet we sent -- the very same SRTP bytes, never protected again, so no (SSRC,
  index) is encrypted twice (RFC 3711 §9.1) -- goes once to the new address, so the
  peer gets our latest frame without waiting for the next tick. Only when the peer
  cannot have it: an authenticated report from the new address (e.g. its
  :meth:`~MediaEndpoint.announce`) says its extended highest sequence number received
  from us is below that packet's. Without such a report nothing is re-sent. When the
  peer left its old address, or reports from another device that never had our
  packets, what it lacks then it can no longer receive and the re-sent packet is new to
  its SRTP replay list (RFC 3711 §3.3.2). In a make-before-break move its old sockets
  still receive (``rebind(keep_old_for=...)``), so the original may arrive there after
  the report was sent and the re-send is then a second copy: the receiver drops a
  byte-identical copy of the last packet it authenticated, from the same source
  address, before SRTP and counts it in ``duplicates``, not ``replays`` (a copy that
  took the other path, or a network duplicate, is no replay attack; SRTP would reject
  it all the same). A copy from any other address is still a counted replay.
* :meth:`MediaEndpoint.resend_last` (issue 6, call transfer): the same re-send on
  request, to where we send now, when signalling knows the new destination cannot
  have that packet -- a device that just took the call over (thesis §15.1) has never
  received our stream, so it gets our latest frame at once instead of at the next
  20 ms tick.
* :meth:`MediaEndpoint.fan_out` (issue 6, thesis §15.1: "transmitted to both of Bob's
  devices while Bob moves"): a copy of every RTP packet -- the same SRTP bytes, one
  protection for two destinations, so no (SSRC, index) is encrypted twice (RFC 3711
  §9.1) -- also goes to a second address until ``fan_out(None)``. RTCP goes only to
  where we send.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import ipaddress
import socket
import struct
import time
from collections.abc import Callable

from mobilityd.media.errors import MediaLocalError, RtcpParseError, SrtpError, SrtpReplayError
from mobilityd.media.events import (
    Address,
    AuthFailureCounted,
    FirstPacketReceived,
    LocalAddressChanged,
    MediaEvent,
    RemoteAddressConfirmed,
)
from mobilityd.media.routability import GateState, ReturnRoutabilityGate, check_address
from mobilityd.media.rtcp import ReceiverReport, SenderReport, parse_compound
from mobilityd.media.rtp import RTCP_MUX_FIRST, RTCP_MUX_LAST, RTP_VERSION
from mobilityd.media.srtp import SrtpSession
from mobilityd.media.stream import ReceptionStats
from mobilityd.media.udp import UdpChannel

_PAIR_ATTEMPTS = 64
#: RTP fixed header (RFC 3550 §5.1) from octet 2: sequence number, timestamp, SSRC
_SEQ_TS_SSRC = struct.Struct("!2xHII")
#: remote sources whose reception statistics an endpoint keeps (one peer, a few SSRCs)
MAX_REPORTED_SOURCES = 8
#: a probe is sent again this long after the first, doubling, at most PROBE_RETRIES
#: times, while no new remote address is confirmed (module doc)
PROBE_RETRY_FIRST = 0.02
PROBE_RETRIES = 3


class EndpointCounters:
    """Packet counters of one endpoint (the SRTP sessions keep per-SSRC ones)."""

    __slots__ = (
        "auth_failures",
        "dropped_no_remote",
        "duplicates",
        "fanned_out",
        "malformed",
        "probes_sent",
        "replays",
        "rtcp_received",
        "rtcp_sent",
        "rtp_received",
        "rtp_resent",
        "rtp_sent",
        "socket_errors",
        "unconfirmed_source",
    )

    def __init__(self) -> None:
        self.rtp_sent = self.rtcp_sent = self.rtp_received = self.rtcp_received = 0
        self.rtp_resent = self.fanned_out = self.probes_sent = 0
        self.auth_failures = self.replays = self.malformed = 0
        self.unconfirmed_source = self.dropped_no_remote = self.socket_errors = 0
        self.duplicates = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@functools.lru_cache(maxsize=256)
def _family(ip: str) -> socket.AddressFamily:
    """The socket family of an IP literal (:class:`MediaLocalError` if it is none).

    Cached: a move asks it several times for the same few addresses (rebind, probe,
    bind), and an ``ipaddress`` parse costs ~10 µs of the move's critical path (issue 5
    media gap). Errors are not cached (``lru_cache`` keeps only returned values)."""
    try:
        version = ipaddress.ip_address(ip).version
    except ValueError as exc:
        raise MediaLocalError(f"{ip!r} is not an IP address") from exc
    return socket.AF_INET6 if version == 6 else socket.AF_INET


@functools.lru_cache(maxsize=256)
def _canonical(ip: str) -> str:
    """An IP literal as ``getsockname`` spells it (RFC 5952 for IPv6); cached. A
    scoped IPv6 literal (``fe80::1%eth0``) is returned as it is."""
    family = _family(ip)
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, ip))
    except OSError:
        return ip


def _bind(ip: str, port: int, netns: str | None = None) -> socket.socket:
    family = _family(ip)
    if netns is None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    else:
        try:
            # pyroute2 is imported only when namespaces are used (it is slow to import)
            pyroute2_netns = importlib.import_module("pyroute2.netns")
            sock = pyroute2_netns.create_socket(
                netns=netns, family=family, socket_type=socket.SOCK_DGRAM, flags=0
            )
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot create a socket in network namespace {netns!r}: {exc}") from exc
    try:
        sock.setblocking(False)
        sock.bind((ip, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_port_pair(
    ip: str, port: int, mux: bool, netns: str | None = None
) -> tuple[socket.socket, socket.socket | None]:
    """Bind RTP (and RTCP on port + 1 unless muxed) on ``ip``, in network namespace
    ``netns`` if given (the sockets then live there while we use them from here).

    ``port`` 0 picks a free even port (RFC 3550 §11); a given port that is taken raises
    OSError.
    """
    if port:
        rtp = _bind(ip, port, netns)
        if mux:
            return rtp, None
        try:
            return rtp, _bind(ip, port + 1, netns)
        except OSError:
            rtp.close()
            raise
    for _ in range(_PAIR_ATTEMPTS):
        rtp = _bind(ip, 0, netns)
        chosen = rtp.getsockname()[1]
        if mux:
            return rtp, None
        if chosen % 2 == 0 and chosen < 65535:
            try:
                return rtp, _bind(ip, chosen + 1, netns)
            except OSError:
                pass
        rtp.close()
    raise MediaLocalError(f"no free even/odd UDP port pair on {ip}")


PairBinder = Callable[[str, bool], tuple[socket.socket, socket.socket | None]]


class MediaEndpoint:
    """RTP/RTCP sockets of one call with SRTP (``tx``/``rx`` None means plain RTP)."""

    def __init__(
        self,
        local_ip: str,
        *,
        tx: SrtpSession | None,
        rx: SrtpSession | None,
        remote_rtp: Address | None = None,
        remote_rtcp: Address | None = None,
        rtcp_mux: bool = False,
        local_port: int = 0,
        on_rtp: Callable[[bytes, Address], None] | None = None,
        on_rtcp: Callable[[bytes, Address], None] | None = None,
        on_event: Callable[[MediaEvent], None] | None = None,
        netns: str | None = None,
    ) -> None:
        _family(local_ip)
        self.netns = netns
        self.tx = tx
        self.rx = rx
        self.rtcp_mux = rtcp_mux
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        self.on_event = on_event
        self.counters = EndpointCounters()
        self._local_ip = local_ip
        self._requested_port = local_port
        self.gate = ReturnRoutabilityGate(rtcp_mux=rtcp_mux)
        #: where :meth:`rebind` binds when our ports are taken on the new address:
        #: ``(ip, mux) -> (rtp, rtcp or None)`` raising OSError when nothing is free
        #: (the call layer's port range); None: an even port of the kernel's choice
        self.rebind_pairs: PairBinder | None = None
        self._rtp_channel: UdpChannel | None = None
        self._rtcp_channel: UdpChannel | None = None
        self._local_rtp: Address | None = None
        self._local_rtcp: Address | None = None
        self._seen_ssrcs: set[int] = set()
        #: our last RTP packet as sent (SRTP: its header is in the clear, RFC 3711 §3.1)
        self._last_sent: bytes | None = None
        self._fan_out: Address | None = None
        self._reception: dict[int, ReceptionStats] = {}
        #: (source, extended highest sequence number it received from us), from the
        #: latest authenticated report from an address we do not send to
        self._candidate_report: tuple[Address, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: remote addresses confirmed by the gate so far (a probe stops at the next one)
        self._confirmations = 0
        self._probe_timer: asyncio.TimerHandle | None = None
        #: the sockets a make-before-break rebind left receiving, and their closing timer
        self._retired: list[UdpChannel] = []
        self._retire_timer: asyncio.TimerHandle | None = None
        #: kept sockets a rebind left behind elsewhere, closed on the next iteration
        self._stale: list[UdpChannel] = []
        #: the last RTP packet that passed SRTP authentication, as received, and whence
        self._last_rtp_in = b""
        self._last_rtp_source: Address | None = None
        #: arrival clock of the reception statistics (read for every packet received):
        #: RFC 3550 §A.8 jitter needs only differences of a monotonic clock, so this is
        #: time.monotonic itself (what asyncio's loop.time() reads, minus a Python call)
        self._clock: Callable[[], float] = time.monotonic
        if remote_rtp is not None:
            self.set_remote(remote_rtp, remote_rtcp)

    # -- addresses -----------------------------------------------------------------------

    @property
    def local_rtp(self) -> Address:
        if self._local_rtp is None:
            raise MediaLocalError("endpoint is not open")
        return self._local_rtp

    @property
    def local_rtcp(self) -> Address:
        if self._local_rtcp is None:
            raise MediaLocalError("endpoint is not open")
        return self._local_rtcp

    @property
    def remote_rtp(self) -> Address | None:
        return self.gate.remote_rtp

    @property
    def remote_rtcp(self) -> Address | None:
        return self.gate.remote_rtcp

    @property
    def pending_remote(self) -> Address | None:
        """The proposed remote RTP address still waiting for an authenticated packet."""
        return None if self.gate.proposal is None else self.gate.proposal.rtp

    @property
    def proof_lifetime(self) -> float:
        return self.gate.proof_lifetime

    @proof_lifetime.setter
    def proof_lifetime(self, seconds: float) -> None:
        self.gate.proof_lifetime = seconds

    @property
    def fan_out_rtp(self) -> Address | None:
        """Where a copy of every RTP packet also goes (:meth:`fan_out`), or None."""
        return self._fan_out

    def fan_out(self, rtp: Address | None) -> None:
        """Also send every RTP packet, the very same SRTP bytes, to ``rtp`` (None: stop).

        For a call transfer (thesis §15.1): the correspondent's stream goes to the new
        device (where we send) and, until the old one has hung up, to the old one too.
        The copy is not protected again, so both receive the same (SSRC, index) under
        the same key once (RFC 3711 §9.1); each has its own replay list. A copy to
        where we send anyway is not sent. Signalling decides the address, as for
        :meth:`set_remote`."""
        if rtp is not None:
            _family(rtp[0])
        self._fan_out = rtp

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Set where we send, from the initial offer/answer (signalling-trusted)."""
        self.gate.set_remote(rtp, rtcp)

    def propose_remote(
        self, rtp: Address | None, rtcp: Address | None = None, *, any_source: bool = False
    ) -> None:
        """A verified move (e.g. MIKEY update, RFC 3830 §4.5) says the peer now lives at
        ``rtp``/``rtcp``: see :class:`ReturnRoutabilityGate` (sending changes only after
        an authenticated packet from the candidate, in either order; with ``any_source``
        the SDP address is only a hint and the authenticated source decides)."""
        events = self.gate.propose(rtp, rtcp, any_source=any_source, now=self._now())
        self._switched(events)
        for event in events:
            self._emit(event)
        if self.gate.state is GateState.UPDATE_SEEN:
            self._take_queued()

    def _take_queued(self) -> None:
        """Handle the packets already queued on our sockets now, RTCP first (issue 5
        media gap): when the mover's proof from its new address (its SRTCP announce,
        or RTP) arrived while we were verifying its update -- the announce delayed on
        its way, or sent after the re-INVITE -- waiting for the next loop iteration
        would put the 2xx's encoding and transmission in front of the switch. Each
        packet goes through the very same path as from the loop (SRTP/SRTCP
        authentication and replay check, RFC 3711 §3.3-3.4, then the gate); nothing
        else changes. Costs nothing when the proof came first (the gate has switched
        already and nothing waits)."""
        for channel in (self._rtcp_channel, self._rtp_channel):
            if channel is not None and self.gate.state is GateState.UPDATE_SEEN:
                channel.drain()

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Bind the sockets (RTP even port + RTCP next, or one muxed port)."""
        if self._rtp_channel is not None:
            raise MediaLocalError("endpoint already open")
        self._loop = asyncio.get_running_loop()
        try:
            rtp_sock, rtcp_sock = bind_port_pair(
                self._local_ip, self._requested_port, self.rtcp_mux, self.netns
            )
        except OSError as exc:
            raise MediaLocalError(
                f"cannot bind {self._local_ip}:{self._requested_port}: {exc}"
            ) from exc
        self._attach(rtp_sock, rtcp_sock)

    def _attach(self, rtp_sock: socket.socket, rtcp_sock: socket.socket | None) -> None:
        loop = asyncio.get_running_loop()
        self._rtp_channel = UdpChannel(loop, rtp_sock, self._rtp_in, self._socket_error)
        self._rtcp_channel = None
        if rtcp_sock is not None:
            self._rtcp_channel = UdpChannel(loop, rtcp_sock, self._rtcp_in, self._socket_error)
        self._local_rtp = self._rtp_channel.local
        self._local_rtcp = (
            self._local_rtp if self._rtcp_channel is None else self._rtcp_channel.local
        )

    async def rebind(self, new_local_ip: str, *, keep_old_for: float = 0.0) -> None:
        """Move both sockets to ``new_local_ip``, same ports where free (else
        :attr:`rebind_pairs` chooses); the SRTP sessions (and so keys, SSRCs, ROC and
        indices) are kept as they are. Rebinding to the address we are on already
        changes nothing.

        ``keep_old_for`` > 0 (make-before-break, issue 5): the old sockets keep
        *receiving* for that many seconds (we send only from the new ones), so what
        the peer still sends to our old address while it verifies the move and waits
        for our proof (RFC 3830 §4.5 update, return-routability gate) is not lost when
        that address still works -- e.g. Wi-Fi -> Ethernet with both up. Every packet
        they receive goes through the same SRTP/SRTCP authentication and replay check
        (RFC 3711 §3.3-3.4) as on the new ones.

        Moving back to an address whose sockets are still kept (e.g. Ethernet unplugged
        soon after it was plugged in) takes those very sockets up again -- same
        ports, nothing bound, nothing lost that was queued on them -- instead of
        closing and binding anew (~0.4 ms of a move's critical path on a busy machine,
        issue 5 media gap). Kept sockets on another address are closed right after
        the move (off its path), at the next rebind or at :meth:`close` at the latest."""
        if self._rtp_channel is None or self._local_rtp is None:
            raise MediaLocalError("rebind() before open()")
        if not 0.0 <= keep_old_for < float("inf"):
            raise MediaLocalError(f"keep_old_for must be >= 0 s, got {keep_old_for!r}")
        _family(new_local_ip)
        previous = self._local_rtp
        if new_local_ip == self._local_ip:
            return  # already there: keep the sockets (and their ports) as they are
        old = [c for c in (self._rtp_channel, self._rtcp_channel) if c is not None]
        kept = self._kept_on(new_local_ip)
        if kept is not None:
            self._take_up(*kept)
        else:
            self._bind_anew(new_local_ip, previous[1])
        self._local_ip = new_local_ip
        self._retire(old, keep_old_for)
        self._emit(LocalAddressChanged(previous, self.local_rtp, self.local_rtcp))

    def _kept_on(self, ip: str) -> tuple[UdpChannel, UdpChannel | None] | None:
        """The kept (make-before-break) RTP and RTCP channels bound on ``ip``, if any."""
        retired = self._retired
        if len(retired) != (1 if self.rtcp_mux else 2) or retired[0].local[0] != _canonical(ip):
            return None
        if any(channel.closed for channel in retired):
            return None
        return retired[0], (None if self.rtcp_mux else retired[1])

    def _take_up(self, rtp: UdpChannel, rtcp: UdpChannel | None) -> None:
        """Send (and go on receiving) through kept channels: they are ours again."""
        self._cancel_retire_timer()
        self._retired = []
        self._rtp_channel, self._rtcp_channel = rtp, rtcp
        self._local_rtp = rtp.local
        self._local_rtcp = rtp.local if rtcp is None else rtcp.local

    def _bind_anew(self, ip: str, port: int) -> None:
        """New sockets on ``ip``: ``port`` (and port + 1) where free, else
        :attr:`rebind_pairs` or any even port."""
        self._cancel_retire_timer()
        stale, self._retired = self._retired, []
        here = _canonical(ip)
        for channel in stale:
            if channel.local[0] == here:
                channel.close()  # it may hold our ports on ``ip``
        # kept sockets elsewhere do not: closed after the move, off its path
        self._close_later([c for c in stale if not c.closed])
        try:
            rtp_sock, rtcp_sock = bind_port_pair(ip, port, self.rtcp_mux, self.netns)
        except OSError:
            try:
                if self.rebind_pairs is not None:
                    rtp_sock, rtcp_sock = self.rebind_pairs(ip, self.rtcp_mux)
                else:
                    rtp_sock, rtcp_sock = bind_port_pair(ip, 0, self.rtcp_mux, self.netns)
            except OSError as exc:
                raise MediaLocalError(f"cannot bind on {ip}: {exc}") from exc
        self._attach(rtp_sock, rtcp_sock)

    def _retire(self, old: list[UdpChannel], keep_old_for: float) -> None:
        """The channels a rebind left: kept receiving ``keep_old_for`` s, or closed."""
        if keep_old_for > 0 and self._loop is not None:
            self._retired = old
            self._retire_timer = self._loop.call_later(keep_old_for, self._close_retired)
        else:
            for channel in old:
                channel.close()

    def _close_later(self, channels: list[UdpChannel]) -> None:
        """Close ``channels`` on the loop's next iteration (now without a loop); until
        then :meth:`close` closes them too."""
        if not channels:
            return
        if self._loop is None:
            for channel in channels:
                channel.close()
            return
        self._stale += channels
        self._loop.call_soon(self._close_stale)

    def _close_stale(self) -> None:
        stale, self._stale = self._stale, []
        for channel in stale:
            channel.close()

    def _cancel_retire_timer(self) -> None:
        if self._retire_timer is not None:
            self._retire_timer.cancel()
            self._retire_timer = None

    @property
    def retired_addresses(self) -> list[Address]:
        """Where the sockets a make-before-break rebind kept receiving are bound."""
        return [c.local for c in self._retired]

    def _close_retired(self) -> None:
        self._cancel_retire_timer()
        retired, self._retired = self._retired, []
        for channel in retired:
            channel.close()

    def close(self) -> None:
        self._stop_probing()
        self._close_retired()
        self._close_stale()
        for channel in (self._rtp_channel, self._rtcp_channel):
            if channel is not None:
                channel.close()
        self._rtp_channel = self._rtcp_channel = None

    # -- sending ---------------------------------------------------------------------------

    def send_rtp(self, rtp: bytes) -> bool:
        """Protect (if SRTP) and send one RTP packet to the confirmed remote.

        Returns False (and counts) when no remote is known yet.
        """
        channel = self._rtp_channel
        if channel is None:
            raise MediaLocalError("send_rtp() on a closed endpoint")
        remote = self.gate.remote_rtp
        if remote is None:
            self.counters.dropped_no_remote += 1
            return False
        data = self.tx.protect(rtp) if self.tx is not None else rtp
        if len(data) >= 12:  # kept for announce() and the re-send on a switch
            self._last_sent = data
        if self._fan_out is not None:  # rarely: only while a call moves
            self._copy(channel, data, remote)
        if channel.sendto(data, remote):
            self.counters.rtp_sent += 1
            return True
        return False

    def send_protected_rtp(self, srtp: bytes) -> bool:
        """Send an already protected packet (the paced sender protects itself)."""
        channel = self._rtp_channel
        if channel is None:
            raise MediaLocalError("send on a closed endpoint")
        remote = self.gate.remote_rtp
        if remote is None:
            self.counters.dropped_no_remote += 1
            return False
        if len(srtp) >= 12:  # kept for announce() and the re-send on a switch
            self._last_sent = srtp
        if self._fan_out is not None:
            self._copy(channel, srtp, remote)
        if channel.sendto(srtp, remote):
            self.counters.rtp_sent += 1
            return True
        return False

    def send_rtcp(self, rtcp: bytes) -> bool:
        """Protect (SRTCP) and send one compound RTCP packet (muxed or on the RTCP port)."""
        channel = self._rtcp_channel or self._rtp_channel
        if channel is None:
            raise MediaLocalError("send_rtcp() on a closed endpoint")
        remote = self.gate.remote_rtcp
        if remote is None:
            self.counters.dropped_no_remote += 1
            return False
        data = self.tx.protect_rtcp(rtcp) if self.tx is not None else rtcp
        if channel.sendto(data, remote):
            self.counters.rtcp_sent += 1
            return True
        return False

    def announce(self) -> bool:
        """Send one empty receiver report (RFC 3550 §6.4.2: RC = 0, our SSRC) through
        SRTCP from where we are now, e.g. right after :meth:`rebind`: the peer's
        return-routability gate takes an authenticated SRTCP packet as proof of the
        new address (RFC 3711 §3.4) without waiting for our next paced RTP frame.

        The SSRC is the one of our last RTP packet (the SRTP header is in the clear,
        RFC 3711 §3.1), so SRTCP uses the stream that already exists; the SRTCP index
        comes from the session as for every report (never reused). Returns False when
        we have not sent RTP yet or no remote is known (nothing is sent then).
        """
        report = self._empty_report()
        if report is None or self.gate.remote_rtcp is None:
            return False
        return self.send_rtcp(report)

    def probe(self, rtp: Address, rtcp: Address | None = None) -> bool:
        """Send the :meth:`announce` report through SRTCP from where we are now to a
        verified move's addresses -- ``rtcp``, else next to ``rtp`` (RFC 5761 mux or
        port + 1, RFC 3550 §11) -- without sending our stream there; again after
        :data:`PROBE_RETRY_FIRST`, doubling, :data:`PROBE_RETRIES` times at most while
        the gate confirms no new remote address (module doc: both ends moving at once).

        Call it right after :meth:`propose_remote` for a move that verified (RFC 3830
        §4.5). Nothing is sent (False) unless the gate holds that move unconfirmed
        (:attr:`GateState.UPDATE_SEEN <mobilityd.media.routability.GateState>`: when
        authenticated media from the peer's new address came first, the gate has
        switched already and no one waits), nor when that is where we send RTCP
        already, when the address is of the other IP version than our socket, or
        before our first RTP packet (no SSRC yet). A newer probe replaces a running
        one. Raises :class:`MediaLocalError` for an address
        that is not (IP literal, port)."""
        check_address(rtp, "probed RTP")
        target = check_address(rtcp, "probed RTCP") if rtcp is not None \
            else self.gate.default_rtcp(rtp)
        self._stop_probing()
        if (self._rtp_channel is None or self.gate.state is not GateState.UPDATE_SEEN
                or target == self.gate.remote_rtcp
                or _family(target[0]) != _family(self._local_ip)
                or self._sent_ssrc is None):
            return False
        sent = self._send_probe(target)
        if self._loop is not None:
            self._probe_timer = self._loop.call_later(
                PROBE_RETRY_FIRST, self._reprobe, target, self._confirmations,
                PROBE_RETRIES - 1, PROBE_RETRY_FIRST * 2)
        return sent

    def _reprobe(self, target: Address, confirmations: int, left: int, delay: float) -> None:
        self._probe_timer = None
        if (self._confirmations != confirmations or self._rtp_channel is None
                or self.gate.state is not GateState.UPDATE_SEEN):
            return  # confirmed, the move went stale, or we closed: done
        self._send_probe(target)
        if left > 0 and self._loop is not None:
            self._probe_timer = self._loop.call_later(
                delay, self._reprobe, target, confirmations, left - 1, delay * 2)

    def _send_probe(self, target: Address) -> bool:
        channel = self._rtcp_channel or self._rtp_channel
        report = self._empty_report()
        if channel is None or report is None:
            return False
        data = self.tx.protect_rtcp(report) if self.tx is not None else report
        if not channel.sendto(data, target):
            return False
        self.counters.rtcp_sent += 1
        self.counters.probes_sent += 1
        return True

    def _stop_probing(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    def _empty_report(self) -> bytes | None:
        """A receiver report with our SSRC and a block per source we receive
        (RFC 3550 §6.4.2), or None before our first RTP packet."""
        ssrc = self._sent_ssrc
        if ssrc is None:
            return None
        blocks = tuple(stats.report_block() for stats in self._reception.values())
        return bytes(ReceiverReport(ssrc, blocks))

    def resend_last(self) -> bool:
        """Send our last RTP packet once more, the very same SRTP bytes (never protected
        again, so no (SSRC, index) is encrypted twice, RFC 3711 §9.1), to where we send
        now. For a destination that cannot have it (a device that has just taken the
        call over: new to its replay list, RFC 3711 §3.3.2); sent to a receiver that has
        it, it is only a counted replay there. Returns False when nothing was sent (no
        packet sent yet, no remote, closed endpoint, socket error)."""
        last, channel, remote = self._last_sent, self._rtp_channel, self.gate.remote_rtp
        if last is None or channel is None or remote is None:
            return False
        if not channel.sendto(last, remote):
            return False
        self.counters.rtp_resent += 1
        return True

    def _copy(self, channel: UdpChannel, packet: bytes, remote: Address) -> None:
        copy_to = self._fan_out
        if copy_to is not None and copy_to != remote and channel.sendto(packet, copy_to):
            self.counters.fanned_out += 1

    @property
    def _sent_ssrc(self) -> int | None:
        """SSRC of our last RTP packet (read when needed, not on every send)."""
        last = self._last_sent
        return None if last is None else int.from_bytes(last[8:12], "big")

    def _switched(self, events: list[MediaEvent]) -> None:
        """After the gate moved where we send: re-send our last packet there when the
        new address's report proves the peer never got it (module docstring)."""
        confirmed = [e for e in events if isinstance(e, RemoteAddressConfirmed)]
        if not confirmed:
            return
        self._confirmations += 1
        report, self._candidate_report = self._candidate_report, None
        last, channel = self._last_sent, self._rtp_channel
        if report is None or last is None or channel is None:
            return
        new = confirmed[-1]
        if new.previous in (None, new.rtp) or report[0] != new.rtcp:
            return
        ahead = (int.from_bytes(last[2:4], "big") - report[1]) & 0xFFFF
        if 0 < ahead < 0x8000 and channel.sendto(last, new.rtp):
            self.counters.rtp_resent += 1

    def _note_report(self, plain: bytes, source: Address) -> None:
        """Remember what an authenticated report from ``source`` (not where we send)
        says it received from us (RFC 3550 §6.4.1 extended highest sequence number)."""
        ssrc = self._sent_ssrc
        if ssrc is None:
            return
        try:
            packets = parse_compound(plain)
        except RtcpParseError:
            return  # the call's RTCP accounting counts it; the gate still sees the packet
        for packet in packets:
            if isinstance(packet, (ReceiverReport, SenderReport)):
                for block in packet.reports:
                    if block.ssrc == ssrc:
                        self._candidate_report = (source, block.highest_sequence & 0xFFFF)

    def _socket_error(self, exc: OSError) -> None:
        self.counters.socket_errors += 1

    # -- receiving -------------------------------------------------------------------------

    def _rtp_in(self, data: bytes, source: Address) -> None:
        """Every RTP packet of the call (the per-packet path: kept lean on purpose)."""
        if self.rtcp_mux and len(data) > 1 and RTCP_MUX_FIRST <= data[1] <= RTCP_MUX_LAST:
            self._rtcp_in(data, source)
            return
        rx = self.rx
        if rx is not None:
            if data == self._last_rtp_in and source == self._last_rtp_source:
                self.counters.duplicates += 1  # a re-send's second copy (module doc)
                return
            try:
                plain, sequence, timestamp, ssrc = rx.unprotect_fields(data)
            except SrtpError as exc:
                self._rejected(exc, source, rtcp=False)
                return
            self._last_rtp_in, self._last_rtp_source = data, source
        else:
            if len(data) < 12 or data[0] >> 6 != RTP_VERSION:
                self.counters.malformed += 1
                return
            plain = data
            sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(plain)
        self.counters.rtp_received += 1
        stats = self._reception.get(ssrc)
        if stats is None:
            stats = self._new_source(ssrc, source)
        if stats is not None:
            stats.update(sequence, timestamp, self._clock())
        if source != self.gate.remote_rtp:
            self._authenticated_from(source, rtcp=False)
        if self.on_rtp is not None:
            self.on_rtp(plain, source)

    def _new_source(self, ssrc: int, source: Address) -> ReceptionStats | None:
        """A packet from an SSRC without reception statistics: the first of a new source
        (:class:`FirstPacketReceived`), and statistics for it while there is room."""
        if ssrc not in self._seen_ssrcs:
            self._seen_ssrcs.add(ssrc)
            self._emit(FirstPacketReceived(ssrc, source, self._now()))
        if len(self._reception) >= MAX_REPORTED_SOURCES:
            return None
        stats = self._reception[ssrc] = ReceptionStats(ssrc)
        return stats

    def _rtcp_in(self, data: bytes, source: Address) -> None:
        rx = self.rx
        if rx is not None:
            try:
                plain = rx.unprotect_rtcp(data)
            except SrtpError as exc:
                self._rejected(exc, source, rtcp=True)
                return
        else:
            if len(data) < 8 or data[0] >> 6 != RTP_VERSION:
                self.counters.malformed += 1
                return
            plain = data
        self.counters.rtcp_received += 1
        if source != self.gate.remote_rtcp:
            self._note_report(plain, source)
            self._authenticated_from(source, rtcp=True)
        if self.on_rtcp is not None:
            self.on_rtcp(plain, source)

    def _rejected(self, exc: SrtpError, source: Address, *, rtcp: bool) -> None:
        """Count a dropped packet (RFC 3711 §3.3: never answered). The event is emitted
        for the 1st, 2nd, 4th, 8th ... failure only, so a flood of forged packets cannot
        flood whoever listens (the counters stay exact)."""
        if isinstance(exc, SrtpReplayError):
            self.counters.replays += 1
        elif exc.reason == "authentication failure":
            self.counters.auth_failures += 1
        else:
            self.counters.malformed += 1
        total = self.counters.auth_failures + self.counters.replays + self.counters.malformed
        if total & (total - 1) == 0:
            self._emit(AuthFailureCounted(source, rtcp, exc.reason or str(exc), total))

    def _authenticated_from(self, source: Address, *, rtcp: bool) -> None:
        """An authenticated packet from ``source``, which is not where we send."""
        events = self.gate.authenticated(source, rtcp=rtcp, now=self._now())
        if not events or not isinstance(events[0], RemoteAddressConfirmed):
            self.counters.unconfirmed_source += 1
        else:
            self._switched(events)
        for event in events:
            self._emit(event)

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _emit(self, event: MediaEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)
