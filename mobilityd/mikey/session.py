"""MIKEY key agreement, sans-I/O (RFC 3830 §3): initiators, the responder, error messages.

* :class:`PskInitiator` (§3.1), :class:`PkeInitiator` (§3.2), :class:`DhInitiator` (§3.3):
  ``start(now, rng) -> I_MESSAGE``, ``receive_response(data, now) -> CryptoContext``
  (``context`` is ready at once when no answer is expected).
* :class:`Responder`: ``receive(data, now, rng) -> KeyAgreementCompleted``.
* Update messages (§4.5): :meth:`CryptoContext.build_update` / ``verify_update``.
* Errors: :class:`MikeyError` carries the ERR type; :func:`error_response` /
  :func:`build_error_message` build the §5.1.2 error message.
"""

from __future__ import annotations

from mobilityd.mikey.context import CryptoContext, KeyMode, PreparedUpdate
from mobilityd.mikey.events import KeyAgreementCompleted, UpdateAccepted
from mobilityd.mikey.session_dh import DhInitiator
from mobilityd.mikey.session_error import (
    PeerReportedError,
    build_error_message,
    error_response,
    parse_error_message,
)
from mobilityd.mikey.session_pke import PkeInitiator
from mobilityd.mikey.session_policy import PkCredentials, Rng, SessionPolicy
from mobilityd.mikey.session_psk import InitiatorState, PskInitiator
from mobilityd.mikey.session_responder import PskLookup, Responder

__all__ = [
    "CryptoContext",
    "DhInitiator",
    "InitiatorState",
    "KeyAgreementCompleted",
    "KeyMode",
    "PeerReportedError",
    "PkCredentials",
    "PkeInitiator",
    "PreparedUpdate",
    "PskInitiator",
    "PskLookup",
    "Responder",
    "Rng",
    "SessionPolicy",
    "UpdateAccepted",
    "build_error_message",
    "error_response",
    "parse_error_message",
]
