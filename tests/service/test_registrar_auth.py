"""The daemon's registration with digest credentials against a real Kamailio that
challenges every REGISTER (the shared SIP test template, ``tests/sip/peers.py``:
``www_challenge`` with ``qop=auth``, realm = the AOR's domain; RFC 3261 §22.2,
RFC 7616 §3.4 with MD5 and SHA-256).

* the right password -> ``registered``; ``status.registration`` shows the user name and
  the password file, never the password;
* a wrong password -> ``failed`` with a reason in the event, in status and in the log, and
  no tight retry loop (the next attempt is :data:`RETRY_AFTER_FAILURE` seconds away);
* no log record of either run, before or after the redaction filter, holds the password;
* the real daemon: registered, ``mobilityctl status`` shows the credentials (never the
  password), a changed password file is ``restart_required``, a password file others can
  read is a configuration error naming ``registrar.password_file`` (exit 78).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilityd.service.bus import EventBus
from mobilityd.service.calls_roaming import RoamingCallManager
from mobilityd.service.config import load_config
from mobilityd.service.events import RegistrationUpdated
from mobilityd.service.logging import FIELDS_ATTR, JournalFormatter, RedactionFilter
from mobilityd.service.registrar import RegistrationReporter
from mobilityd.sip.registration import RETRY_AFTER_FAILURE
from tests.service.conftest import write_secret
from tests.service.daemon_harness import REPO, DaemonProcess, NotifySocket, ask
from tests.sip.peers import Kamailio, free_port, run_kamailio

pytestmark = pytest.mark.interop

IP = "127.0.0.1"
DOMAIN = "mobilityd.test"
PASSWORD = "bob-registrar-secret"


@pytest.fixture(scope="module", params=["MD5", "SHA-256"])
def kamailio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Kamailio]:
    directory = tmp_path_factory.mktemp(f"kamailio-register-auth-{request.param}")
    with run_kamailio(directory, ip=IP, domain=DOMAIN, users={"bob": PASSWORD},
                      algorithm=request.param) as running:
        yield running


class _Records(logging.Handler):
    """Every ``mobilityd.*`` record at debug level, raw (as emitted) and as the daemon's
    stderr handler would print it (redaction filter + journald formatter)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.raw: list[str] = []
        self.printed = io.StringIO()
        self._printer = logging.StreamHandler(self.printed)
        self._printer.setFormatter(JournalFormatter())
        self._printer.addFilter(RedactionFilter())

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, FIELDS_ATTR, None)
        self.raw.append(f"{record.getMessage()} {fields!r} {record.exc_info!r}")
        self._printer.handle(logging.makeLogRecord(record.__dict__))


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("mobilityd")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def bob_config(tmp_path: Path, kamailio: Kamailio, password: str) -> Path:
    write_secret(tmp_path / "alice.psk")
    write_secret(tmp_path / "registrar.pw", password + "\n")
    path = tmp_path / "bob.toml"
    path.write_text(f"""
[identity]
uri = "sip:bob@{DOMAIN}"
device = "laptop"

[[peers]]
name = "alice"
uri = "sip:alice@{DOMAIN}"
psk_file = "alice.psk"

[registrar]
uri = "sip:{kamailio.ip}:{kamailio.udp_port}"
expires = 120
password_file = "registrar.pw"

[sip]
bind = "{IP}"
port = {free_port(ip=IP)}

[control]
socket = "{tmp_path / 'bob.sock'}"
""")
    return path


async def _run_until(tmp_path: Path, kamailio: Kamailio, password: str, final: str,
                     path: Path | None = None
                     ) -> tuple[RoamingCallManager, RegistrationReporter,
                                list[RegistrationUpdated]]:
    """Start the manager (``path``, else :func:`bob_config`) and collect
    ``registration-updated`` until state ``final``."""
    config = load_config(path or bob_config(tmp_path, kamailio, password))
    bus, reporter = EventBus(), RegistrationReporter(config.registrar)
    bus.attach(reporter)
    events = bus.subscribe(["registration-updated"])
    manager = RoamingCallManager(config, bus)
    await manager.start()
    seen: list[RegistrationUpdated] = []
    async with asyncio.timeout(15):
        while not seen or seen[-1].state != final:
            got = await events.next()
            assert isinstance(got, tuple) and isinstance(got[1], RegistrationUpdated)
            seen.append(got[1])
    return manager, reporter, seen


def _assert_never_logged(password: str, records: _Records) -> None:
    assert records.raw, "nothing was logged at debug level"
    for line in records.raw:
        assert password not in line and password.encode().hex() not in line, line
    assert password not in records.printed.getvalue()


async def test_the_right_password_registers(tmp_path: Path, kamailio: Kamailio,
                                            records: _Records) -> None:
    manager, reporter, seen = await _run_until(tmp_path, kamailio, PASSWORD, "registered")
    try:
        assert "failed" not in [event.state for event in seen]
        status = reporter.to_json()
        assert status is not None
        assert status["state"] == "registered" and status["reason"] is None
        assert status["username"] == "bob" and status["realm"] is None
        assert status["password_file"] == str(tmp_path / "registrar.pw")
        assert PASSWORD not in repr(status)
    finally:
        await manager.close()
    _assert_never_logged(PASSWORD, records)


async def test_a_wrong_password_fails_with_a_reason_and_no_retry_loop(
        tmp_path: Path, kamailio: Kamailio, records: _Records) -> None:
    wrong = "not-the-password"
    manager, reporter, seen = await _run_until(tmp_path, kamailio, wrong, "failed")
    try:
        failed = seen[-1]
        assert failed.reason == "401 credentials rejected; next attempt in 30 s"
        status = reporter.to_json()
        assert status is not None and status["state"] == "failed"
        assert status["reason"] == failed.reason
        printed = records.printed.getvalue()
        assert "registration.updated" in printed and "state=failed" in printed
        assert failed.reason.split(";")[0] in printed
        # no tight loop: nothing more happens for a while, the retry is 30 s away
        registration = manager.registration
        assert registration is not None
        retry_at = registration.client.get_timer()
        assert retry_at is not None
        assert retry_at - registration.endpoint.now() > RETRY_AFTER_FAILURE - 5
        await asyncio.sleep(1.5)
        assert registration.client.state.value == "failed"
        assert reporter.latest is failed  # no registration-updated since
    finally:
        await manager.close()
    _assert_never_logged(wrong, records)


async def test_without_a_password_file_the_challenged_registration_fails(
        tmp_path: Path, kamailio: Kamailio) -> None:
    """The control case: this registrar does challenge, so the test above is only
    green because the credentials were sent."""
    path = bob_config(tmp_path, kamailio, PASSWORD)
    path.write_text(path.read_text().replace('password_file = "registrar.pw"\n', ""))
    config = load_config(path)
    assert config.registrar is not None and config.registrar.password is None
    bus = EventBus()
    events = bus.subscribe(["registration-updated"])
    manager = RoamingCallManager(config, bus)
    await manager.start()
    try:
        async with asyncio.timeout(15):
            while True:
                got = await events.next()
                assert isinstance(got, tuple) and isinstance(got[1], RegistrationUpdated)
                assert got[1].state != "registered"
                if got[1].state == "failed":
                    break
        assert got[1].reason is not None and "no credentials" in got[1].reason
    finally:
        await manager.close()


def test_the_daemon_registers_shows_the_credentials_and_never_logs_the_password(
        tmp_path: Path, kamailio: Kamailio) -> None:
    """The real ``mobilityd`` at debug level: registered through the challenge,
    ``mobilityctl status`` shows user and password file, a SIGHUP after the password
    file changed reports ``registrar.password_file`` for a restart, and no line of its
    stderr holds the old or the new password."""
    config = bob_config(tmp_path, kamailio, PASSWORD)
    config.write_text(config.read_text() + '\n[log]\nlevel = "debug"\n')
    control = tmp_path / "bob.sock"
    notify = NotifySocket(tmp_path)
    daemon = DaemonProcess(config, notify)
    new_password = "a-new-registrar-password"
    try:
        notify.wait_for("READY", "1")
        deadline = time.monotonic() + 15
        while True:
            registration = ask(control, op="status")["result"]["registration"]
            if registration is not None and registration["state"] == "registered":
                break
            assert time.monotonic() < deadline, registration
            time.sleep(0.1)
        assert registration["username"] == "bob"
        assert registration["password_file"] == str(tmp_path / "registrar.pw")
        shown = subprocess.run(
            [sys.executable, "-m", "mobilityd.service.ctl", "--socket", str(control),
             "status"], capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert shown.returncode == 0, shown.stderr
        assert f"auth       bob (any realm), password in {tmp_path / 'registrar.pw'}" in (
            shown.stdout)
        assert PASSWORD not in shown.stdout
        write_secret(tmp_path / "registrar.pw", new_password + "\n")
        daemon.signal(signal.SIGHUP)
        assert "restart needed for registrar.password_file" in notify.wait_for(
            "READY", "1")["STATUS"]
        status = ask(control, op="status")["result"]
        assert status["restart_required"] == ["registrar.password_file"]
        assert status["registration"]["state"] == "registered"  # keeps running as started
        code, err = daemon.stop()
    finally:
        daemon.stop()
        notify.close()
    assert code == 0, err
    assert "<7>" in err and "registration.updated" in err  # debug lines were written
    for password in (PASSWORD, new_password):
        assert password not in err
        assert password.encode().hex() not in err


def test_the_daemon_refuses_a_password_file_others_can_read(tmp_path: Path,
                                                           kamailio: Kamailio) -> None:
    config = bob_config(tmp_path, kamailio, PASSWORD)
    os.chmod(tmp_path / "registrar.pw", 0o644)
    daemon = DaemonProcess(config, None)
    code, err = daemon.finish()
    assert code == 78, err  # EX_CONFIG
    assert f"{config}: registrar.password_file:" in err
    assert "permissions 0644 are too open" in err and PASSWORD not in err


async def test_a_challenge_for_another_realm_is_not_answered(
        tmp_path: Path, kamailio: Kamailio) -> None:
    """``[registrar] realm``: the password belongs to that realm (RFC 7616 §3.3); this
    registrar's realm is the AOR's domain, so a configured other realm fails."""
    path = bob_config(tmp_path, kamailio, PASSWORD)
    path.write_text(path.read_text().replace('password_file =',
                                             'realm = "other.example"\npassword_file ='))
    manager, reporter, seen = await _run_until(tmp_path, kamailio, PASSWORD, "failed",
                                               path=path)
    try:
        assert seen[-1].reason == (f"401 challenge for realm {DOMAIN!r}, not the "
                                   "configured realm 'other.example'; next attempt in 30 s")
        status = reporter.to_json()
        assert status is not None and status["realm"] == "other.example"
    finally:
        await manager.close()


async def test_the_configured_realm_registers(tmp_path: Path, kamailio: Kamailio) -> None:
    path = bob_config(tmp_path, kamailio, PASSWORD)
    path.write_text(path.read_text().replace('password_file =',
                                             f'realm = "{DOMAIN}"\npassword_file ='))
    manager, _, seen = await _run_until(tmp_path, kamailio, PASSWORD, "registered",
                                        path=path)
    await manager.close()
    assert "failed" not in [event.state for event in seen]
