"""mobilityctl against the real daemon: tables, --json, exit codes, progress, watch,
completion (docs/control-protocol.md, "mobilityctl")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilityd.service.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    main,
)
from tests.service.conftest import minimal_toml, write_secret
from tests.service.daemon_harness import REPO, DaemonProcess, NotifySocket

DEVICES = """
[[devices]]
name = "laptop"
contact = "sip:bob@10.2.0.2:5060"
[[devices]]
name = "pda"
contact = "sip:bob@10.4.0.2:5060"
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DaemonProcess]]:
    tmp = tmp_path_factory.mktemp("ctl")
    write_secret(tmp / "alice.psk")
    write_secret(tmp / "device.key")
    text = minimal_toml(tmp / "control.sock") + DEVICES
    text = text.replace('display_name = "Bob"', 'display_name = "Bob"\ndevice = "laptop"\n'
                        'device_secret_file = "device.key"')
    (tmp / "mobilityd.toml").write_text(text)
    notify = NotifySocket(tmp)
    process = DaemonProcess(tmp / "mobilityd.toml", notify)
    try:
        notify.wait_for("READY", "1")
        yield tmp / "control.sock", process
    finally:
        process.stop()
        notify.close()


def ctl(capsys: pytest.CaptureFixture[str], socket: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--socket", str(socket), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_table_and_json(daemon: tuple[Path, DaemonProcess],
                               capsys: pytest.CaptureFixture[str]) -> None:
    socket, process = daemon
    code, out, _ = ctl(capsys, socket, "status")
    assert code == EXIT_OK
    assert f"(pid {process.proc.pid}," in out
    assert "identity   Bob <sip:bob@example.org> (device laptop)" in out
    assert "calls      0" in out  # the call machinery is integrated (no call yet)
    assert "device     pda  sip:bob@10.4.0.2:5060" in out
    code, out, _ = ctl(capsys, socket, "--json", "status")
    assert code == EXIT_OK
    assert json.loads(out)["devices"][1]["name"] == "pda"
    # options after the command work too
    assert main(["status", "--json", "--socket", str(socket)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["pid"] == process.proc.pid


def test_no_calls_yet(daemon: tuple[Path, DaemonProcess],
                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ctl(capsys, daemon[0], "calls")
    assert code == EXIT_OK and out.strip() == "no calls"


@pytest.mark.parametrize(("args", "error"), [
    (["answer", "c1"], "no-such-call"), (["reject", "c1"], "no-such-call"),
    (["hangup", "c1"], "no-such-call"), (["move", "c1", "pda"], "no-such-call"),
    # the PULL token goes to the PDA, which does not answer here (no such host)
    (["pull", "c1"], "refused")])
def test_operations_on_a_call_that_does_not_exist_are_refused(
        daemon: tuple[Path, DaemonProcess], capsys: pytest.CaptureFixture[str],
        args: list[str], error: str) -> None:
    code, _, err = ctl(capsys, daemon[0], *args)
    assert code == EXIT_REFUSED
    assert err.splitlines()[-1].startswith(f"mobilityctl: {args[0]} refused: {error}: ")


def test_place_shows_progress_then_the_refusal(daemon: tuple[Path, DaemonProcess],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # security policy "required" and no key for this peer: refused before any INVITE
    code, _, err = ctl(capsys, daemon[0], "place", "sip:mallory@192.0.2.9")
    assert code == EXIT_REFUSED
    lines = err.splitlines()
    assert lines[0] == "place sip:mallory@192.0.2.9..."
    assert lines[1].startswith("place failed after ")
    code, out, _ = ctl(capsys, daemon[0], "--json", "place", "sip:mallory@192.0.2.9")
    error = json.loads(out)["error"]
    assert error["code"] == "refused" and "no pre-shared key" in error["message"]


def test_bad_field_is_named_in_one_line(daemon: tuple[Path, DaemonProcess],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = ctl(capsys, daemon[0], "move", "c1", "toaster")
    assert code == EXIT_REFUSED
    assert err.strip().splitlines()[-1] == (
        "mobilityctl: move refused: no-such-device: no device 'toaster' in the configuration "
        "(devices: laptop, pda) (field 'device')")


def test_unreachable_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = ctl(capsys, tmp_path / "none.sock", "status")
    assert code == EXIT_UNREACHABLE
    assert err.strip() == (f"mobilityctl: cannot reach mobilityd: no control socket at "
                           f"{tmp_path / 'none.sock'} (is mobilityd running?)")
    assert main(["move", "c1"]) == EXIT_USAGE
    assert main(["frobnicate"]) == EXIT_USAGE
    capsys.readouterr()


_CTL_WITH_CTRL_C = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                    "from mobilityd.service.ctl import main; raise SystemExit(main())")


def test_watch_streams_events_until_interrupted(daemon: tuple[Path, DaemonProcess]) -> None:
    socket, process = daemon
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # started as from a terminal, where Ctrl-C reaches it: a suite launched in the
    # background inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt (the watch would not stop, through no fault of its own)
    watch = subprocess.Popen([sys.executable, "-c", _CTL_WITH_CTRL_C, "--socket",
                              str(socket), "--json", "watch", "--events", "config-reloaded"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # watch subscribes asynchronously: repeat SIGHUP until its first event is printed
        assert watch.stdout is not None
        for _ in range(50):
            process.signal(signal.SIGHUP)
            line = _readline_with_timeout(watch, 0.5)
            if line:
                break
        else:
            raise AssertionError("watch printed no event")
        event = json.loads(line)
        assert event["event"] == "config-reloaded" and event["data"]["ok"] is True
    finally:
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == EXIT_OK, err


def _readline_with_timeout(proc: subprocess.Popen[str], seconds: float) -> str:
    import selectors
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if sel.select(seconds):
            return proc.stdout.readline()
    return ""


def test_bash_completion(tmp_path: Path) -> None:
    script = tmp_path / "comp.sh"
    script.write_text(subprocess.run([sys.executable, "-m", "mobilityd.service.ctl",
                                      "completion", "bash"], capture_output=True, text=True,
                                     check=True, cwd=REPO, timeout=60).stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(["mobilityctl", *words])
        probe = (f'source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; '
                 f'_mobilityctl; printf "%s\\n" "${{COMPREPLY[@]}}"')
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                             check=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        return out.stdout.split()

    assert complete("st") == ["status"]
    assert set(complete("")) >= {"status", "calls", "move", "watch", "keys", "--json"}
    assert set(complete("keys", "")) == {"ca", "device-cert", "psk", "--help"}
    assert "--ca-key" in complete("keys", "device-cert", "--")
    assert set(complete("watch", "--")) >= {"--events", "--help", "--json", "--socket"}
