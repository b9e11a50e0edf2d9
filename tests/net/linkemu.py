"""Userspace link emulator: two TAP devices joined by a process that adds delay and loss.

For kernels without ``sch_netem`` (this project's VM kernel has no
CONFIG_NET_SCH_NETEM), :meth:`tests.netns.Topology.connect_emulated` runs this file as
a separate process. It creates two TAP devices, moves one into each namespace under the
wanted name, brings them up and forwards every Ethernet frame between them after
``delay_ms`` (+ uniform ``jitter_ms``), dropping ``loss_pct`` percent, in both
directions (so the round trip adds ``2 * delay_ms``). Loss uses a seeded RNG, so a run
can be repeated. Killing the process removes both devices (the link goes down).

The forwarding loop runs at SCHED_FIFO priority 20 when the kernel permits it (root):
it stands for the wire, which netem would emulate inside the kernel (softirq), out of
reach of the machine's user-space load. At normal priority a loaded machine delays its
wake-ups by several ms per frame (seen: 19-29 ms for a 10 ms one-way delay with the load
average at 10), so the emulated RTT was not the configured one.
``MOBILITYD_LINKEMU_REALTIME=0`` keeps normal priority (the previous behaviour).

Frames leave when due to the µs, not to the next whole millisecond: an epoll wait rounds
its timeout *up* to a whole ms (``selectors.EpollSelector.select``), which made every
delayed frame 0..1 ms late -- about 1 ms more one-way delay than configured, 2 ms more
on a round trip, seen in the handover timelines. The loop therefore waits on a timerfd
armed at the earliest frame's due time (the project's ctypes binding,
:mod:`mobilityd.media.timerfd`, as the media pacer uses); where it cannot be imported
or created it falls back to the rounded epoll timeout.

Protocol on stdin/stdout: prints ``ready`` once the devices exist; reads lines
``set delay_ms=20 jitter_ms=0 loss_pct=10`` (any subset) to change the link live;
exits on EOF or SIGTERM. Standard library only (runs as a plain script).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import os
import random
import selectors
import signal
import struct
import subprocess
import sys
import time

try:  # the project's timerfd binding (module doc); absent: rounded epoll timeouts
    from mobilityd.media.timerfd import TimerFd
except ImportError:  # pragma: no cover - run outside the project's environment
    TimerFd = None  # type: ignore[assignment,misc]

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536


def open_tap(name: str) -> int:
    """A non-persistent TAP device ``name`` (deleted when the fd closes)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Settings:
    def __init__(self, delay_ms: float, jitter_ms: float, loss_pct: float) -> None:
        self.delay_ms, self.jitter_ms, self.loss_pct = delay_ms, jitter_ms, loss_pct

    def update(self, line: str) -> None:
        words = line.split()
        if not words or words[0] != "set":
            raise ValueError(f"unknown command {line.strip()!r}")
        for word in words[1:]:
            key, _, value = word.partition("=")
            if key not in ("delay_ms", "jitter_ms", "loss_pct"):
                raise ValueError(f"unknown setting {key!r}")
            number = float(value)
            if number < 0 or (key == "loss_pct" and number > 100):
                raise ValueError(f"{key}={value} out of range")
            setattr(self, key, number)


REALTIME_PRIORITY = 20  # above the parties' optional SCHED_FIFO 10 (media.pacing)


def enable_realtime() -> bool:
    """SCHED_FIFO for this process unless MOBILITYD_LINKEMU_REALTIME=0 (module doc);
    False when off or not permitted."""
    if os.environ.get("MOBILITYD_LINKEMU_REALTIME", "1") == "0":
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (AttributeError, OSError):
        return False
    return True


class _DueTimer:
    """A timerfd armed at the earliest due time (module doc); ``timer`` is None without
    one (then the rounded epoll timeout is used)."""

    def __init__(self) -> None:
        self.timer: TimerFd | None = None
        if TimerFd is not None:
            with contextlib.suppress(OSError):
                self.timer = TimerFd()
        self.armed_for: float | None = None

    def arm(self, due: float | None) -> None:
        if self.timer is None or due == self.armed_for:
            return
        if due is None:
            self.timer.disarm()
        else:
            self.timer.arm_monotonic(due)
        self.armed_for = due

    def fired(self) -> None:
        self.armed_for = None
        if self.timer is not None:
            self.timer.acknowledge()


_TIMER = -1  # selector key data of the timerfd


def forward(fd_a: int, fd_b: int, settings: Settings, rng: random.Random) -> None:
    selector = selectors.DefaultSelector()
    selector.register(fd_a, selectors.EVENT_READ, fd_b)
    selector.register(fd_b, selectors.EVENT_READ, fd_a)
    selector.register(sys.stdin, selectors.EVENT_READ, None)
    due_timer = _DueTimer()
    if due_timer.timer is not None:
        selector.register(due_timer.timer.fd, selectors.EVENT_READ, _TIMER)
    pending: list[tuple[float, int, int, bytes]] = []  # due, order, output fd, frame
    order = 0
    commands = b""
    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out_fd, frame = heapq.heappop(pending)
            with contextlib.suppress(OSError):  # device down: lost, as on a real link
                os.write(out_fd, frame)
        if due_timer.timer is not None:
            due_timer.arm(pending[0][0] if pending else None)
            timeout = None
        else:
            timeout = max(0.0, pending[0][0] - now) if pending else None
        for key, _ in selector.select(timeout):
            if key.data == _TIMER:
                due_timer.fired()
                continue
            if key.data is None:
                data = os.read(sys.stdin.fileno(), 4096)
                if not data:
                    return
                commands += data
                while b"\n" in commands:
                    line, commands = commands.split(b"\n", 1)
                    try:
                        settings.update(line.decode())
                        print("ok", flush=True)
                    except ValueError as exc:
                        print(f"error {exc}", flush=True)
                continue
            while True:
                try:
                    frame = os.read(key.fd, MAX_FRAME)
                except (BlockingIOError, OSError):
                    break
                if rng.random() * 100 < settings.loss_pct:
                    continue
                delay = settings.delay_ms + rng.uniform(0, settings.jitter_ms)
                order += 1
                heapq.heappush(pending, (time.monotonic() + delay / 1000, order, key.data,
                                         frame))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs=2, metavar=("NETNS", "DEV"), required=True)
    parser.add_argument("--b", nargs=2, metavar=("NETNS", "DEV"), required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fds = []
    for side, (netns, dev) in (("a", args.a), ("b", args.b)):
        temporary = f"le{os.getpid()}{side}"[:15]
        fds.append(open_tap(temporary))
        ip("link", "set", temporary, "netns", netns)
        ip("-n", netns, "link", "set", temporary, "name", dev)
        ip("-n", netns, "link", "set", dev, "up")
    enable_realtime()
    print("ready", flush=True)
    settings = Settings(args.delay_ms, args.jitter_ms, args.loss_pct)
    forward(fds[0], fds[1], settings, random.Random(args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
