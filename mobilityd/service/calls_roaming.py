"""The daemon's call manager with roaming: real calls that follow the network.

:class:`RoamingCallManager` extends :class:`mobilityd.call.manager.AgentCallManager`:

* every connected secure call gets a :class:`~mobilityd.mobility.roaming.RoamingCall`
  (same SIP endpoint, same :class:`MediaEndpoint`, so the same SRTP sessions) and a
  :class:`~mobilityd.mobility.roaming.CallMover`; a
  :class:`~mobilityd.mobility.pathmonitor.PathMonitor` (netlink + route lookups) decides
  when the call must move and the :class:`~mobilityd.mobility.roaming.Roamer` moves it
  (rebind media, rebind SIP, re-INVITE carrying the RFC 3830 §4.5 update message);
* a re-INVITE from the peer is accepted only after
  :func:`~mobilityd.mobility.peer.verify_move` (RFC 3830 §4.5 / §5.4: same TGK and CSB,
  fresh timestamp, valid MAC or signature); a refusal answers 488 and publishes
  ``security-failed``; a session refresh (no change, RFC 4028) is accepted as is;
* each move publishes ``call-moved`` with the *measured* media gap: the time from the
  start of the move until the first authenticated packet is received again;
* per call, a 20 ms sampler records packets received per 20 ms (wall-clock aligned bins)
  for ``status`` and the demo's media timeline, and the call object carries the SRTP
  proof that the context never changed (SSRCs, first/last packet index, ROC, whether the
  session objects are the ones keyed at call set-up).

Transfer between devices (``move`` / ``pull``) stays ``not-available`` here until the
transfer engines (:mod:`mobilityd.mobility.transfer`) are wired into the call agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from mobilityd.call.agent import CallAgent, ReinviteDecision
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent, CallRefused, CallTerminated
from mobilityd.call.manager import AgentCallManager, call_object
from mobilityd.call.secure_call import CallState, SecureCall
from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.events import CallPathChanged
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.mobility.peer import MoveRefused, verify_move
from mobilityd.mobility.roaming import CallMover, Roamer, RoamingCall
from mobilityd.net.preferences import SourcePreferences
from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config
from mobilityd.service.events import CallMoved, SecurityFailed
from mobilityd.service.logging import log_event
from mobilityd.sip.errors import SipError
from mobilityd.sip.message import Request
from mobilityd.sip.sdp import SessionDescription

__all__ = ["TIMELINE_BIN", "TIMELINE_BINS", "MoveRecord", "RoamingCallManager"]

_log = logging.getLogger("mobilityd.roaming")
TIMELINE_BIN = 0.020
"""Width of one media timeline bin: one G.711 frame (RFC 3551 §4.5.14, 20 ms ptime)."""
TIMELINE_BINS = 6000
"""Bins kept per call (two minutes)."""
GAP_LIMIT = 10.0
"""A move whose media has not come back after this long is reported with this gap."""


@dataclass
class MoveRecord:
    """One move of a call: when, from where to where, and the measured gap."""

    at: float
    old_address: str
    new_address: str
    gap_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "old_address": self.old_address,
                "new_address": self.new_address,
                "gap_ms": None if self.gap_ms is None else round(self.gap_ms, 1)}


@dataclass(eq=False)
class _Tracked:
    """What the manager keeps per connected call."""

    call: SecureCall
    roaming: RoamingCall | None
    mover: CallMover | None
    session_ids: tuple[int, int]
    moves: list[MoveRecord] = field(default_factory=list)
    timeline_start: float = 0.0
    timeline: list[int] = field(default_factory=list)
    sampler: asyncio.Task[None] | None = None
    last_rx_at: float = 0.0  # wall clock of the last sample that saw new packets


def _received(call: SecureCall) -> int:
    media, negotiated = call.media, call.negotiated
    if media is None:
        return 0
    if media.rx is not None and negotiated is not None and negotiated.remote_ssrc is not None:
        return media.rx.counters(negotiated.remote_ssrc).packets
    return media.counters.rtp_received


def srtp_proof(call: SecureCall, session_ids: tuple[int, int]) -> dict[str, Any]:
    """Evidence that the SRTP context never changed (RFC 3711 §3.2): the same session
    objects keyed at set-up, the SSRCs, and the packet indices (ROC << 16 | SEQ, §3.3.1)
    running on from the first packet."""
    media, negotiated = call.media, call.negotiated
    if media is None or negotiated is None or media.tx is None or media.rx is None:
        return {}
    tx = media.tx.counters(negotiated.local_ssrc)
    rx = (media.rx.counters(negotiated.remote_ssrc)
          if negotiated.remote_ssrc is not None else None)
    return {
        "same_sessions": (id(media.tx), id(media.rx)) == session_ids,
        "tx": {"ssrc": negotiated.local_ssrc, "first_index": tx.first_index,
               "last_index": tx.last_index, "roc": tx.roc, "packets": tx.packets},
        "rx": None if rx is None else {
            "ssrc": rx.ssrc, "first_index": rx.first_index, "last_index": rx.last_index,
            "roc": rx.roc, "packets": rx.packets, "auth_failures": rx.auth_failures,
            "replays": rx.replays},
    }


class _MovePolicy:
    """The agent's re-INVITE policy: verify a move before accepting it (module doc)."""

    def __init__(self, manager: RoamingCallManager) -> None:
        self._manager = manager

    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision:
        del agent
        tracked = self._manager.tracked.get(call.call_id)
        if tracked is not None:
            self._manager.attach_roaming(tracked)
        roaming = tracked.roaming if tracked is not None else None
        if roaming is None:
            log_event(_log, logging.WARNING, "call.move_refused", call=call.call_id,
                      reason="not a secure call: nothing authenticates the move")
            return ReinviteDecision(False, reason="not a secure call")
        body = request.body
        log_event(_log, logging.DEBUG, "call.reinvite_received", call=call.call_id,
                  body=body.decode(errors="replace"))
        if not body or (roaming.remote_sdp is not None and body == bytes(roaming.remote_sdp)):
            return ReinviteDecision(True, body=bytes(roaming.local_sdp))  # refresh
        try:
            verified = verify_move(body, roaming.context, time.time(),
                                   previous=roaming.remote_sdp)
        except MoveRefused as refused:
            self._manager.move_refused(call, refused)
            return ReinviteDecision(False, status=refused.status, reason=refused.reason)
        roaming.context, roaming.remote_sdp = verified.context, verified.sdp
        # RFC 3830 §4.5 verified: media may now follow the first authenticated new source
        roaming.media.propose_remote(None, any_source=True)
        self._manager.peer_moved(call)
        return ReinviteDecision(True, body=bytes(roaming.local_sdp))


class RoamingCallManager(AgentCallManager):
    """:class:`AgentCallManager` plus roaming, move verification and media metrics."""

    def __init__(self, config: Config, bus: EventBus, *, netns: str | None = None,
                 tone_hz: float | None = None) -> None:
        super().__init__(config, bus)
        self._tone_hz = tone_hz
        self.tracked: dict[str, _Tracked] = {}
        self._netns = netns
        self._monitor: PathMonitor | None = None
        self._roamer_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.roaming_problem: str | None = None

    async def start(self) -> None:
        await super().start()
        agent = self.agent
        if agent is None:
            return
        if self._tone_hz is not None:
            agent.config = replace(agent.config, audio=AudioOptions(tone_hz=self._tone_hz))
        agent.reinvite_policy = _MovePolicy(self)
        agent.add_listener(self._on_call_event)
        mobility = self._config.mobility
        monitor = PathMonitor(
            netns=self._netns, grace_period=mobility.grace_period,
            hold_down=mobility.hold_down,
            preferences=SourcePreferences(prefer=mobility.interface_preference,
                                          avoid=mobility.interface_avoid))
        try:
            await monitor.start()
        except Exception as exc:  # no netlink: calls still work, they just cannot roam
            self.roaming_problem = f"network monitor unavailable: {exc}"
            log_event(_log, logging.ERROR, "roaming.unavailable", error=str(exc))
            return
        self._monitor = monitor
        roamer = Roamer(monitor, on_decision=self._on_decision)
        self._roamer = roamer
        self._roamer_task = asyncio.create_task(self._run_roamer(roamer), name="roamer")

    async def _run_roamer(self, roamer: Roamer) -> None:
        while True:
            try:
                await roamer.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed move must not stop roaming for the others
                _log.exception("roaming decision failed")

    async def close(self) -> None:
        for task in [self._roamer_task, *self._tasks,
                     *(t.sampler for t in self.tracked.values())]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._monitor is not None:
            self._monitor.close()
        await super().close()

    # -- call life cycle ------------------------------------------------------------------

    def _on_call_event(self, event: CallEvent) -> None:
        self._log_call_event(event)
        if isinstance(event, CallConnected):
            self._track(event.call_id)
        elif isinstance(event, CallTerminated | CallRefused):
            tracked = self.tracked.get(event.call_id)
            if tracked is not None and tracked.sampler is not None:
                tracked.sampler.cancel()
            if self._monitor is not None:
                with contextlib.suppress(Exception):
                    self._monitor.remove_call(event.call_id)
            self._roamer_movers().pop(event.call_id, None)

    def _log_call_event(self, event: CallEvent) -> None:
        """One line per call event (journald priority by severity); never key material:
        the fields are the event's own (ids, peer, mode, suite, status, reason)."""
        fields = {f.name: getattr(event, f.name) for f in dataclass_fields(event)
                  if f.name != "call_id"}
        name = re.sub(r"(?<!^)(?=[A-Z])", "-", type(event).__name__).lower()
        level = (logging.WARNING if isinstance(event, CallRefused)
                 and (event.mikey_error is not None or not event.by_peer) else logging.INFO)
        log_event(_log, level, f"call.{name}", call=event.call_id,
                  **{k: (v.name if isinstance(v, enum.Enum) else v) for k, v in fields.items()})

    def _roamer_movers(self) -> dict[str, CallMover]:
        roamer = getattr(self, "_roamer", None)
        return roamer.movers if isinstance(roamer, Roamer) else {}

    def _track(self, call_id: str) -> None:
        agent = self.agent
        if agent is None or call_id not in agent.calls:
            return
        call = agent.calls[call_id]
        media = call.media
        if media is None:
            return
        tracked = _Tracked(call, None, None, (id(media.tx), id(media.rx)))
        self.tracked[call_id] = tracked
        tracked.timeline_start = _bin_start(time.time())
        tracked.sampler = asyncio.get_running_loop().create_task(
            self._sample(tracked), name=f"timeline-{call_id}")
        if not self.attach_roaming(tracked):
            self._spawn(self._attach_later(tracked))

    def attach_roaming(self, tracked: _Tracked) -> bool:
        """Give a secure call its :class:`RoamingCall` and mover once its context and
        both SDPs are known (the callee learns them just after ``CallConnected``)."""
        if tracked.roaming is not None:
            return True
        call, agent = tracked.call, self.agent
        context, media = call.context, call.media
        if agent is None or context is None or media is None or not call.local_sdp:
            return False
        try:
            local = SessionDescription.parse(call.local_sdp)
            remote = SessionDescription.parse(call.remote_sdp) if call.remote_sdp else None
        except SipError as exc:
            log_event(_log, logging.WARNING, "roaming.not_tracked", call=call.call_id,
                      error=str(exc))
            return False
        tracked.roaming = RoamingCall(call.call_id, agent.sip, media, context, local, remote)
        log_event(_log, logging.DEBUG, "call.sdp", call=call.call_id,
                  local=call.local_sdp.decode(errors="replace"),
                  remote=call.remote_sdp.decode(errors="replace"))
        tracked.mover = CallMover(tracked.roaming)
        self._watch_path(tracked)
        return True

    async def _attach_later(self, tracked: _Tracked) -> None:
        for _ in range(50):
            await asyncio.sleep(0.1)
            if tracked.call.state is not CallState.CONNECTED or self.attach_roaming(tracked):
                return
        log_event(_log, logging.WARNING, "roaming.not_tracked", call=tracked.call.call_id,
                  error="no MIKEY context or SDP: the call cannot roam")

    def _watch_path(self, tracked: _Tracked) -> None:
        monitor, mover, call = self._monitor, tracked.mover, tracked.call
        roamer = getattr(self, "_roamer", None)
        if monitor is None or mover is None or call.media is None or roamer is None:
            return
        remote = call.media.remote_rtp
        if remote is None:
            return
        dialog = self.agent.dialog(call.call_id) if self.agent is not None else None
        signalling = dialog.remote_target.host.strip("[]") if dialog is not None else remote[0]
        monitor.add_call(CallPath(call.call_id, call.media.local_rtp[0], remote[0],
                                  signalling))
        roamer.add(mover)

    async def _sample(self, tracked: _Tracked) -> None:
        """Packets received per 20 ms bin, bins aligned on the wall clock."""
        last = _received(tracked.call)
        timeline = tracked.timeline
        while True:
            next_bin = tracked.timeline_start + (len(timeline) + 1) * TIMELINE_BIN
            await asyncio.sleep(max(0.0, next_bin - time.time()))
            now = time.time()
            count = _received(tracked.call)
            elapsed_bins = int((now - tracked.timeline_start) / TIMELINE_BIN)
            while len(timeline) < elapsed_bins - 1:
                timeline.append(0)  # the loop was late: earlier bins saw nothing new
            timeline.append(count - last)
            if count > last:
                tracked.last_rx_at = now
            last = count
            if len(timeline) > TIMELINE_BINS:
                drop = len(timeline) - TIMELINE_BINS
                del timeline[:drop]
                tracked.timeline_start += drop * TIMELINE_BIN

    # -- moves ----------------------------------------------------------------------------

    def _on_decision(self, decision: object, done: bool) -> None:
        if not isinstance(decision, CallPathChanged):
            return
        tracked = self.tracked.get(decision.call_id)
        if tracked is None:
            return
        if not done:
            record = MoveRecord(time.time(), decision.old_local, decision.new_local)
            tracked.moves.append(record)
            log_event(_log, logging.INFO, "call.moving", call=decision.call_id,
                      old=decision.old_local, new=decision.new_local)
            self._spawn(self._measure_gap(tracked, record, _received(tracked.call)))

    def peer_moved(self, call: SecureCall) -> None:
        """The peer moved (verified re-INVITE): record it and measure our gap."""
        tracked = self.tracked.get(call.call_id)
        if tracked is None or call.media is None:
            return
        remote = call.media.remote_rtp
        old = f"peer at {remote[0]}:{remote[1]}" if remote else "peer"
        record = MoveRecord(time.time(), old, "peer moved (verified re-INVITE)")
        tracked.moves.append(record)
        log_event(_log, logging.INFO, "call.peer_moved", call=call.call_id, old=old)
        self._spawn(self._measure_gap(tracked, record, _received(call)))

    def move_refused(self, call: SecureCall, refused: MoveRefused) -> None:
        log_event(_log, logging.WARNING, "call.move_refused", call=call.call_id,
                  reason=refused.reason, status=refused.status)
        self._bus.publish(SecurityFailed(call.call_id, call.peer,
                                         f"move refused: {refused.reason}"))

    async def _measure_gap(self, tracked: _Tracked, record: MoveRecord, before: int) -> None:
        """The media gap of a move: from the last packet received before it (as seen by
        the 20 ms sampler, so up to one bin late) to the first packet after it (polled
        every 2 ms)."""
        last_before = tracked.last_rx_at or record.at
        started = time.monotonic()
        while time.monotonic() - started < GAP_LIMIT:
            await asyncio.sleep(0.002)
            if _received(tracked.call) > before:
                break
            if tracked.call.state is not CallState.CONNECTED:
                return
        gap_ms = max(0.0, time.time() - min(last_before, record.at)) * 1000.0
        record.gap_ms = gap_ms
        media = tracked.call.media
        new_address = (f"{media.local_rtp[0]}:{media.local_rtp[1]}" if media is not None
                       else record.new_address)
        if record.new_address.startswith("peer"):
            remote = media.remote_rtp if media is not None else None
            new_address = f"peer at {remote[0]}:{remote[1]}" if remote else record.new_address
            record.new_address = new_address
        log_event(_log, logging.INFO, "call.moved", call=tracked.call.call_id,
                  old=record.old_address, new=new_address, gap_ms=round(gap_ms, 1))
        self._bus.publish(CallMoved(tracked.call.call_id, record.old_address, new_address,
                                    round(gap_ms, 1)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reports --------------------------------------------------------------------------

    def describe(self, call: SecureCall) -> dict[str, Any]:
        """``call_object`` plus move history, SRTP proof and the media timeline."""
        described = call_object(call)
        tracked = self.tracked.get(call.call_id)
        if tracked is not None:
            described["moves"] = [m.to_json() for m in tracked.moves]
            described["srtp"] = srtp_proof(call, tracked.session_ids)
            described["timeline"] = {"start": tracked.timeline_start,
                                     "bin_ms": TIMELINE_BIN * 1000,
                                     "received": list(tracked.timeline)}
        return described

    async def list_calls(self) -> list[dict[str, Any]]:
        agent = self._agent()
        return [self.describe(c) for c in agent.calls.values()
                if c.state not in (CallState.ENDED, CallState.FAILED)]


def _bin_start(now: float) -> float:
    return int(now / TIMELINE_BIN) * TIMELINE_BIN
