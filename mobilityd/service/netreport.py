"""Network changes for ``status`` and ``subscribe``: the daemon's netlink watcher.

Wraps :class:`mobilityd.net.watcher.NetlinkWatcher` (initial dump, then typed events)
and republishes its events on the bus as service events (``address-changed``,
``link-changed``, ``default-route-changed``). The daemon reads the first dump before
READY=1. The call machinery, once integrated, consumes network events itself
(:class:`mobilityd.mobility.pathmonitor.PathMonitor`); this reporter only makes them
visible to operators (``mobilityctl watch``) and to ``status``.
"""

from __future__ import annotations

import logging
from typing import Any

from mobilityd.net import events as net
from mobilityd.net.errors import WatcherError
from mobilityd.net.watcher import NetlinkWatcher
from mobilityd.service.bus import EventBus
from mobilityd.service.events import (
    AddressChanged,
    DefaultRouteChanged,
    LinkChanged,
    ServiceEvent,
)
from mobilityd.service.logging import log_event

_log = logging.getLogger("mobilityd.network")


def to_service_event(event: net.NetEvent) -> ServiceEvent | None:
    """The operator-facing form of a netlink event (``None``: not shown)."""
    match event:
        case net.AddressAdded(ifname=ifname, address=address, prefixlen=prefixlen):
            return AddressChanged(interface=ifname, old=None, new=f"{address}/{prefixlen}")
        case net.AddressRemoved(ifname=ifname, address=address, prefixlen=prefixlen):
            return AddressChanged(interface=ifname, old=f"{address}/{prefixlen}", new=None)
        case net.LinkUp(ifname=ifname):
            return LinkChanged(interface=ifname, state="up")
        case net.LinkDown(ifname=ifname):
            return LinkChanged(interface=ifname, state="down")
        case net.DefaultRouteChanged(family=family, gateway=gateway, ifname=ifname):
            version = 4 if family is net.AddressFamily.INET else 6
            return DefaultRouteChanged(family=version, gateway=gateway, interface=ifname)
    return None


class NetworkReporter:
    """Owns one watcher of the daemon's own network namespace."""

    def __init__(self, bus: EventBus, watcher: NetlinkWatcher | None = None) -> None:
        self._bus = bus
        self._watcher = watcher or NetlinkWatcher()
        self.error: str | None = None

    async def start(self) -> None:
        """Subscribe and read the first dump (raises ``WatcherError``)."""
        await self._watcher.start()

    async def run(self) -> None:
        """Publish events until :meth:`close`. A failing watcher is reported (log and
        ``status.network.error``) and stops the reporter, never the daemon: this view is
        for operators; the call machinery watches the network on its own."""
        try:
            async for event in self._watcher:
                published = to_service_event(event)
                if published is None:
                    continue
                self._bus.publish(published)
                log_event(_log, logging.INFO, f"net.{published.wire_name()}",
                          **published.to_json())
        except WatcherError as exc:
            self._failed(str(exc))
        except Exception as exc:  # a bug in the watcher must not stop the daemon
            _log.exception("network watcher crashed")
            self._failed(f"internal error: {type(exc).__name__}")

    def _failed(self, error: str) -> None:
        self.error = error
        log_event(_log, logging.ERROR, "net.watcher_failed", error=error)
        self._watcher.close()

    def to_json(self) -> dict[str, Any]:
        """``status.network``: usable addresses and the watcher's health."""
        state = self._watcher.state
        return {
            "available": self.error is None,
            "error": self.error,
            "addresses": [{"interface": a.ifname, "address": f"{a.address}/{a.prefixlen}"}
                          for a in state.usable_addresses()],
            "resyncs": self._watcher.resyncs,
        }

    def close(self) -> None:
        self._watcher.close()
