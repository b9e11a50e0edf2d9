"""Answers control requests (except ``subscribe``, which the server streams itself)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from mobilityd.service.calls import CallManager
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.protocol import Op, Request
from mobilityd.service.state import DaemonState


class NetworkView(Protocol):
    """What ``status`` shows about the network (:class:`~mobilityd.service.netreport.
    NetworkReporter`)."""

    def to_json(self) -> dict[str, Any]: ...


class RegistrationView(Protocol):
    """What ``status`` shows about the registration (:class:`~mobilityd.service.
    registrar.RegistrationReporter`): None without a registrar or before it started."""

    def to_json(self) -> dict[str, Any] | None: ...


class Dispatcher:
    """Maps a validated :class:`Request` to the daemon state or the call manager."""

    def __init__(self, state: DaemonState, calls: CallManager,
                 clock: Callable[[], float] = time.monotonic,
                 network: NetworkView | None = None,
                 registration: RegistrationView | None = None) -> None:
        self.state = state
        self.calls = calls
        self.network = network
        self.registration = registration
        self._clock = clock

    async def handle(self, request: Request) -> Any:
        """The ``result`` of ``request``; raises :class:`ControlError` to refuse it."""
        args = request.args
        match request.op:
            case Op.STATUS:
                return await self._status()
            case Op.CALLS:
                return await self.calls.list_calls()
            case Op.PLACE:
                return await self.calls.place(args["uri"], args.get("peer"))
            case Op.ANSWER:
                return await self.calls.answer(args["call"])
            case Op.REJECT:
                return await self.calls.reject(args["call"], args.get("reason"))
            case Op.HANGUP:
                return await self.calls.hangup(args["call"])
            case Op.MOVE:
                devices = [d.name for d in self.state.config.devices]
                if args["device"] not in devices:
                    raise ControlError(ErrorCode.NO_SUCH_DEVICE,
                                       f"no device {args['device']!r} in the configuration "
                                       f"(devices: {', '.join(devices) or 'none'})", "device")
                return await self.calls.move(args["call"], args["device"])
            case Op.PULL:
                return await self.calls.pull(args["call"])
            case Op.SUBSCRIBE:
                raise ControlError(ErrorCode.INTERNAL, "subscribe is handled by the server")

    async def _status(self) -> dict[str, Any]:
        status = self.state.to_json(self._clock())
        if self.calls.available:
            calls = await self.calls.list_calls()
            status["calls"] = {"available": True, "count": len(calls), "list": calls}
        else:
            status["calls"] = {"available": False, "count": 0, "list": []}
        if self.network is not None:
            status["network"] = self.network.to_json()
        if self.registration is not None:
            status["registration"] = self.registration.to_json()
        return status
