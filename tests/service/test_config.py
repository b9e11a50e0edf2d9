"""Configuration loading: every error names the file, the dotted key and the problem.

URIs are checked against RFC 3261 §19.1; key agreement modes are RFC 3830 §3.1-§3.3;
RTP ports follow RFC 3550 §11 (RTP even, RTCP odd).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilityd.service.config import (
    KeyAgreement,
    SecurityPolicy,
    load_config,
    parse_config,
    restart_required,
)
from mobilityd.service.errors import ConfigError, KeyFileError
from mobilityd.service.keyfiles import KeyFileProblem, Secret, read_psk
from tests.service.conftest import PSK_HEX, minimal_toml, write_secret


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def _with(tmp_path: Path, text: str) -> Path:
    write_secret(tmp_path / "alice.psk")
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_minimal_config_loads_with_defaults(make_config: Callable[..., Path],
                                            tmp_path: Path) -> None:
    config = load_config(make_config())
    assert config.identity.uri == "sip:bob@example.org"
    assert config.peers[0].key_agreement is KeyAgreement.PSK
    # relative key paths are relative to the configuration file's directory
    assert config.peers[0].psk_file == tmp_path / "alice.psk"
    assert config.security.policy is SecurityPolicy.REQUIRED
    assert config.mobility.grace_period == 30.0
    assert config.registrar is None
    assert config.peer("alice") is config.peer("sip:alice@10.1.0.2:5060")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "absent.toml")
    assert err.file == tmp_path / "absent.toml"
    assert "does not exist" in str(err)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    err = _error(_with(tmp_path, "[identity]\nuri = \n"))
    assert str(tmp_path / "c.toml") in str(err)
    assert "line 2" in str(err)


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[identity]\nuri = \"\xff\"\n")
    assert "UTF-8" in str(_error(path))


def test_missing_required_table_and_key(tmp_path: Path) -> None:
    assert _error(_with(tmp_path, "[sip]\nport = 5060\n")).key == "identity"
    err = _error(_with(tmp_path, "[identity]\ndisplay_name = 'x'\n"))
    assert err.key == "identity.uri"
    assert "required" in err.problem


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ("[sip]\nport = '5060'", "sip.port", "must be an integer, not a string"),
        ("[sip]\nport = true", "sip.port", "not a boolean"),
        ("[sip]\nport = 70000", "sip.port", "between 1 and 65535"),
        ("[sip]\nbind = 'localhost'", "sip.bind", "IPv4 or IPv6 address"),
        ("[sip]\ntransports = ['udp', 'sctp']", "sip.transports[1]", "'udp', 'tcp' or 'tls'"),
        ("[security]\npolicy = 'maybe'", "security.policy", "'required', 'preferred', 'off'"),
        ("[security]\nsrtp_suites = ['AES_256_NULL']", "security.srtp_suites[0]", "unknown"),
        ("[media]\nrtp_port_min = 20001", "media.rtp_port_min", "must be even"),
        ("[media]\nrtp_port_min = 20000\nrtp_port_max = 19000", "media.rtp_port_max",
         "greater than"),
        ("[mobility]\ngrace_period = -1", "mobility.grace_period", "between"),
        ("[mobility]\ninterface_preference = 'wlan0'", "mobility.interface_preference",
         "array of strings"),
        ("[log]\nlevel = 'loud'", "log.level", "must be one of"),
        ("[mobility]\ngrace_peroid = 10", "mobility.grace_peroid", "unknown key"),
        ("colour = 'blue'", "colour", "unknown key"),
        ("[registrar]\nuri = 'http://example.org'", "registrar.uri", "not a sip: or sips:"),
        ("[control]\nsocket = 5", "control.socket", "must be a string"),
        ("control = 5", "control", "must be a table"),
    ],
)
def test_bad_value_names_key_and_problem(tmp_path: Path, snippet: str, key: str,
                                         words: str) -> None:
    identity_and_peer = minimal_toml(tmp_path / "s.sock").split("[sip]")[0]
    if snippet.startswith("["):  # a table goes after the others
        text = identity_and_peer + "\n" + snippet + "\n"
    else:  # a top-level key must come before the first table
        text = snippet + "\n" + identity_and_peer
    err = _error(_with(tmp_path, text))
    assert err.key == key, str(err)
    assert words in err.problem, str(err)
    assert str(err).startswith(f"{tmp_path / 'c.toml'}: {key}: ")


@pytest.mark.parametrize(
    ("uri", "words"),
    [("bob@example.org", "no scheme"), ("sip:example.org", "needs a user part"),
     ("sip:bob@example.org:99999", "bad port"), ("tel:+4912345", "not a sip: or sips:"),
     ("sip:bob@exa mple.org", "white space")],
)
def test_identity_uri_is_checked(tmp_path: Path, uri: str, words: str) -> None:
    err = _error(_with(tmp_path, f"[identity]\nuri = '{uri}'\n"))
    assert err.key == "identity.uri"
    assert words in err.problem


def test_ipv6_and_gruu_contacts_are_accepted(tmp_path: Path) -> None:
    text = minimal_toml(tmp_path / "s.sock") + """
[[devices]]
name = "laptop"
contact = "sip:bob@[2001:db8::1]:5060"
[[devices]]
name = "pda"
contact = "sip:bob@example.org;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
"""
    text = text.replace('display_name = "Bob"',
                        'display_name = "Bob"\ndevice = "laptop"\ndevice_secret_file = "dev.key"')
    write_secret(tmp_path / "dev.key")
    config = load_config(_with(tmp_path, text))
    assert [d.name for d in config.devices] == ["laptop", "pda"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o610])
def test_too_open_key_file_is_refused_naming_file_and_mode(tmp_path: Path, mode: int) -> None:
    path = _with(tmp_path, minimal_toml(tmp_path / "s.sock"))
    os.chmod(tmp_path / "alice.psk", mode)
    err = _error(path)
    assert isinstance(err, KeyFileError)
    assert err.key == "peers[0].psk_file"
    assert err.path == tmp_path / "alice.psk"
    assert f"{mode:04o}" in str(err)
    assert "too open" in str(err)


def test_missing_and_non_regular_key_files(tmp_path: Path) -> None:
    path = _with(tmp_path, minimal_toml(tmp_path / "s.sock"))
    (tmp_path / "alice.psk").unlink()
    err = _error(path)
    assert isinstance(err, KeyFileError)
    assert "does not exist" in str(err)
    (tmp_path / "alice.psk").mkdir()
    assert "not a regular file" in str(_error(path))


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    peer = "\n[[peers]]\nname = 'alice'\nuri = 'sip:alice@b.example'\npsk_file = 'alice.psk'\n"
    err = _error(_with(tmp_path, minimal_toml(tmp_path / "s.sock") + peer))
    assert err.key == "peers[1].name"
    assert "used twice" in err.problem


def test_psk_peer_needs_psk_file_unless_security_is_off(tmp_path: Path) -> None:
    text = minimal_toml(tmp_path / "s.sock").replace('psk_file = "alice.psk"', "")
    err = _error(_with(tmp_path, text))
    assert err.key == "peers[0].psk_file"
    load_config(_with(tmp_path, text + "\n[security]\npolicy = 'off'\n"))


def test_pke_peer_needs_certificates(tmp_path: Path) -> None:
    text = minimal_toml(tmp_path / "s.sock").replace('psk_file = "alice.psk"',
                                                      'key_agreement = "pke"')
    assert _error(_with(tmp_path, text)).key == "peers[0].certificate"
    (tmp_path / "alice.crt").write_text("cert")
    text = text.replace('key_agreement = "pke"', 'key_agreement = "pke"\ncertificate = '
                        '"alice.crt"')
    err = _error(_with(tmp_path, text))
    assert err.key == "identity.certificate"
    assert "RFC 3830" in err.problem


def test_own_device_must_be_listed_and_secret_required(tmp_path: Path) -> None:
    devices = ("\n[[devices]]\nname = 'laptop'\ncontact = 'sip:bob@10.2.0.2'\n"
               "[[devices]]\nname = 'pda'\ncontact = 'sip:bob@10.4.0.2'\n")
    base = minimal_toml(tmp_path / "s.sock") + devices
    text = base.replace('display_name = "Bob"', 'display_name = "Bob"\ndevice = "phone"')
    err = _error(_with(tmp_path, text))
    assert err.key == "identity.device"
    assert "laptop, pda" in err.problem
    text = base.replace('display_name = "Bob"', 'display_name = "Bob"\ndevice = "pda"')
    assert _error(_with(tmp_path, text)).key == "identity.device_secret_file"


def test_restart_required_lists_changed_fixed_keys(tmp_path: Path) -> None:
    old = load_config(_with(tmp_path, minimal_toml(tmp_path / "s.sock")))
    text = minimal_toml(tmp_path / "other.sock").replace("port = 5099", "port = 5070")
    text = text.replace('level = "info"', 'level = "debug"')
    new = load_config(_with(tmp_path, text))
    assert restart_required(old, new) == ("sip.port", "control.socket")
    assert restart_required(old, old) == ()


def test_read_psk_accepts_hex_with_comments(tmp_path: Path) -> None:
    path = write_secret(tmp_path / "k", f"# alice-bob\n{PSK_HEX[:32]}\n{PSK_HEX[32:]}\n")
    secret = read_psk(path)
    assert secret.reveal() == bytes.fromhex(PSK_HEX)
    assert PSK_HEX not in repr(secret) and PSK_HEX not in str(secret)
    assert secret == Secret(bytes.fromhex(PSK_HEX))


@pytest.mark.parametrize(("text", "words"), [("zz\n", "not a hexadecimal"),
                                              ("0011\n", "at least 16")])
def test_read_psk_refuses_bad_content(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(KeyFileProblem, match=words):
        read_psk(write_secret(tmp_path / "k", text))


def test_psk_content_is_checked_at_load(tmp_path: Path) -> None:
    path = _with(tmp_path, minimal_toml(tmp_path / "s.sock"))
    write_secret(tmp_path / "alice.psk", "not hex at all\n")
    err = _error(path)
    assert isinstance(err, KeyFileError)
    assert err.key == "peers[0].psk_file"
    assert "hexadecimal" in err.problem


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(-1, 1e5),
                    st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3))
_KEYS = st.sampled_from(["uri", "name", "port", "bind", "policy", "level", "socket",
                         "psk_file", "contact", "grace_period", "transports", "srtp_suites",
                         "rtp_port_min", "device", "key_agreement", "username", "realm",
                         "password_file", "password", "x"])
_TABLES = st.sampled_from(["identity", "sip", "media", "mobility", "security", "control",
                           "log", "registrar", "ca", "peers", "devices", "zzz"])


@given(st.dictionaries(_TABLES, st.one_of(
    st.dictionaries(_KEYS, _VALUES, max_size=5),
    st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=2), _VALUES), max_size=6))
@settings(max_examples=300, deadline=None)
def test_only_config_errors_escape(document: dict[str, Any]) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(document, Path("/nonexistent/fuzz.toml"))
