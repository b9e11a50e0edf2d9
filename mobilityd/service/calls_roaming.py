"""The daemon's call manager: real calls that follow the network and the user.

:class:`RoamingCallManager` extends :class:`mobilityd.call.manager.AgentCallManager`
with the mobility adapters of :mod:`mobilityd.mobility`:

* the agent is a :class:`~mobilityd.mobility.transfer_agent.TransferAgent` (issue 6):
  ``move`` / ``pull`` hand the call to another device of the user (EXPECT/PULL tokens
  under the shared device secret, REFER with Refer-To/Referred-By, RFC 3515 / 3892),
  with the settings of :func:`~mobilityd.mobility.transfer_config.transfer_settings_from`
  (each device's hand-off address: ``[[devices]] handoff``, else its SIP port + 10); an
  account without other devices only takes transfers of its calls;
* with a ``[registrar]``, the account registers there (:mod:`.registrar`: GRUU,
  re-REGISTER after each move, removed on stop);
* roaming (issue 5): a :class:`~mobilityd.mobility.pathmonitor.PathMonitor` (netlink +
  route lookups) decides when a call must move and
  :func:`~mobilityd.mobility.agent_roaming.move_agent_call` moves it (rebind media,
  rebind SIP, re-INVITE carrying the RFC 3830 §4.5 update); a peer's re-INVITE is
  accepted only after :class:`~mobilityd.mobility.agent_roaming.VerifyingReinvitePolicy`
  verified it (a refusal answers 488 and publishes ``security-failed``);
* each move publishes ``call-moved`` with the *measured* media gap (last packet before
  to first packet after); the correspondent publishes ``call-transferred`` with the
  audible gap the transfer agent measured;
* per call, a 20 ms sampler records packets received per 20 ms (wall-clock aligned bins)
  for ``status`` and the demo's media timeline, and the call object carries the SRTP
  evidence that the context never changed (SSRCs, first/last packet index, ROC, whether
  the session objects are the ones keyed at set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from mobilityd.call.agent import AgentConfig, CallAgent, ReinviteDecision
from mobilityd.call.audio import AudioOptions
from mobilityd.call.errors import CallUsageError
from mobilityd.call.events import CallConnected, CallEvent, CallRefused, CallTerminated
from mobilityd.call.keyload import CredentialError
from mobilityd.call.manager import AgentCallManager, agent_config_from, call_object
from mobilityd.call.secure_call import CallState, SecureCall
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.events import CallPathChanged, GracePeriodExpired
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.mobility.roaming import UPDATE_AHEAD_CHECK_SECONDS
from mobilityd.mobility.transfer import TransferSucceeded
from mobilityd.mobility.transfer.errors import TransferUsageError
from mobilityd.mobility.transfer_agent import TransferAgent, correspondent_only
from mobilityd.mobility.transfer_config import transfer_settings_from
from mobilityd.net.preferences import SourcePreferences
from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.events import CallMoved, CallTransferred, SecurityFailed
from mobilityd.service.keyfiles import KeyFileProblem
from mobilityd.service.logging import log_event
from mobilityd.service.registrar import RegistrarError, Registration
from mobilityd.sip import events as sip_events
from mobilityd.sip.message import Request

__all__ = ["TIMELINE_BIN", "TIMELINE_BINS", "MoveRecord", "RoamingCallManager"]

_log = logging.getLogger("mobilityd.roaming")
TIMELINE_BIN = 0.020
"""Width of one media timeline bin: one G.711 frame (RFC 3551 §4.5.14, 20 ms ptime)."""
TIMELINE_BINS = 6000
"""Bins kept per call (two minutes)."""
MOVE_RETRIES = 20
"""A move waits for a running re-INVITE (RFC 3261 §14.1) at most this many times 0.1 s."""
PULL_TIMEOUT = 5.0
"""How long a pull waits for another device to hand the call over."""
GAP_LIMIT = 10.0
"""A move whose media has not come back after this long is reported with this gap."""


@dataclass
class MoveRecord:
    """One move of a call: when, from where to where, and the measured gap."""

    at: float
    kind: str  # "roam" (we moved), "peer-roam" (the peer moved), "transfer"
    old_address: str
    new_address: str
    gap_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        """docs/control-protocol.md, "Call object": ``moves``."""
        return {"at": round(self.at, 3), "kind": self.kind, "from": self.old_address,
                "to": self.new_address,
                "gap_ms": None if self.gap_ms is None else round(self.gap_ms, 1)}


@dataclass(eq=False)
class _Tracked:
    """What the manager keeps per connected call."""

    call: SecureCall
    session_ids: tuple[int, int]
    moves: list[MoveRecord] = field(default_factory=list)
    timeline_start: float = 0.0
    timeline: list[int] = field(default_factory=list)
    sampler: asyncio.Task[None] | None = None
    last_rx_at: float = 0.0  # wall clock of the last sample that saw new packets
    transfer_ssrc: int | None = None  # the new device's SSRC of the last transfer seen
    ready_checked_at: float = 0.0  # wall clock of the last MoveContexts.keep_ready


def _received(call: SecureCall) -> int:
    """SRTP packets received on the call so far, every SSRC counted (a transfer adds the
    new device's SSRC next to the old one's, so this never goes back)."""
    media = call.media
    if media is None:
        return 0
    if media.rx is not None:
        return sum(media.rx.counters(ssrc).packets for ssrc in media.rx.ssrcs)
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


class _ObservingPolicy:
    """:class:`VerifyingReinvitePolicy`, plus the manager's records of what it decided."""

    def __init__(self, inner: VerifyingReinvitePolicy, manager: RoamingCallManager) -> None:
        self._inner = inner
        self._manager = manager

    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision:
        previous = call.remote_sdp
        old_remote = call.media.remote_rtp if call.media is not None else None
        refused_before = len(self._inner.refused)
        log_event(_log, logging.DEBUG, "call.reinvite_received", call=call.call_id,
                  body=request.body.decode(errors="replace"))
        decision = await self._inner.decide(agent, call, request)
        if len(self._inner.refused) > refused_before:
            self._manager.move_refused(call, self._inner.refused[-1].reason,
                                       self._inner.refused[-1].status)
        elif decision.accept and request.body and request.body != previous:
            self._manager.peer_moved(call, old_remote)
        return decision


class RoamingCallManager(AgentCallManager):
    """:class:`AgentCallManager` plus roaming, transfer and media metrics."""

    def __init__(self, config: Config, bus: EventBus, *, netns: str | None = None,
                 tone_hz: float | None = None) -> None:
        super().__init__(config, bus)
        self._tone_hz = tone_hz
        self.tracked: dict[SecureCall, _Tracked] = {}
        self._netns = netns
        self._contexts = MoveContexts()
        self._monitor: PathMonitor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.roaming_problem: str | None = None
        self.registration: Registration | None = None
        self.registration_problem: str | None = None

    async def start(self) -> None:
        try:
            agent_config: AgentConfig = agent_config_from(self._config)
            transfer = (transfer_settings_from(self._config)
                        or correspondent_only(self._config.identity.uri, os.urandom(32)))
        except (CredentialError, KeyFileProblem, TransferUsageError) as exc:
            self._problem = f"call credentials unusable: {exc}"
            log_event(_log, logging.ERROR, "calls.unavailable", error=self._problem)
            return
        if self._tone_hz is not None:
            agent_config = replace(agent_config, audio=AudioOptions(tone_hz=self._tone_hz))
        policy = _ObservingPolicy(VerifyingReinvitePolicy(self._contexts), self)
        agent = TransferAgent(agent_config, transfer, reinvite_policy=policy)
        agent.add_listener(self._publish)
        agent.add_listener(self._on_call_event)
        await agent.start()
        self.agent = agent
        if self._config.registrar is not None:
            try:
                self.registration = await Registration.start(agent.sip, self._config,
                                                             self._bus)
            except RegistrarError as exc:
                self.registration_problem = str(exc)
                log_event(_log, logging.ERROR, "registration.unavailable", error=str(exc))
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
        self._spawn(self._roam(monitor))

    async def close(self) -> None:
        for task in [*self._tasks, *(t.sampler for t in self.tracked.values())]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._monitor is not None:
            self._monitor.close()
        if self.registration is not None:  # the binding goes (BYEs follow route sets)
            await self.registration.close()
        await super().close()

    def reconfigure(self, config: Config) -> None:
        """The reloaded configuration (SIGHUP): what :class:`AgentCallManager` applies,
        plus ``[[devices]]`` for the next move or pull. Moves already running keep the
        device entry they started with; the hand-off channel, its port and the device
        secret stay as started (:mod:`mobilityd.service.reload` reports those)."""
        super().reconfigure(config)
        agent = self.agent
        if isinstance(agent, TransferAgent) and agent.transfer.handoff_port is not None:
            self._apply_devices(agent, config)
        if self._monitor is not None:
            self._apply_mobility(self._monitor, config)

    @staticmethod
    def _apply_mobility(monitor: PathMonitor, config: Config) -> None:
        """``[mobility]`` for the next decisions: interface preferences and hold-down at
        once, the grace period for paths lost from now on (a running grace keeps the
        deadline it was given)."""
        mobility = config.mobility
        monitor.preferences = SourcePreferences(prefer=mobility.interface_preference,
                                                avoid=mobility.interface_avoid)
        monitor.coalescer.hold_down = mobility.hold_down
        monitor.grace.grace_period = mobility.grace_period
        log_event(_log, logging.INFO, "roaming.settings_updated",
                  grace_period=mobility.grace_period, hold_down=mobility.hold_down,
                  prefer=",".join(mobility.interface_preference) or "-",
                  avoid=",".join(mobility.interface_avoid) or "-")

    def _apply_devices(self, agent: TransferAgent, config: Config) -> None:
        try:
            settings = transfer_settings_from(config)
        except (TransferUsageError, KeyFileProblem) as exc:
            log_event(_log, logging.ERROR, "transfer.devices_kept", error=str(exc),
                      devices=",".join(agent.transfer.devices))
            return
        devices = dict(settings.devices) if settings is not None else {}
        if settings is not None and settings.device_key != agent.transfer.device_key:
            log_event(_log, logging.WARNING, "config.restart_required",
                      setting="identity.device_secret_file",
                      detail="its content changed; moves keep the secret read at start")
        agent.transfer = replace(agent.transfer, devices=devices)
        log_event(_log, logging.INFO, "transfer.devices_updated",
                  devices=",".join(devices) or "none")

    def _transfer_agent(self) -> TransferAgent:
        agent = self._agent()
        assert isinstance(agent, TransferAgent)
        return agent

    # -- call life cycle ------------------------------------------------------------------

    def _on_call_event(self, event: CallEvent) -> None:
        self._log_call_event(event)
        agent = self.agent
        call = agent.calls.get(event.call_id) if agent is not None else None
        if isinstance(event, CallConnected) and call is not None:
            self._track(call)
        elif isinstance(event, CallTerminated | CallRefused):
            tracked = self.tracked.get(call) if call is not None else None
            if tracked is not None and tracked.sampler is not None:
                tracked.sampler.cancel()
            if self._monitor is not None:
                with contextlib.suppress(Exception):
                    self._monitor.remove_call(event.call_id)
            self._contexts.forget(event.call_id)

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

    def _track(self, call: SecureCall) -> None:
        media = call.media
        if media is None or call in self.tracked:
            return
        tracked = _Tracked(call, (id(media.tx), id(media.rx)))
        self.tracked[call] = tracked
        tracked.timeline_start = _bin_start(time.time())
        tracked.sampler = asyncio.get_running_loop().create_task(
            self._sample(tracked), name=f"timeline-{call.call_id}")
        log_event(_log, logging.DEBUG, "call.sdp", call=call.call_id,
                  local=call.local_sdp.decode(errors="replace"),
                  remote=call.remote_sdp.decode(errors="replace"))
        self._watch_path(call)

    def _watch_path(self, call: SecureCall) -> None:
        monitor, agent = self._monitor, self.agent
        if monitor is None or agent is None or call.media is None or call.context is None:
            return
        remote = call.media.remote_rtp
        if remote is None:
            return
        dialog = agent.dialog(call.call_id)
        signalling = dialog.remote_target.host.strip("[]") if dialog is not None else remote[0]
        monitor.add_call(CallPath(call.call_id, call.media.local_rtp[0], remote[0],
                                  signalling))

    async def _sample(self, tracked: _Tracked) -> None:
        """Packets received per 20 ms bin, bins aligned on the wall clock; the audible
        gap of a transfer (correspondent side) is published once measured."""
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
            self._check_transfer_gap(tracked)
            if now - tracked.ready_checked_at >= UPDATE_AHEAD_CHECK_SECONDS:
                tracked.ready_checked_at = now
                self._keep_move_ready(tracked, now)

    def _keep_move_ready(self, tracked: _Tracked, now: float) -> None:
        """The call's next move has its update built and its SDPs parsed before it
        starts (:meth:`MoveContexts.keep_ready`); a failure here only means the move
        does that work itself, and reports what is wrong then. Logged once per distinct
        failure, not every second."""
        failure = self._contexts.keep_ready(tracked.call, now)
        if failure is not None:
            log_event(_log, logging.WARNING, "call.move_prepare_failed",
                      call=tracked.call.call_id, error=failure)

    def _check_transfer_gap(self, tracked: _Tracked) -> None:
        agent = self.agent
        clock = agent.arrivals.get(tracked.call) if isinstance(agent, TransferAgent) else None
        if clock is None or clock.gap is None or clock.waiting_for == tracked.transfer_ssrc:
            return
        tracked.transfer_ssrc = clock.waiting_for  # one record per switch (new SSRC)
        gap_ms = round(clock.gap * 1000.0, 1)
        remote = tracked.call.media.remote_rtp if tracked.call.media is not None else None
        where = f"{remote[0]}:{remote[1]}" if remote else "?"
        tracked.moves.append(MoveRecord(time.time(), "transfer", "previous device",
                                        f"peer device at {where}", gap_ms))
        log_event(_log, logging.INFO, "call.transferred", call=tracked.call.call_id,
                  to=where, gap_ms=gap_ms)
        self._bus.publish(CallTransferred(tracked.call.call_id, "peer device", where, gap_ms))

    # -- roaming --------------------------------------------------------------------------

    async def _roam(self, monitor: PathMonitor) -> None:
        while True:
            for decision in await monitor.next_decisions():
                try:
                    await self._act(decision)
                except Exception:  # one failed move must not stop roaming for the others
                    _log.exception("roaming decision failed")

    def _by_id(self, call_id: str) -> _Tracked | None:
        return next((t for c, t in self.tracked.items() if c.call_id == call_id), None)

    async def _act(self, decision: object) -> None:
        agent = self.agent
        if agent is None:
            return
        if isinstance(decision, GracePeriodExpired):
            log_event(_log, logging.WARNING, "call.grace_expired", call=decision.call_id)
            with contextlib.suppress(CallUsageError):
                await agent.hangup(decision.call_id)
            return
        if not isinstance(decision, CallPathChanged):
            return
        tracked = self._by_id(decision.call_id)
        if tracked is None:
            return
        record = MoveRecord(time.time(), "roam", decision.old_local, decision.new_local)
        tracked.moves.append(record)
        log_event(_log, logging.INFO, "call.moving", call=decision.call_id,
                  old=decision.old_local, new=decision.new_local)
        self._spawn(self._measure_gap(tracked, record, _received(tracked.call)))
        for _ in range(MOVE_RETRIES):
            try:
                outcome = await move_agent_call(agent, decision.call_id, decision.new_local,
                                                self._contexts)
            except CallUsageError:  # another re-INVITE runs (RFC 3261 §14.1): wait
                await asyncio.sleep(0.1)
                continue
            if isinstance(outcome, sip_events.ReinviteFailed):
                log_event(_log, logging.WARNING, "call.move_refused_by_peer",
                          call=decision.call_id, status=getattr(outcome, "status", 0))
            return

    def peer_moved(self, call: SecureCall, remote: tuple[str, int] | None) -> None:
        """The peer moved from ``remote`` (verified re-INVITE): record it and measure
        our gap."""
        tracked = self.tracked.get(call)
        if tracked is None or call.media is None:
            return
        old = f"peer at {remote[0]}:{remote[1]}" if remote else "peer"
        record = MoveRecord(time.time(), "peer-roam", old, "peer moved (verified re-INVITE)")
        tracked.moves.append(record)
        log_event(_log, logging.INFO, "call.peer_moved", call=call.call_id, old=old)
        self._spawn(self._measure_gap(tracked, record, _received(call)))

    def move_refused(self, call: SecureCall, reason: str, status: int) -> None:
        log_event(_log, logging.WARNING, "call.move_refused", call=call.call_id,
                  reason=reason, status=status)
        self._bus.publish(SecurityFailed(call.call_id, call.peer, f"move refused: {reason}"))

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
        if record.kind == "peer-roam":
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

    # -- transfer -------------------------------------------------------------------------

    async def move(self, call: str, device: str) -> dict[str, Any]:
        """Hand ``call`` to another device of the user (docs/transfer.md)."""
        agent = self._transfer_agent()
        self._call(call)
        if device == self._config.identity.device:
            raise ControlError(ErrorCode.REFUSED, f"the call is on {device} already", "device")
        if device not in agent.transfer.devices:
            raise ControlError(ErrorCode.NO_SUCH_DEVICE, f"no device {device!r} to move to",
                               "device")
        started = time.monotonic()
        outcome = await agent.move(call, device)
        took_ms = round((time.monotonic() - started) * 1000.0, 1)
        if not isinstance(outcome, TransferSucceeded):
            reason = getattr(outcome, "reason", "transfer failed")
            log_event(_log, logging.WARNING, "call.transfer_failed", call=call, device=device,
                      reason=reason)
            raise ControlError(ErrorCode.REFUSED, f"transfer to {device} failed: {reason}")
        log_event(_log, logging.INFO, "call.handed_over", call=call, device=device,
                  took_ms=took_ms)
        return {"id": call, "device": device, "transferred": True, "took_ms": took_ms}

    async def pull(self, call: str) -> dict[str, Any]:
        """Ask the user's other devices for ``call`` (a PULL token); the call here."""
        agent = self._transfer_agent()
        for device in agent.transfer.devices:
            pulled = await agent.pull(device, call, timeout=PULL_TIMEOUT)
            if pulled is not None:
                log_event(_log, logging.INFO, "call.pulled", call=pulled.call_id,
                          device=device)
                return self.describe(pulled)
        raise ControlError(ErrorCode.REFUSED, f"no other device handed over call {call!r}",
                           "call")

    # -- reports --------------------------------------------------------------------------

    def describe(self, call: SecureCall) -> dict[str, Any]:
        """``call_object`` plus move history, SRTP proof and the media timeline."""
        described = call_object(call)
        tracked = self.tracked.get(call)
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
