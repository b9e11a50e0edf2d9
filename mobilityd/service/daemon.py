"""``mobilityd``: the daemon's entry point and life cycle (asyncio).

Life cycle, as systemd.service(5) ``Type=notify`` expects:

1. load the configuration (an error prints one line naming file and key; exit 78,
   EX_CONFIG);
2. read the first netlink dump, start the call machinery and the control server, then
   ``READY=1`` and ``STATUS=``;
3. run owned tasks in an :class:`asyncio.TaskGroup` (reload, watchdog, status) until the
   shutdown :class:`asyncio.Event` is set by SIGTERM or SIGINT (handlers only set
   events; no exception is thrown from a handler);
4. SIGHUP: ``RELOADING=1``, reload, apply what can change live (peers, security,
   media, mobility, log level, and ``[[devices]]`` for the next move), report what cannot
   (:func:`~mobilityd.service.config.restart_required`,
   :func:`~mobilityd.service.reload.started_restart_required`; log line and ``status``),
   ``READY=1``; a broken new file keeps the old one running;
5. ``STOPPING=1``, end the calls (BYE), close the socket, exit 0.

The call machinery is :class:`~mobilityd.service.calls_roaming.RoamingCallManager`
(secure calls, roaming driven by netlink, move verification). ``mobilityd demo`` runs
:mod:`mobilityd.service.demo`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mobilityd import __version__
from mobilityd.net.errors import WatcherError
from mobilityd.service.bus import EventBus
from mobilityd.service.calls import CallManager, UnavailableCallManager
from mobilityd.service.calls_roaming import RoamingCallManager
from mobilityd.service.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ControlSettings,
    apply_live,
    load_config,
)
from mobilityd.service.control import ControlServer, SocketInUseError
from mobilityd.service.demo import main as demo_main
from mobilityd.service.dispatch import Dispatcher
from mobilityd.service.errors import ConfigError
from mobilityd.service.events import ConfigReloaded
from mobilityd.service.heap import settle_heap
from mobilityd.service.logging import configure_logging, log_event, set_level
from mobilityd.service.netreport import NetworkReporter
from mobilityd.service.registrar import RegistrationReporter
from mobilityd.service.reload import started_restart_required
from mobilityd.service.sdnotify import Notifier, watchdog_interval
from mobilityd.service.state import DaemonState, ReloadOutcome
from mobilityd.sip import sip_core

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 78
_log = logging.getLogger("mobilityd.daemon")


class Daemon:
    """Owns the control server, the call manager and the daemon's own tasks."""

    def __init__(self, config: Config, notifier: Notifier,
                 calls: CallManager | None = None, bus: EventBus | None = None,
                 socket_override: Path | None = None) -> None:
        self._socket_override = socket_override
        config = self._with_overrides(config)
        self.bus = bus or EventBus()
        self.calls: CallManager = calls or UnavailableCallManager()
        self.notifier = notifier
        self._started_config = config  # what the call machinery was started with
        self.state = DaemonState(config=config, started_monotonic=time.monotonic(),
                                 started_wall=time.time())
        self.shutdown = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self.network = NetworkReporter(self.bus)
        self.registration = RegistrationReporter(config.registrar)  # as started
        self.bus.attach(self.registration)
        self._server = ControlServer(config.control.socket,
                                     Dispatcher(self.state, self.calls, network=self.network,
                                                registration=self.registration),
                                     self.bus)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.shutdown.set)
        loop.add_signal_handler(signal.SIGINT, self.shutdown.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        try:
            network_ok = await self._start_network()
            await self.calls.start()
            await self._server.start()
            # everything alive now lives as long as the process (mobilityd.service.heap)
            settle_heap()
            self.notifier.notify("READY=1", f"STATUS={await self._status_line()}",
                                 f"MAINPID={os.getpid()}")
            log_event(_log, logging.INFO, "daemon.ready", version=__version__,
                      sip_core=sip_core(),
                      identity=self.state.config.identity.uri,
                      calls_available=self.calls.available)
            async with asyncio.TaskGroup() as group:
                owned = [group.create_task(self._reloader()),
                         group.create_task(self._status_updater())]
                if network_ok:
                    owned.append(group.create_task(self.network.run()))
                interval = watchdog_interval(os.environ, os.getpid())
                if interval is not None and self.notifier.enabled:
                    owned.append(group.create_task(self._watchdog(interval)))
                await self.shutdown.wait()
                log_event(_log, logging.INFO, "daemon.stopping")
                self.notifier.notify("STOPPING=1", "STATUS=stopping")
                for task in owned:
                    task.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.network.close()
            await self.calls.close()
            await self._server.close()
        log_event(_log, logging.INFO, "daemon.stopped")
        return EXIT_OK

    async def _start_network(self) -> bool:
        """Read the first netlink dump (before READY=1). Without netlink the daemon still
        serves the control API; ``status.network`` shows why it has no network view."""
        try:
            await self.network.start()
        except WatcherError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in the watcher must not stop the daemon
            _log.exception("network watcher failed to start")
            error = f"internal error: {type(exc).__name__}"
        else:
            return True
        self.network.error = error
        log_event(_log, logging.ERROR, "net.watcher_failed", error=error)
        return False

    def reload(self) -> ReloadOutcome:
        """Re-read the configuration file; apply what may change live (SIGHUP)."""
        running = self.state.config
        try:
            new = self._with_overrides(load_config(running.source))
        except ConfigError as exc:
            outcome = ReloadOutcome(at=time.time(), ok=False, error=str(exc))
            self.state.record_reload(outcome, None)
            log_event(_log, logging.ERROR, "config.reload_failed", error=str(exc),
                      kept=str(running.source))
        else:
            effective, restart_keys = apply_live(running, new)
            restart_keys += started_restart_required(self._started_config, effective)
            set_level(effective.log.level.value)
            self.calls.reconfigure(effective)
            outcome = ReloadOutcome(at=time.time(), ok=True, restart_required=restart_keys)
            self.state.record_reload(outcome, effective)
            log_event(_log, logging.INFO, "config.reloaded", peers=len(effective.peers),
                      devices=len(effective.devices),
                      log_level=effective.log.level.value)
            for key in restart_keys:
                log_event(_log, logging.WARNING, "config.restart_required", setting=key,
                          detail="changed in the file; the running daemon keeps the old value")
        self.bus.publish(ConfigReloaded(ok=outcome.ok,
                                        restart_required=outcome.restart_required,
                                        error=outcome.error))
        return outcome

    def _with_overrides(self, config: Config) -> Config:
        """Apply command-line overrides (``--socket``) to a configuration from the file."""
        if self._socket_override is None:
            return config
        return replace(config, control=ControlSettings(socket=self._socket_override))

    async def _reloader(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={stamp}",
                                 "STATUS=reloading configuration")
            outcome = self.reload()
            status = await self._status_line()
            if not outcome.ok:
                status += "; last reload failed (old configuration kept)"
            elif outcome.restart_required:
                status += f"; restart needed for {', '.join(outcome.restart_required)}"
            self.notifier.notify("READY=1", f"STATUS={status}")

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _status_updater(self) -> None:
        """Keep ``STATUS=`` (shown by ``systemctl status``) in step with the calls."""
        subscription = self.bus.subscribe(["call-state-changed", "call-transferred"])
        try:
            while True:
                await subscription.next()  # an event or a report of lost ones: recount
                self.notifier.notify(f"STATUS={await self._status_line()}")
        finally:
            subscription.close()

    async def _status_line(self) -> str:
        if not self.calls.available:
            return "ready, call handling not available in this build"
        count = len(await self.calls.list_calls())
        return f"{count} call{'s' if count != 1 else ''}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mobilityd",
        description="Keeps secure SIP calls alive across network and device changes.")
    parser.add_argument("command", nargs="?", default="run", choices=("run", "check", "demo"),
                        help="run the daemon (default), check the configuration, "
                             "or run the demo")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help=f"configuration file (default {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--socket", type=Path, default=None,
                        help="control socket path, overriding [control] socket "
                             "(the demo runs several daemons on one machine)")
    parser.add_argument("--tone", type=float, default=None, metavar="HZ",
                        help="send a test tone of HZ on calls instead of silence "
                             "(the demo uses it to prove audio flows)")
    parser.add_argument("--version", action="version",
                        version=f"mobilityd {__version__} (SIP core: {sip_core()})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # its own options: `mobilityd demo --help`
        return demo_main(argv[1:])
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "demo":
        return demo_main([])
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"<3>mobilityd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        print(f"{config.source}: configuration is valid")
        return EXIT_OK
    configure_logging(config.log.level.value)
    notifier = Notifier.from_environ()
    try:
        return asyncio.run(_run(config, notifier, args.socket, args.tone))
    except SocketInUseError as exc:
        log_event(_log, logging.ERROR, "daemon.start_failed", error=str(exc))
        return EXIT_FAILURE
    except OSError as exc:
        log_event(_log, logging.ERROR, "daemon.start_failed", error=str(exc))
        return EXIT_FAILURE
    finally:
        notifier.close()


async def _run(config: Config, notifier: Notifier, socket: Path | None,
               tone_hz: float | None = None) -> int:
    override = None if socket is None else socket.absolute()
    bus = EventBus()
    calls = RoamingCallManager(config, bus, tone_hz=tone_hz)
    return await Daemon(config, notifier, calls=calls, bus=bus, socket_override=override).run()
