"""Test credentials: a CA and per-user RSA keys/certificates with SIP URI SANs."""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.session import PkCredentials

NOW = 1_795_000_000.0
DAY = 86400.0
PSK = bytes(range(32))


@functools.cache
def _ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = issue_certificate(key.public_key(), key, "Test CA", not_before=NOW - 365 * DAY,
                             not_after=NOW + 3650 * DAY, is_ca=True)
    return key, cert


@functools.cache
def credentials(uri: str, serial: int = 2) -> PkCredentials:
    """Key and certificate for ``uri`` (cached per process: RSA generation is slow)."""
    ca_key, ca = _ca()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = issue_certificate(key.public_key(), ca_key, uri, issuer=ca, sip_uri=uri,
                             not_before=NOW - 365 * DAY, not_after=NOW + 3650 * DAY,
                             serial=serial)
    return PkCredentials(key, cert, ca)


@functools.cache
def other_ca() -> x509.Certificate:
    """A second CA that signed nothing of ours (an untrusted trust anchor)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return issue_certificate(key.public_key(), key, "Other CA", not_before=NOW - 365 * DAY,
                             not_after=NOW + 3650 * DAY, is_ca=True)
