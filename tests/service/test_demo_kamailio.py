"""``mobilityd demo --kamailio`` (issue 7): Kamailio as registrar and Record-Route proxy
in a fourth namespace; the daemons register with GRUUs (RFC 5627) through a digest
challenge (RFC 3261 §22.2, their ``[registrar] password_file``), the call and its
re-INVITEs go through the proxy (RFC 3261 §16.6, §16.12), the roam re-REGISTERs
(§10.2.2), the transfers target the devices' GRUUs. The end-to-end test reads Kamailio's
own log of what it relayed; the unit tests cover the configuration rewrite, the log
checks and the missing-Kamailio message."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from mobilityd.service import demo
from mobilityd.service.demo_agents import find_agents_dir
from mobilityd.service.demo_kamailio import (
    MISSING_KAMAILIO,
    ProxyLog,
    ensure_passwords,
    kamailio_binary,
    password_file,
    proxy_failures,
    registrar_overrides,
    render_config,
)
from mobilityd.service.keyfiles import read_password
from mobilityd.service.registrar import expected_gruu, instance_id
from tests.service.test_demo_png import read_png

REPO = Path(__file__).resolve().parents[2]
BOB = "sip:bob@example.org"
DEVICES = {"laptop": BOB, "pda": BOB}


@pytest.mark.netns
@pytest.mark.interop
def test_demo_through_kamailio_passes_its_checks(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    scratch = Path(tempfile.mkdtemp(prefix="md-"))  # short: control socket paths live here
    try:
        done = subprocess.run([sys.executable, "-m", "mobilityd", "demo", "--kamailio",
                               "--keep", "--out", str(out)], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path, check=False,
                              env={**os.environ, "PYTHONPATH": str(REPO),
                                   "TMPDIR": str(scratch)})
        # the registrar challenged every REGISTER (RFC 3261 §22.2): the daemons answered
        # with their password files, which no log line of theirs shows
        passwords = [p.read_text().strip()
                     for p in scratch.glob("mobilityd-demo-*/registrar-passwords/*")]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(passwords) == 2
    for log in out.glob("*.log"):
        text = log.read_text(errors="replace")
        assert not any(password in text for password in passwords), log
    assert "register the three daemons at Kamailio (GRUU)" in done.stdout
    assert f"GRUU {expected_gruu(BOB, 'pda')}" in done.stdout
    assert "checks: all passed" in done.stdout
    facts = json.loads((out / "summary.json").read_text())
    assert facts["ok"] is True and len(facts["steps"]) == 8
    assert [m["kind"] for m in facts["moves"]["correspondent"]].count("transfer") == 2
    relayed = ProxyLog(out / "kamailio.log")
    assert proxy_failures(relayed) == []
    assert relayed.count(r"^challenged REGISTER sip:bob@example\.org ") >= 2
    assert relayed.count(r"^challenged REGISTER sip:alice@example\.net ") >= 1
    # the REFER's target reached the PDA's registered contact through the proxy
    assert relayed.count(r"^initial INVITE .* for " + re.escape(expected_gruu(BOB, "pda"))
                         + r" to sip:bob@10\.4\.0\.2:5060$") == 1
    width, height, _ = read_png((out / "timeline.png").read_bytes())
    assert width > 1000 and height > 300


def test_missing_kamailio_is_named_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("as non-root the demo re-executes itself first (test_demo_userns)")
    monkeypatch.setattr(demo, "kamailio_binary", lambda: None)
    assert demo.main(["--kamailio", "--out", str(tmp_path / "out")]) == 2
    assert MISSING_KAMAILIO in capsys.readouterr().err
    assert "Debian package 'kamailio'" in MISSING_KAMAILIO
    assert not (tmp_path / "out").exists()


def _agent(role: str) -> str:
    return (find_agents_dir() / role / "mobilityd.toml").read_text()


def test_laptop_configuration_for_the_proxy() -> None:
    text = registrar_overrides(_agent("laptop"), BOB, DEVICES)
    data = tomllib.loads(text)
    assert data["registrar"] == {"uri": "sip:example.org", "expires": 600}
    assert [(d["name"], d["contact"]) for d in data["devices"]] == [
        ("laptop", expected_gruu(BOB, "laptop")), ("pda", expected_gruu(BOB, "pda"))]
    assert [d["handoff"] for d in data["devices"]] == ["10.2.0.2:5070", "10.4.0.2:5070"]
    assert [p.get("contact") for p in data["peers"]] == [None]  # Alice: via her domain


def test_correspondent_configuration_for_the_proxy() -> None:
    data = tomllib.loads(registrar_overrides(_agent("correspondent"), "sip:alice@example.net",
                                             {}))
    assert data["registrar"]["uri"] == "sip:example.net"
    assert [p.get("contact") for p in data["peers"]] == [None]
    assert "devices" not in data


def test_gruu_is_the_aor_with_the_stable_instance() -> None:
    """RFC 5627 §3.1: the public GRUU is the AOR plus ``gr`` = the instance ID."""
    assert instance_id(BOB, "pda") == instance_id(BOB, "pda")
    assert instance_id(BOB, "pda") != instance_id(BOB, "laptop")
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                        r"[0-9a-f]{12}", instance_id(BOB, "pda"))  # RFC 4122 §4.3 version 5
    assert expected_gruu(BOB, "pda") == f"{BOB};gr={instance_id(BOB, 'pda')}"


def test_kamailio_configuration_serves_both_domains(tmp_path: Path) -> None:
    text = render_config(tmp_path, ip="10.5.0.2", port=5060).read_text()
    assert "listen=udp:10.5.0.2:5060" in text and "listen=tcp:10.5.0.2:5060" in text
    assert 'alias="example.org"' in text and 'alias="example.net"' in text
    assert 'modparam("registrar", "gruu_enabled", 1)' in text
    assert "@@" not in text


def test_each_user_gets_a_private_random_password_file(tmp_path: Path) -> None:
    passwords = ensure_passwords(tmp_path)
    assert set(passwords) == {"alice", "bob"} and passwords["alice"] != passwords["bob"]
    for user, password in passwords.items():
        path = password_file(tmp_path, user)
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert read_password(path).reveal() == password.encode()
    assert ensure_passwords(tmp_path) == passwords  # the second caller reads the same


def test_the_daemons_name_their_password_file(tmp_path: Path) -> None:
    path = password_file(tmp_path, "bob")
    data = tomllib.loads(registrar_overrides(_agent("laptop"), BOB, DEVICES, path))
    assert data["registrar"] == {"uri": "sip:example.org", "expires": 600,
                                 "password_file": str(path)}


def test_kamailio_challenges_register_for_users_with_a_password(tmp_path: Path) -> None:
    passwords = ensure_passwords(tmp_path)
    path = render_config(tmp_path, ip="10.5.0.2", port=5060, passwords=passwords)
    text = path.read_text()
    assert os.stat(path).st_mode & 0o077 == 0  # it holds the passwords
    for user, password in passwords.items():
        assert f'if ($tU == "{user}") {{ $var(password) = "{password}"; }}' in text
    assert 'www_challenge("$td", "1")' in text and "@@" not in text
    binary = kamailio_binary()
    if binary is None:
        pytest.fail("kamailio not found: install the Debian package 'kamailio'")
    check = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True,
                           check=False, timeout=60)
    assert check.returncode == 0, check.stderr[-2000:]


def test_proxy_checks_name_what_did_not_go_through_the_proxy(tmp_path: Path) -> None:
    log = tmp_path / "kamailio.log"
    log.write_text(" 0(1) NOTICE: <script>: mobilityd-demo: registered sip:bob@example.org "
                   "contact <sip:bob@10.2.0.2:5060> from 10.2.0.2\n"
                   "unrelated line\n")
    failures = proxy_failures(ProxyLog(log))
    assert any("the three daemons registered: 1 matching" in f for f in failures)
    assert any("re-registered from Wi-Fi B: 0" in f for f in failures)
    assert any("PDA's GRUU" in f for f in failures)
    assert ProxyLog(tmp_path / "missing.log").lines() == []
