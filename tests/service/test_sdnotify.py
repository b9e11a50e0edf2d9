"""sd_notify(3) address decoding, the watchdog interval (sd_watchdog_enabled(3)), and
datagrams actually sent to path and abstract sockets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mobilityd.service.sdnotify import Notifier, notify_address, watchdog_interval


def test_notify_address_forms() -> None:
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": ""}) is None
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@sd-abc"}) == "\0sd-abc"
    assert notify_address({"NOTIFY_SOCKET": "relative/path"}) is None


def test_watchdog_interval_is_half_and_respects_pid() -> None:
    assert watchdog_interval({}, 10) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 10) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "10"}, 10) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "11"}, 10) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 10) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 10) is None


def test_datagrams_reach_path_and_abstract_sockets(tmp_path: Path) -> None:
    path_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path_sock.bind(str(tmp_path / "n.sock"))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"mobilityd-sdnotify-test-{os.getpid()}"
    abstract.bind("\0" + name)
    for sock, value in ((path_sock, str(tmp_path / "n.sock")), (abstract, "@" + name)):
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": value})
        assert notifier.enabled
        assert notifier.notify("READY=1", "STATUS=2 calls")
        assert sock.recv(100) == b"READY=1\nSTATUS=2 calls"
        notifier.close()
        sock.close()


def test_disabled_and_failing_notifier_never_raise(tmp_path: Path) -> None:
    assert Notifier.from_environ({}).notify("READY=1") is False
    gone = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert gone.notify("READY=1") is False
    assert gone.notify("STOPPING=1") is False
    gone.close()
