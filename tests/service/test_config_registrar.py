"""``[registrar]`` digest credentials (RFC 3261 §22.1, RFC 7616 §3.4): ``username``
(default: the AOR's user part), ``realm`` (optional) and ``password_file`` (a secret
file: refused when group/others may read it, as every key file). Every error names the
file, the dotted key and the problem; the password is never inline, never printed, and
a reload notices a changed password file (``registrar.password_file`` waits for a
restart, as the rest of ``[registrar]``)."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from mobilityd.service.config import load_config
from mobilityd.service.errors import ConfigError, KeyFileError
from mobilityd.service.events import RegistrationUpdated
from mobilityd.service.keyfiles import KeyFileProblem, read_password
from mobilityd.service.logging import JournalFormatter, RedactionFilter, log_event
from mobilityd.service.registrar import RegistrationReporter, credentials_view
from mobilityd.service.reload import registrar_restart_required
from tests.service.conftest import minimal_toml, write_secret

PASSWORD = "correct horse battery"


def _config(tmp_path: Path, registrar: str, password: str | None = PASSWORD,
            mode: int = 0o600) -> Path:
    write_secret(tmp_path / "alice.psk")
    if password is not None:
        write_secret(tmp_path / "registrar.pw", password + "\n", mode)
    path = tmp_path / "c.toml"
    path.write_text(minimal_toml(tmp_path / "s.sock") + "\n[registrar]\n"
                    'uri = "sip:registrar.example.org"\n' + registrar)
    return path


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_credentials_load_with_the_aor_user_as_default_username(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'password_file = "registrar.pw"\n'))
    registrar = config.registrar
    assert registrar is not None
    assert registrar.username == "bob"  # identity.uri = sip:bob@example.org
    assert registrar.realm is None  # any realm the registrar names
    assert registrar.password_file == tmp_path / "registrar.pw"
    assert registrar.password is not None
    assert registrar.password.reveal() == PASSWORD.encode()
    assert PASSWORD not in repr(config)  # the Secret prints as its length only


def test_explicit_username_and_realm(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'username = "bob.laptop"\nrealm = "example.org"\n'
                                           'password_file = "registrar.pw"\n'))
    assert config.registrar is not None
    assert (config.registrar.username, config.registrar.realm) == ("bob.laptop",
                                                                   "example.org")


def test_without_credentials_the_registrar_still_loads(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "", password=None))
    assert config.registrar is not None
    assert config.registrar.password is None and config.registrar.password_file is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_password_file_others_may_read_is_refused_naming_the_key(tmp_path: Path,
                                                                     mode: int) -> None:
    err = _error(_config(tmp_path, 'password_file = "registrar.pw"\n', mode=mode))
    assert isinstance(err, KeyFileError)
    assert err.key == "registrar.password_file"
    assert err.path == tmp_path / "registrar.pw"
    assert str(tmp_path / "c.toml") in str(err)
    assert f"{mode:04o}" in str(err) and "too open" in str(err)
    assert PASSWORD not in str(err)


@pytest.mark.parametrize(("registrar", "key", "words"), [
    ('password = "hunter22"\npassword_file = "registrar.pw"\n', "registrar.password",
     "password_file"),
    ('username = "bob"\n', "registrar.username", "password_file"),
    ('realm = "example.org"\n', "registrar.realm", "password_file"),
    ('username = "bob smith"\npassword_file = "registrar.pw"\n', "registrar.username",
     "not a user name"),
    ('realm = ""\npassword_file = "registrar.pw"\n', "registrar.realm", "must not be empty"),
    ('realm = "a\\"b"\npassword_file = "registrar.pw"\n', "registrar.realm",
     "not a digest realm"),
    ('username = 7\npassword_file = "registrar.pw"\n', "registrar.username", "string"),
    ('password_file = "missing.pw"\n', "registrar.password_file", "does not exist"),
])
def test_bad_credentials_name_the_key(tmp_path: Path, registrar: str, key: str,
                                      words: str) -> None:
    err = _error(_config(tmp_path, registrar))
    assert err.key == key
    assert words in str(err)
    assert PASSWORD not in str(err)


@pytest.mark.parametrize(("content", "words"), [
    (b"", "at least 6"), (b"short\n", "at least 6"),
    (b"first line\nsecond line\n", "more than one line"),
    (b"tab\there-ok?\n", "control characters"), (b"\xff\xfe password\n", "not UTF-8"),
    (b"x" * 2000, "at most 1024"),
])
def test_read_password_refuses_bad_content(tmp_path: Path, content: bytes,
                                           words: str) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileProblem, match=words):
        read_password(path)


@pytest.mark.parametrize("content", [b"s3cret-pw", b"s3cret-pw\n", b"s3cret-pw\r\n"])
def test_read_password_takes_the_first_line_without_its_newline(tmp_path: Path,
                                                                content: bytes) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    assert read_password(path).reveal() == b"s3cret-pw"


def test_a_changed_password_or_username_is_reported_for_a_restart(tmp_path: Path) -> None:
    path = _config(tmp_path, 'password_file = "registrar.pw"\n')
    started = load_config(path)
    assert registrar_restart_required(started, load_config(path)) == ()
    write_secret(tmp_path / "registrar.pw", "another password\n")  # same file, new content
    assert registrar_restart_required(started, load_config(path)) == (
        "registrar.password_file",)
    path.write_text(path.read_text().replace('password_file =',
                                             'username = "bob2"\nrealm = "r"\npassword_file ='))
    assert registrar_restart_required(started, load_config(path)) == (
        "registrar.username", "registrar.realm", "registrar.password_file")


def test_status_shows_the_credentials_but_never_the_password(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'realm = "example.org"\n'
                                           'password_file = "registrar.pw"\n'))
    assert config.registrar is not None
    assert credentials_view(config.registrar) == {
        "username": "bob", "realm": "example.org",
        "password_file": str(tmp_path / "registrar.pw")}
    reporter = RegistrationReporter(config.registrar)
    assert reporter.to_json() is None  # nothing to show before the first event
    reporter.offer(1, RegistrationUpdated(registrar=config.registrar.uri, state="failed",
                                          expires=600, reason="401 credentials rejected"))
    status = reporter.to_json()
    assert status is not None
    assert status["state"] == "failed" and status["reason"] == "401 credentials rejected"
    assert status["username"] == "bob" and status["realm"] == "example.org"
    assert PASSWORD not in repr(status)


def test_the_log_filter_redacts_a_password_as_text(tmp_path: Path) -> None:
    """Defence in depth: even a password that reached a log line by accident (inside an
    error text, or quoted in a field) is replaced, besides its hex and base64 forms."""
    tricky = 'pa"ss word\\x'
    path = tmp_path / "pw"
    write_secret(path, tricky + "\n")
    read_password(path)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JournalFormatter())
    handler.addFilter(RedactionFilter())
    logger = logging.getLogger("mobilityd.test.password")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.error("refused %s", tricky)
        log_event(logger, logging.ERROR, "x.failed", error=f"bad {tricky}",
                  hexed=tricky.encode().hex())
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert text.count("<redacted>") == 3, text
    assert "ss word" not in text and tricky.encode().hex() not in text
