"""Wake-ups for the paced sender: a Linux timerfd with µs precision, or ``loop.call_at``.

Why: asyncio's epoll selector rounds every wait *up* to a whole millisecond
(``selectors.EpollSelector.select``: ``math.ceil(timeout * 1e3)``), so a ``call_at``
timer fires 0..1 ms late by construction. A timerfd (``timerfd_create(2)``,
CLOCK_MONOTONIC, absolute deadlines with ``TFD_TIMER_ABSTIME``) registered with
``loop.add_reader`` makes epoll return when the kernel timer expires (hrtimer, µs
precision), and the daemon stays an ordinary asyncio program: no busy-waiting, no
thread. ``os.timerfd_create`` exists only from Python 3.13, so this is a small ctypes
binding to libc. Where timerfd is unavailable (not Linux, no libc symbol, a loop
without ``add_reader``) :func:`make_wakeup` gives the ``call_at`` fallback.

Both kinds take deadlines in ``loop.time()`` seconds; the timerfd converts them to
CLOCK_MONOTONIC (``time.monotonic``) at each arm, so a loop with another clock works.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import time
import weakref
from collections.abc import Callable
from typing import Protocol

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1
_NS = 1_000_000_000


class Timespec(ctypes.Structure):
    """``struct timespec`` (time_t and long are the C ``long`` on Linux)."""

    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class Itimerspec(ctypes.Structure):
    """``struct itimerspec``: ``it_interval`` (0: one-shot) and ``it_value``."""

    _fields_ = (("it_interval", Timespec), ("it_value", Timespec))


class TimerFdUnavailable(OSError):
    """This system offers no timerfd (the ``call_at`` fallback applies)."""


def _libc_functions() -> tuple[Callable[..., int], Callable[..., int]]:
    name = ctypes.util.find_library("c")
    if name is None:
        raise TimerFdUnavailable("no C library found")
    libc = ctypes.CDLL(name, use_errno=True)
    try:
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except AttributeError as exc:
        raise TimerFdUnavailable(f"libc has no timerfd: {exc}") from exc
    create.argtypes = (ctypes.c_int, ctypes.c_int)
    create.restype = ctypes.c_int
    settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(Itimerspec),
                        ctypes.POINTER(Itimerspec))
    settime.restype = ctypes.c_int
    return create, settime


class TimerFd:
    """One non-blocking CLOCK_MONOTONIC timerfd, armed one-shot at absolute times."""

    def __init__(self) -> None:
        create, settime = _libc_functions()
        fd = create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise TimerFdUnavailable(code, f"timerfd_create: {os.strerror(code)}")
        self.fd = fd
        # a scheduler never closed must not leak the descriptor once it is collected
        self._finalizer = weakref.finalize(self, os.close, fd)
        self._settime = settime
        self._spec = Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)

    def arm_monotonic(self, deadline: float) -> None:
        """Expire at ``deadline`` (``time.monotonic()`` seconds); a past one fires now."""
        ns = max(1, round(deadline * _NS))  # all-zero it_value would disarm instead
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(ns, _NS)
        self._set()

    def disarm(self) -> None:
        value = self._spec.it_value
        value.tv_sec = value.tv_nsec = 0
        self._set()

    def _set(self) -> None:
        if self._settime(self.fd, TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_settime: {os.strerror(code)}")

    def acknowledge(self) -> int:
        """Read the expiry count (clears readability); 0 if there was none."""
        try:
            return int.from_bytes(os.read(self.fd, 8), "little")
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return 0
            raise

    def close(self) -> None:
        if self.fd >= 0:
            self._finalizer()  # closes the descriptor, once
            self.fd = -1


class Wakeup(Protocol):
    """Calls its callback once at the last armed loop time (re-arming replaces it)."""

    precise: bool

    def arm(self, when: float) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class CallAtWakeup:
    """The fallback: ``loop.call_at`` (fires 0..1 ms late under epoll, module docstring)."""

    precise = False

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._callback()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.cancel()


class TimerFdWakeup:
    """A :class:`TimerFd` watched by the loop (``add_reader``): µs-precise wake-ups."""

    precise = True

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._timer = TimerFd()
        try:
            loop.add_reader(self._timer.fd, self._ready)
        except (NotImplementedError, OSError):
            self._timer.close()
            raise
        self._armed = False

    def arm(self, when: float) -> None:
        # loop time -> CLOCK_MONOTONIC (the same clock for asyncio's default loops);
        # read the loop clock first so any offset error makes the wake-up later, not early
        loop_now = self._loop.time()
        self._timer.arm_monotonic(when + (time.monotonic() - loop_now))
        self._armed = True

    def _ready(self) -> None:
        expired = self._timer.acknowledge()
        if expired and self._armed:
            self._armed = False
            self._callback()

    def cancel(self) -> None:
        if self._armed:
            self._armed = False
            self._timer.disarm()

    def close(self) -> None:
        if self._timer.fd >= 0:
            self._loop.remove_reader(self._timer.fd)
            self._timer.close()
        self._armed = False


def make_wakeup(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None], *, precise: bool = True
) -> Wakeup:
    """A :class:`TimerFdWakeup` when ``precise`` and the system allows, else
    :class:`CallAtWakeup`."""
    if precise:
        try:
            return TimerFdWakeup(loop, callback)
        except (NotImplementedError, OSError):
            pass
    return CallAtWakeup(loop, callback)
