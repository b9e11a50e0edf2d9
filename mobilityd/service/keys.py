"""Key material for ``mobilityctl keys``: PSKs, a local CA and device certificates.

The trust model is the thesis §3.3.5 local CA: one self-signed CA per organisation (here:
per user or household) signs a certificate for each device; the certificate's
subjectAltName URI is the user's SIP address-of-record, so a MIKEY peer using PKE or
signed DH (RFC 3830 §3.2, §3.3; certificates in the CERT payload, §6.7) can check that
the key speaks for that SIP identity. Keys are RSA because MIKEY-PKE encrypts the
envelope key with the responder's RSA key and SIGN uses RSA signatures (RFC 3830 §4.2.7,
§6.5).

Files: secrets (PSK, private keys) are created with mode 0600 and never overwritten
unless asked; certificates are 0644. The PSK format is the one
:func:`mobilityd.service.keyfiles.read_psk` reads (hex on one line).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from mobilityd.service.keyfiles import KeyFileProblem, check_private_file

PSK_BYTES = 32
RSA_BITS = (2048, 3072, 4096)
CA_DAYS = 3650
DEVICE_DAYS = 825


class KeyCreationError(Exception):
    """A key or certificate could not be created; ``path`` names the file at fault."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def write_psk(path: Path, rng: Callable[[int], bytes] = os.urandom, length: int = PSK_BYTES,
              *, force: bool = False) -> None:
    """Write a fresh PSK of ``length`` random bytes (from ``rng``) as hex, mode 0600."""
    if not 16 <= length <= 256:
        raise KeyCreationError(path, f"PSK length must be 16..256 bytes, not {length}")
    key = rng(length)
    _write(path, f"# mobilityd pre-shared key (RFC 3830 section 3.1), {length} bytes\n"
                 f"{key.hex()}\n".encode(), 0o600, force)


def create_ca(key_path: Path, cert_path: Path, name: str, *, now: datetime.datetime,
              days: int = CA_DAYS, bits: int = 3072, force: bool = False) -> x509.Certificate:
    """A self-signed local CA (basicConstraints CA, pathlen 0; keyCertSign, cRLSign)."""
    _check_bits(key_path, bits)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mobilityd local CA")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_pair(key, cert, key_path, cert_path, force)
    return cert


def create_device_cert(ca_key_path: Path, ca_cert_path: Path, sip_uri: str, device: str, *,
                       key_path: Path, cert_path: Path, now: datetime.datetime,
                       days: int = DEVICE_DAYS, bits: int = 2048,
                       force: bool = False) -> x509.Certificate:
    """A device certificate signed by the local CA, subjectAltName URI = ``sip_uri``."""
    _check_bits(key_path, bits)
    if not sip_uri.startswith(("sip:", "sips:")) or "@" not in sip_uri:
        raise KeyCreationError(cert_path, f"the subjectAltName must be the user's SIP "
                               f"address (sip:user@domain), not {sip_uri!r}")
    ca_key, ca_cert = _load_ca(ca_key_path, ca_cert_path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    public = key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mobilityd")])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days),
                             ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(sip_uri)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(key, cert, key_path, cert_path, force)
    return cert


def certificate_sip_uris(cert: x509.Certificate) -> list[str]:
    """The SIP URIs in a certificate's subjectAltName (what a peer checks)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith(("sip:", "sips:"))]


def _load_ca(key_path: Path, cert_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    try:
        check_private_file(key_path)
    except KeyFileProblem as exc:
        raise KeyCreationError(key_path, exc.problem) from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyCreationError(key_path, f"is not an unencrypted PEM private key: {exc}"
                               ) from None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyCreationError(cert_path, f"is not a PEM certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyCreationError(key_path, "is not an RSA key")
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise KeyCreationError(cert_path, f"does not belong to the key {key_path}")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise KeyCreationError(cert_path, "is not a CA certificate (basicConstraints CA:TRUE)")
    return key, cert


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_bits(path: Path, bits: int) -> None:
    if bits not in RSA_BITS:
        raise KeyCreationError(path, f"RSA size must be one of {RSA_BITS}, not {bits}")


def _write_pair(key: rsa.RSAPrivateKey, cert: x509.Certificate, key_path: Path,
                cert_path: Path, force: bool) -> None:
    for path in (key_path, cert_path):
        if path.exists() and not force:
            raise KeyCreationError(path, "already exists (use --force to replace it)")
    _write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600, force)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, force)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Create ``path`` with ``mode`` from the start (no window with looser permissions)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    if not force:
        flags |= os.O_EXCL
    try:
        if force and path.exists():
            path.unlink()  # a replaced file must not keep an older, looser mode
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise KeyCreationError(path, "already exists (use --force to replace it)") from None
    except OSError as exc:
        raise KeyCreationError(path, f"cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # the umask may have removed bits from a certificate
