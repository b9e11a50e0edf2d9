"""TLS contexts for SIP over TLS (RFC 3261 §26.2.1, §19.1.2 ``sips:``; RFC 5922 names).

Server contexts present a certificate chain; client contexts verify the peer against a
configured CA and its host name (``check_hostname``), never trusting by default.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def server_context(certfile: Path | str, keyfile: Path | str,
                   cafile: Path | str | None = None) -> ssl.SSLContext:
    """A TLS >= 1.2 server context; with ``cafile`` it also accepts client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(cafile: Path | str, certfile: Path | str | None = None,
                   keyfile: Path | str | None = None) -> ssl.SSLContext:
    """A verifying TLS >= 1.2 client context trusting only ``cafile``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context
