"""``mobilityctl keys``: PSK files, the local CA and device certificates (thesis §3.3.5
local-CA model; RFC 3830 §3.2/§3.3 need RSA certificates naming the SIP identity)."""

from __future__ import annotations

import datetime
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mobilityd.service.ctl import EXIT_KEYS, EXIT_OK, main
from mobilityd.service.keyfiles import read_psk
from mobilityd.service.keys import (
    KeyCreationError,
    certificate_sip_uris,
    create_ca,
    create_device_cert,
    write_psk,
)

NOW = datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_psk_is_random_hex_mode_0600_and_readable_by_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "alice.psk"
    write_psk(path, rng=lambda n: bytes(range(n)))
    assert _mode(path) == 0o600
    assert read_psk(path).reveal() == bytes(range(32))
    with pytest.raises(KeyCreationError, match="already exists"):
        write_psk(path)
    write_psk(path, force=True)
    assert read_psk(path).reveal() != bytes(range(32))
    with pytest.raises(KeyCreationError, match=r"16\.\.256"):
        write_psk(tmp_path / "short.psk", length=8)


def test_psk_mode_does_not_depend_on_the_umask(tmp_path: Path) -> None:
    import os
    old = os.umask(0)
    try:
        write_psk(tmp_path / "k.psk")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k.psk") == 0o600


def test_ca_and_device_certificate(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca.key", tmp_path / "ca.crt", "Bob's devices", now=NOW,
                   bits=2048)
    assert _mode(tmp_path / "ca.key") == 0o600 and _mode(tmp_path / "ca.crt") == 0o644
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert = create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:bob@example.org",
                              "laptop", key_path=tmp_path / "laptop.key",
                              cert_path=tmp_path / "laptop.crt", now=NOW)
    assert _mode(tmp_path / "laptop.key") == 0o600
    assert certificate_sip_uris(cert) == ["sip:bob@example.org"]
    assert cert.issuer == ca.subject
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = ca.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                  cert.signature_hash_algorithm)  # raises if the CA did not sign it
    assert cert.not_valid_after_utc <= ca.not_valid_after_utc


@pytest.mark.interop
def test_openssl_verifies_the_device_certificate(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is missing: apt-get install openssl"
    create_ca(tmp_path / "ca.key", tmp_path / "ca.crt", "CA", now=datetime.datetime.now(
        datetime.UTC), bits=2048)
    create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:bob@example.org", "pda",
                       key_path=tmp_path / "pda.key", cert_path=tmp_path / "pda.crt",
                       now=datetime.datetime.now(datetime.UTC))
    out = subprocess.run([openssl, "verify", "-CAfile", str(tmp_path / "ca.crt"),
                          str(tmp_path / "pda.crt")], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    text = subprocess.run([openssl, "x509", "-in", str(tmp_path / "pda.crt"), "-noout",
                           "-ext", "subjectAltName"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "URI:sip:bob@example.org" in text


def test_device_certificate_refusals(tmp_path: Path) -> None:
    create_ca(tmp_path / "ca.key", tmp_path / "ca.crt", "CA", now=NOW, bits=2048)
    create_ca(tmp_path / "other.key", tmp_path / "other.crt", "Other", now=NOW, bits=2048)
    common: dict[str, Any] = {"key_path": tmp_path / "d.key", "cert_path": tmp_path / "d.crt",
                              "now": NOW}
    with pytest.raises(KeyCreationError, match="SIP address"):
        create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "bob@example.org", "d",
                           **common)
    with pytest.raises(KeyCreationError, match="does not belong"):
        create_device_cert(tmp_path / "other.key", tmp_path / "ca.crt", "sip:b@x", "d",
                           **common)
    (tmp_path / "ca.key").chmod(0o644)
    with pytest.raises(KeyCreationError, match="too open"):
        create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:b@x", "d", **common)
    (tmp_path / "ca.key").chmod(0o600)
    create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:b@x", "d", **common)
    ok = tmp_path / "d.crt"
    with pytest.raises(KeyCreationError, match="not a CA"):
        create_device_cert(tmp_path / "d.key", ok, "sip:b@x", "e",
                           key_path=tmp_path / "e.key", cert_path=tmp_path / "e.crt", now=NOW)
    with pytest.raises(KeyCreationError, match="already exists"):
        create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:b@x", "d", **common)


def test_mobilityctl_keys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "psk", str(tmp_path / "a.psk")]) == EXIT_OK
    assert "mode 0600" in capsys.readouterr().out
    assert main(["keys", "psk", str(tmp_path / "a.psk")]) == EXIT_KEYS
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "ca", "--key", str(tmp_path / "ca.key"), "--cert",
                 str(tmp_path / "ca.crt"), "--bits", "2048"]) == EXIT_OK
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey) and ca_key.key_size == 2048
    assert main(["--json", "keys", "device-cert", "--ca-key", str(tmp_path / "ca.key"),
                 "--ca-cert", str(tmp_path / "ca.crt"), "--uri", "sip:bob@example.org",
                 "--device", "laptop", "--key", str(tmp_path / "l.key"), "--cert",
                 str(tmp_path / "l.crt")]) == EXIT_OK
    assert '"created"' in capsys.readouterr().out
    cert = x509.load_pem_x509_certificate((tmp_path / "l.crt").read_bytes())
    assert certificate_sip_uris(cert) == ["sip:bob@example.org"]


def test_mikey_accepts_the_device_certificate_for_the_user(tmp_path: Path) -> None:
    """The certificate the CLI makes is what mobilityd.mikey.certs verifies for PKE/DH
    (RFC 3830 §4.3: issued by the trusted CA, subjectAltName = the SIP identity)."""
    from cryptography.hazmat.primitives import serialization

    from mobilityd.mikey.certs import verify_peer_certificate
    from mobilityd.mikey.errors import MikeyError

    ca = create_ca(tmp_path / "ca.key", tmp_path / "ca.crt", "CA", now=NOW, bits=2048)
    cert = create_device_cert(tmp_path / "ca.key", tmp_path / "ca.crt", "sip:bob@example.org",
                              "laptop", key_path=tmp_path / "l.key",
                              cert_path=tmp_path / "l.crt", now=NOW)
    der = cert.public_bytes(serialization.Encoding.DER)
    at = (NOW + datetime.timedelta(days=1)).timestamp()
    verified = verify_peer_certificate(der, ca, at, expected_uri="sip:bob@example.org")
    assert verified.sip_uris == ("sip:bob@example.org",)
    with pytest.raises(MikeyError):
        verify_peer_certificate(der, ca, at, expected_uri="sip:mallory@example.org")
