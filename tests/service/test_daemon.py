"""The real daemon as a subprocess: sd_notify READY/WATCHDOG/RELOADING/STOPPING over a
fake $NOTIFY_SOCKET, status over the control socket, SIGHUP reload, SIGTERM exit.

sd_notify semantics: sd_notify(3), sd_watchdog_enabled(3), systemd.service(5).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service.conftest import PSK_HEX, minimal_toml, write_secret
from tests.service.daemon_harness import REPO, DaemonProcess, NotifySocket, ask


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


def test_ready_status_reload_and_clean_exit(make_config: Callable[..., Path], tmp_path: Path,
                                            notify: NotifySocket) -> None:
    config = make_config()
    control = tmp_path / "control.sock"
    daemon = DaemonProcess(config, notify, {"WATCHDOG_USEC": "400000"})
    try:
        ready = notify.wait_for("READY", "1")
        assert ready["MAINPID"] == str(daemon.proc.pid)
        assert ready["STATUS"] == "0 calls"
        assert notify.wait_for("WATCHDOG", "1")
        status = ask(control, op="status")
        assert status["ok"] is True
        assert status["result"]["pid"] == daemon.proc.pid
        assert status["result"]["log_level"] == "info"
        refused = ask(control, op="place", uri="sip:mallory@192.0.2.9")["error"]
        assert refused["code"] == "refused"  # policy required, no key for that peer

        # a subscriber sees the reload
        watcher = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        watcher.settimeout(30)
        watcher.connect(str(control))
        watcher.sendall(b'{"v":1,"id":1,"op":"subscribe","events":["config-reloaded"]}\n')
        lines = watcher.makefile("rb")
        assert json.loads(lines.readline())["ok"] is True

        # SIGHUP: log level applies live, a port change waits for a restart
        config.write_text(minimal_toml(control, level="debug").replace("port = 5099",
                                                                        "port = 5070"))
        daemon.signal(signal.SIGHUP)
        assert notify.wait_for("RELOADING", "1")["MONOTONIC_USEC"].isdigit()
        reready = notify.wait_for("READY", "1")
        assert "restart needed for sip.port" in reready["STATUS"]
        event = json.loads(lines.readline())
        assert event["event"] == "config-reloaded"
        assert event["data"] == {"ok": True, "restart_required": ["sip.port"], "error": None}
        result = ask(control, op="status")["result"]
        assert result["reloads"] == 1 and result["log_level"] == "debug"
        assert result["restart_required"] == ["sip.port"]

        # a broken file is reported and the running configuration is kept
        config.write_text("[identity]\nuri = 'nonsense'\n")
        daemon.signal(signal.SIGHUP)
        assert "reload failed" in notify.wait_for("READY", "1")["STATUS"]
        result = ask(control, op="status")["result"]
        assert result["last_reload"]["ok"] is False
        assert "identity.uri" in result["last_reload"]["error"]
        assert result["identity"]["uri"] == "sip:bob@example.org"
        assert json.loads(lines.readline())["data"]["ok"] is False
        watcher.close()

        daemon.signal(signal.SIGTERM)
        assert notify.wait_for("STOPPING", "1")
        code, err = daemon.finish()
    finally:
        daemon.stop()
    assert code == 0, err
    assert not control.exists()
    lines_out = err.splitlines()
    assert all(line.startswith("<") for line in lines_out), err
    assert any(line.startswith("<4>config.restart_required setting=sip.port") for line in lines_out)
    assert any(line.startswith("<3>config.reload_failed") for line in lines_out)
    assert lines_out[-1] == "<6>daemon.stopped"


def test_sigint_and_abstract_notify_socket(make_config: Callable[..., Path],
                                           tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path, abstract=True)
    daemon = DaemonProcess(make_config(), notify)
    try:
        notify.wait_for("READY", "1")
        daemon.signal(signal.SIGINT)
        notify.wait_for("STOPPING", "1")
        code, err = daemon.finish()
    finally:
        daemon.stop()
        notify.close()
    assert code == 0, err
    assert "Traceback" not in err


def test_runs_without_notify_socket(make_config: Callable[..., Path], tmp_path: Path) -> None:
    daemon = DaemonProcess(make_config(), None)
    try:
        for _ in range(300):  # no READY to wait for: retry connecting, bounded
            try:
                reply = ask(tmp_path / "control.sock", op="status")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert daemon.proc.poll() is None, "mobilityd exited"
                time.sleep(0.1)
        else:
            raise AssertionError("control socket never answered")
    finally:
        code, err = daemon.stop()
    assert reply["ok"] is True
    assert code == 0, err


def test_socket_override_survives_reload(make_config: Callable[..., Path], tmp_path: Path,
                                         notify: NotifySocket) -> None:
    other = tmp_path / "other.sock"
    daemon = DaemonProcess(make_config(), notify, extra_args=["--socket", str(other)])
    try:
        notify.wait_for("READY", "1")
        assert not (tmp_path / "control.sock").exists()
        daemon.signal(signal.SIGHUP)
        notify.wait_for("READY", "1")
        result = ask(other, op="status")["result"]
        assert result["reloads"] == 1 and result["restart_required"] == []
    finally:
        code, err = daemon.stop()
    assert code == 0, err


def test_config_error_exits_78_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[identity]\nuri = 'sip:bob@example.org'\n[sip]\nport = 'x'\n")
    proc = subprocess.run([sys.executable, "-m", "mobilityd", "--config", str(bad)],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert proc.returncode == 78
    assert proc.stderr.strip() == (f"<3>mobilityd: configuration error: {bad}: sip.port: "
                                   "must be an integer, not a string")


def test_check_and_demo_subcommands(make_config: Callable[..., Path]) -> None:
    config = make_config()
    check = subprocess.run([sys.executable, "-m", "mobilityd", "check", "--config", str(config)],
                           capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert check.returncode == 0 and "valid" in check.stdout
    demo = subprocess.run([sys.executable, "-m", "mobilityd", "demo", "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert demo.returncode == 0  # the demo itself: tests/service/test_demo.py
    assert "--out" in demo.stdout
    usage = subprocess.run([sys.executable, "-m", "mobilityd", "--bogus"], capture_output=True,
                           text=True, cwd=REPO, timeout=60, check=False)
    assert usage.returncode == 2


def test_debug_log_never_contains_the_psk(make_config: Callable[..., Path], tmp_path: Path,
                                          notify: NotifySocket) -> None:
    """Log secrecy at debug level for what the daemon does today (load keys, serve,
    reload, stop); the full call/roam/transfer run is the integrator's (issue 7)."""
    config = make_config(level="debug")
    daemon = DaemonProcess(config, notify)
    try:
        notify.wait_for("READY", "1")
        ask(tmp_path / "control.sock", op="status")
        ask(tmp_path / "control.sock", op="hangup", call=PSK_HEX)  # a hostile client
        daemon.signal(signal.SIGHUP)
        notify.wait_for("READY", "1")
    finally:
        code, err = daemon.stop()
    assert code == 0
    # the hostile request was logged, with the key-shaped call id scrubbed
    assert "<7>control.request call=<redacted> op=hangup id=1" in err.splitlines()
    key = bytes.fromhex(PSK_HEX)
    for form in (PSK_HEX, PSK_HEX.upper(), base64.b64encode(key).decode()[:-2],
                 base64.urlsafe_b64encode(key).decode()[:-2]):
        assert form not in err


def test_unusable_socket_path_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    write_secret(tmp_path / "alice.psk")
    config = tmp_path / "m.toml"
    config.write_text(minimal_toml(tmp_path / "afile" / "control.sock"))
    proc = subprocess.run([sys.executable, "-m", "mobilityd", "--config", str(config)],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("<3>daemon.start_failed error=")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_service_benchmark_prints_json_medians() -> None:
    out = subprocess.run([sys.executable, "-m", "mobilityd.service.bench", "--quick"],
                         capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["samples"] == {"start": 2, "reload": 6, "status": 80, "connect": 20}
    assert all(result[k] > 0 for k in result if k.endswith("_median"))
