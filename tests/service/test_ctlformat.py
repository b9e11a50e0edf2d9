"""mobilityctl's readable output and its client against a daemon that misbehaves."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilityd.service.ctl import EXIT_PROTOCOL, EXIT_UNREACHABLE, main
from mobilityd.service.ctlformat import calls_table, event_line, status_text, table

CALL = {"id": "c1", "peer": "sip:alice@example.net", "state": "established",
        "key_agreement": "psk", "srtp_suite": "AES_CM_128_HMAC_SHA1_80",
        "local": "10.2.0.2:16384", "remote": "10.1.0.2:16384",
        "moves": [{"kind": "roam", "from": "10.2.0.2", "to": "10.3.0.7", "gap_ms": 40.0},
                  {"kind": "transfer", "from": "laptop", "to": "pda", "gap_ms": 90.5}]}


def test_table_aligns_columns() -> None:
    assert table(["A", "BB"], [["xxx", "y"], ["z", "wwww"]]).splitlines() == [
        "A    BB", "xxx  y", "z    wwww"]


def test_calls_table() -> None:
    lines = calls_table([CALL]).splitlines()
    assert lines[0].split() == ["ID", "PEER", "STATE", "KEYS", "SRTP", "LOCAL", "REMOTE",
                                "MOVES"]
    assert lines[1].split() == ["c1", "sip:alice@example.net", "established", "psk",
                                "AES_CM_128_HMAC_SHA1_80", "10.2.0.2:16384", "10.1.0.2:16384",
                                "2"]
    assert calls_table([]) == "no calls"


def test_status_text_with_calls_and_pending_restart() -> None:
    status = {"version": "0.1.0", "pid": 7, "uptime_s": 3725.0, "protocol": 1,
              "identity": {"uri": "sip:bob@example.org", "display_name": "Bob",
                           "device": "pda"},
              "config": "/etc/mobilityd/mobilityd.toml", "security_policy": "required",
              "log_level": "info", "peers": [], "devices": [], "reloads": 2,
              "last_reload": {"at": 0.0, "ok": False, "error": "x: y: z"},
              "restart_required": ["sip.port"],
              "calls": {"available": True, "count": 1, "list": [CALL]},
              "network": {"available": True, "error": None, "resyncs": 0,
                          "addresses": [{"interface": "wlan0", "address": "10.2.0.2/24"}]}}
    text = status_text(status)
    assert "address    wlan0  10.2.0.2/24" in text
    broken = status_text({**status, "network": {"available": False, "error": "no netlink"}})
    assert "network    not watched: no netlink" in broken
    assert "mobilityd 0.1.0 (pid 7, up 1h02m, protocol v1)" in text
    assert "identity   Bob <sip:bob@example.org> (device pda)" in text
    assert "calls      1" in text
    assert "FAILED: x: y: z" in text
    assert "restart    needed for sip.port" in text
    assert text.splitlines()[-3:] == ["moves:", "  c1  roam     10.2.0.2 -> 10.3.0.7  gap 40.0 ms",
                                      "  c1  transfer laptop -> pda  gap 90.5 ms"]


def test_status_text_shows_the_registration() -> None:
    gruu = "sip:bob@example.org;gr=urn:uuid:4986c26c-5abb-5b3e-b4d9-59ffb19d8a55"
    text = status_text({"identity": {"uri": "sip:bob@example.org"}, "calls": {},
                        "registration": {"registrar": "sip:example.org",
                                         "state": "registered", "expires": 600,
                                         "contact": "sip:bob@10.2.0.2:5060", "gruu": gruu}})
    assert "registrar  sip:example.org  registered  sip:bob@10.2.0.2:5060" in text
    assert f"gruu       {gruu}" in text
    assert "registrar" not in status_text({"identity": {}, "calls": {}, "registration": None})


def test_status_text_shows_a_failure_reason_and_the_credentials_never_a_password() -> None:
    text = status_text({"identity": {"uri": "sip:bob@example.org"}, "calls": {},
                        "registration": {"registrar": "sip:example.org", "state": "failed",
                                         "expires": 600, "contact": None, "gruu": None,
                                         "reason": "401 credentials rejected; next attempt "
                                                   "in 30 s", "username": "bob",
                                         "realm": None, "password_file": "/etc/m/reg.pw"}})
    assert "registrar  sip:example.org  failed" in text
    assert "           401 credentials rejected; next attempt in 30 s" in text
    assert "auth       bob (any realm), password in /etc/m/reg.pw" in text


def test_event_line() -> None:
    line = event_line("call-moved", {"call": "c1", "gap_ms": 41.25, "old_address": None}, 0.5)
    assert line.endswith("call-moved           call=c1 gap_ms=41.25 old_address=-")


@pytest.fixture
def silent_daemon(tmp_path: Path) -> Iterator[Path]:
    """A socket that accepts one client and reads, but never answers."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        done.wait(30)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    done.set()
    thread.join()
    server.close()


def test_no_answer_in_time_is_a_protocol_error(silent_daemon: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--socket", str(silent_daemon), "--timeout", "0.3", "status"]) == EXIT_PROTOCOL
    assert "no answer from mobilityd in time" in capsys.readouterr().err


def test_garbage_answer_is_a_protocol_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbage.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    assert main(["--socket", str(path), "status"]) == EXIT_PROTOCOL
    thread.join()
    server.close()
    assert "protocol error: daemon sent invalid JSON" in capsys.readouterr().err


def test_hang_up_is_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hangup.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(1000)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    assert main(["--socket", str(path), "calls"]) == EXIT_UNREACHABLE
    thread.join()
    server.close()
    assert "closed the connection" in capsys.readouterr().err
