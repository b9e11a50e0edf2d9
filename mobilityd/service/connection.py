"""One control-socket client connection (asyncio), used by
:class:`~mobilityd.service.control.ControlServer`.

Requests are read, split into lines (:class:`~mobilityd.service.protocol.LineSplitter`)
and answered in order. Everything sent goes through one bounded outbound queue and one
writer task, so a subscribed client sees the events an operation published *before* its
reply (``mobilityctl move`` prints them as progress). Replies wait for room in the queue
(a client that stops reading stops being read: back-pressure); events never wait -- when
the queue is full they are counted and later reported as one ``events-lost`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mobilityd.service.bus import EventBus
from mobilityd.service.dispatch import Dispatcher
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.events import EVENT_NAMES, ServiceEvent
from mobilityd.service.logging import log_event
from mobilityd.service.protocol import (
    LineSplitter,
    Op,
    Request,
    RequestError,
    encode_error,
    encode_event,
    encode_result,
    parse_request,
)

OUTBOUND_LINES = 256
_log = logging.getLogger("mobilityd.control")


class Connection:
    """Serves one client until it hangs up (or the server aborts the transport)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 dispatcher: Dispatcher, bus: EventBus, max_line: int) -> None:
        self._reader = reader
        self._writer = writer
        self._dispatcher = dispatcher
        self._bus = bus
        self._splitter = LineSplitter(max_line)
        self._outbound: asyncio.Queue[bytes] = asyncio.Queue(OUTBOUND_LINES)
        self._lost = 0
        self.names: frozenset[str] | None = None  # the Subscriber filter
        self._subscribed = False

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                writer_task = group.create_task(self._write_loop())
                while data := await self._reader.read(65536):
                    for item in self._splitter.feed(data):
                        if isinstance(item, RequestError):
                            await self._outbound.put(item.reply())
                        else:
                            await self._outbound.put(await self._answer(item))
                self._unsubscribe()  # end of input: stream no more events,
                await self._outbound.join()  # but deliver the replies already due
                writer_task.cancel()
        except* ConnectionError:
            pass  # the client went away: nothing left to answer
        finally:
            self._unsubscribe()
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    # -- the Subscriber side (called synchronously by EventBus.publish) -------------
    def offer(self, seq: int, event: ServiceEvent) -> None:
        self._queue_event(encode_event(event.wire_name(), seq, event.to_json()))

    def _queue_event(self, line: bytes) -> None:
        try:
            self._outbound.put_nowait(line)
        except asyncio.QueueFull:
            self._lost += 1

    # -- internals ---------------------------------------------------------------------
    async def _write_loop(self) -> None:
        while True:
            line = await self._outbound.get()
            try:
                self._writer.write(line)
                await self._writer.drain()
            finally:
                self._outbound.task_done()
            if self._lost and not self._outbound.full():
                lost, self._lost = self._lost, 0
                self._queue_event(encode_event("events-lost", 0, {"count": lost}))

    async def _answer(self, line: bytes) -> bytes:
        request_id: int | None = None
        try:
            request = parse_request(line)
            request_id = request.id
            log_event(_log, logging.DEBUG, "control.request", call=request.args.get("call"),
                      op=request.op.value, id=request.id,
                      **{k: v for k, v in request.args.items() if k != "call"})
            if request.op is Op.SUBSCRIBE:
                return self._subscribe(request)
            return encode_result(request.id, await self._dispatcher.handle(request))
        except RequestError as exc:
            log_event(_log, logging.DEBUG, "control.bad_request", code=exc.code.value,
                      field=exc.field)
            return exc.reply()
        except ControlError as exc:
            log_event(_log, logging.DEBUG, "control.refused", id=request_id,
                      code=exc.code.value, field=exc.field)
            return encode_error(request_id, exc)
        except Exception as exc:  # a bug must not kill the connection or the daemon
            _log.exception("control request failed: %s", type(exc).__name__)
            return encode_error(request_id, ControlError(
                ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"))

    def _subscribe(self, request: Request) -> bytes:
        names = request.args.get("events")
        if names is not None:
            unknown = sorted(set(names) - EVENT_NAMES)
            if unknown:
                raise ControlError(ErrorCode.BAD_REQUEST,
                                   f"unknown event name {unknown[0]!r} "
                                   f"(known: {', '.join(sorted(EVENT_NAMES))})", "events")
        if self._subscribed:
            raise ControlError(ErrorCode.REFUSED, "this connection is already subscribed")
        self.names = None if names is None else frozenset(names)
        self._subscribed = True
        self._bus.attach(self)
        return encode_result(request.id, {"subscribed": sorted(names or EVENT_NAMES)})

    def _unsubscribe(self) -> None:
        if self._subscribed:
            self._bus.detach(self)
            self._subscribed = False
