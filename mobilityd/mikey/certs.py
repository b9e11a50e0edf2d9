"""X.509 certificates for MIKEY's public-key methods (RFC 3830 §4.3, §6.7, §6.8).

A peer's certificate (CERT payload, DER, §6.7) is accepted when, at the injected ``now``:

* it parses as DER X.509 and carries an RSA key (``INVALID_CERT`` otherwise);
* it was issued and signed directly by the configured CA, which is itself a CA
  (basicConstraints cA) — a chain of one CA and the leaf, the "trusted root" model
  of §4.3.2 (``INVALID_CERT`` otherwise);
* both are within their validity period (``INVALID_CERT``);
* its subjectAltName holds the user's SIP URI as a uniformResourceIdentifier (the
  identity MIKEY authenticates); when the message names the peer (ID payload or the
  identity SIP gave us) that URI must be among them (``AUTH_FAILURE``: the certificate
  does not authenticate the claimed identity).

CHASH (§6.8) is the SHA-1 (or MD5) hash of the DER certificate.

:func:`issue_certificate` is tooling for tests, the benchmark and a development CA; it
is not used by the protocol engine.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mobilityd.mikey.constants import ErrorType, HashFunc
from mobilityd.mikey.errors import MikeyError

__all__ = [
    "VerifiedCertificate",
    "cert_hash",
    "certificate_der",
    "check_cert_hash",
    "issue_certificate",
    "load_certificate",
    "sip_uris",
    "verify_peer_certificate",
]

_SIP_SCHEMES = ("sip:", "sips:")


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate (RFC 3830 §6.7); bad DER is ``INVALID_CERT``."""
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MikeyError(f"certificate does not parse: {exc}", ErrorType.INVALID_CERT) from None


def certificate_der(cert: x509.Certificate) -> bytes:
    """The DER encoding carried in a CERT payload."""
    return cert.public_bytes(serialization.Encoding.DER)


def sip_uris(cert: x509.Certificate) -> tuple[str, ...]:
    """The ``sip:``/``sips:`` URIs in the subjectAltName (uniformResourceIdentifier)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        uri
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.lower().startswith(_SIP_SCHEMES)
    )


def _same_sip_uri(a: str, b: str) -> bool:
    """Compare AORs: scheme and host are case-insensitive, the user part is not."""
    def split(uri: str) -> tuple[str, str, str]:
        scheme, _, rest = uri.partition(":")
        user, at, host = rest.rpartition("@")
        return scheme.lower(), user if at else "", (host if at else rest).lower()

    return split(a) == split(b)


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    """A peer certificate that passed :func:`verify_peer_certificate`."""

    cert: x509.Certificate = field(repr=False)
    der: bytes = field(repr=False)
    public_key: rsa.RSAPublicKey = field(repr=False)
    sip_uris: tuple[str, ...]


def _check_validity(cert: x509.Certificate, now: float, what: str) -> None:
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    if not start <= now <= end:
        raise MikeyError(f"{what} certificate is not valid at this time", ErrorType.INVALID_CERT)


_VERIFIED: dict[tuple[bytes, int], tuple[x509.Certificate, VerifiedCertificate]] = {}
_VERIFIED_MAX = 256


def verify_peer_certificate(
    der: bytes, ca: x509.Certificate, now: float, expected_uri: str | None = None
) -> VerifiedCertificate:
    """Verify a peer's certificate against ``ca`` at Unix time ``now`` (module docstring).

    The signature check (and parsing) of a certificate already verified against the same
    CA object is memoised — it cannot change — while validity dates and the expected
    identity are checked on every call.
    """
    hit = _VERIFIED.get((der, id(ca)))
    if hit is not None and hit[0] is ca:
        verified = hit[1]
        _check_validity(ca, now, "CA")
        _check_validity(verified.cert, now, "peer")
        _check_identity(verified.sip_uris, expected_uri)
        return verified
    verified = _verify_uncached(der, ca, now, expected_uri)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(der, id(ca))] = (ca, verified)
    return verified


def _check_identity(uris: tuple[str, ...], expected_uri: str | None) -> None:
    if expected_uri is not None and not any(_same_sip_uri(expected_uri, u) for u in uris):
        raise MikeyError(
            f"certificate does not authenticate {expected_uri}", ErrorType.AUTH_FAILURE
        )


def _verify_uncached(
    der: bytes, ca: x509.Certificate, now: float, expected_uri: str | None
) -> VerifiedCertificate:
    cert = load_certificate(der)
    _check_validity(ca, now, "CA")
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        constraints = None
    if constraints is None or not constraints.ca:
        raise MikeyError("configured CA certificate is not a CA", ErrorType.INVALID_CERT)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:  # name, key type, signature
        message = f"certificate not issued by the CA: {type(exc).__name__}"
        raise MikeyError(message, ErrorType.INVALID_CERT) from None
    _check_validity(cert, now, "peer")
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise MikeyError("certificate key is not RSA (RFC 3830 §4.2.5)", ErrorType.INVALID_CERT)
    uris = sip_uris(cert)
    if not uris:
        raise MikeyError("certificate names no SIP URI in subjectAltName", ErrorType.INVALID_CERT)
    _check_identity(uris, expected_uri)
    return VerifiedCertificate(cert=cert, der=der, public_key=public_key, sip_uris=uris)


def cert_hash(der: bytes, hash_func: HashFunc = HashFunc.SHA1) -> bytes:
    """The CHASH value (RFC 3830 §6.8): hash of the DER certificate."""
    if hash_func == HashFunc.SHA1:
        return hashlib.sha1(der).digest()
    if hash_func == HashFunc.MD5:
        return hashlib.md5(der, usedforsecurity=False).digest()
    raise MikeyError(f"hash function {hash_func} not supported", ErrorType.INVALID_HA)


def check_cert_hash(der: bytes, hash_func: HashFunc, digest: bytes) -> None:
    """The CHASH must name our certificate (§3.2); otherwise ``INVALID_CERT``."""
    if cert_hash(der, hash_func) != digest:
        raise MikeyError("CHASH does not match our certificate", ErrorType.INVALID_CERT)


def issue_certificate(
    subject_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    subject_cn: str,
    *,
    issuer: x509.Certificate | None = None,
    sip_uri: str | None = None,
    not_before: float,
    not_after: float,
    serial: int = 1,
    is_ca: bool = False,
) -> x509.Certificate:
    """Issue a certificate (tooling): a CA when ``issuer`` is None and ``is_ca``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    utc = datetime.UTC
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(datetime.datetime.fromtimestamp(not_before, utc))
        .not_valid_after(datetime.datetime.fromtimestamp(not_after, utc))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sip_uri is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(sip_uri)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())
