"""Events of the MIKEY key-agreement layer (frozen dataclasses, past-tense names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mobilityd.mikey.context import CryptoContext

__all__ = ["KeyAgreementCompleted", "UpdateAccepted"]


@dataclass(frozen=True, slots=True)
class KeyAgreementCompleted:
    """A responder accepted an I_MESSAGE: the new context and the R_MESSAGE to send.

    ``reply`` is None when no answer is due (PSK/PKE without the V flag, RFC 3830 §3.1).
    """

    context: CryptoContext
    reply: bytes | None


@dataclass(frozen=True, slots=True)
class UpdateAccepted:
    """An authenticated update message (RFC 3830 §4.5) replaced a context.

    ``reply`` is the verification (PSK-style) or signed DH response to send back when
    the update set the V flag, else None.
    """

    previous: CryptoContext
    context: CryptoContext
    reply: bytes | None = None
