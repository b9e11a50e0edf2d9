"""Loading MIKEY credentials from PEM files (as ``mobilityctl keys`` writes them).

A private key file readable by group or others is refused (ssh's rule, via
:func:`mobilityd.service.keyfiles.check_private_file`). Problems raise
:class:`CredentialError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.mikey.session import PkCredentials
from mobilityd.service.keyfiles import KeyFileProblem, check_private_file, read_psk

__all__ = ["CredentialError", "load_certificate", "load_pk_credentials", "load_psk"]


class CredentialError(Exception):
    """A key or certificate file cannot be used (local configuration error)."""


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CredentialError(f"{path}: not a readable PEM certificate ({exc})") from exc


def load_pk_credentials(key_path: Path, cert_path: Path, ca_path: Path) -> PkCredentials:
    """Our RSA key and certificate plus the CA we trust (RFC 3830 §4.3.2)."""
    try:
        check_private_file(key_path)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except KeyFileProblem as exc:
        raise CredentialError(str(exc)) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise CredentialError(f"{key_path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(f"{key_path}: MIKEY signatures here need an RSA key")
    return PkCredentials(key, load_certificate(cert_path), load_certificate(ca_path))


def load_psk(path: Path) -> bytes:
    """A pre-shared key file (hex, docs/configuration.md)."""
    try:
        return read_psk(path).reveal()
    except KeyFileProblem as exc:
        raise CredentialError(str(exc)) from exc
