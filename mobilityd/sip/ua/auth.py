"""Answering a 401/407 to our INVITE or re-INVITE with digest credentials
(RFC 3261 §22.2, §22.3; RFC 7616 §3.4).

Pure functions: the caller supplies the ``DigestClient`` (which draws its cnonce from
the injected rng) and the new Via.  The retried request is the challenged one with the
same Call-ID, From tag and body, CSeq + 1, a new branch (§8.1.3.5) and one
``Authorization`` / ``Proxy-Authorization`` answering the challenge (§22.2, §22.3).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from mobilityd.sip.digest import DigestAlgorithm, DigestChallenge, DigestClient, DigestError
from mobilityd.sip.headers import Headers
from mobilityd.sip.message import Request, Response


class ChallengeStatus(IntEnum):
    """The two status codes that carry a digest challenge (RFC 3261 §21.4.2, §21.4.8)."""

    UNAUTHORIZED = 401  # WWW-Authenticate from the UAS or a registrar
    PROXY_AUTHENTICATION_REQUIRED = 407  # Proxy-Authenticate from a proxy


#: RFC 7616 §3.3 stale=true retries per call: a server that keeps calling every nonce
#: stale must not make us loop.
MAX_STALE_RETRIES: Final = 2

_CHALLENGE_HEADER = {
    ChallengeStatus.UNAUTHORIZED: "WWW-Authenticate",
    ChallengeStatus.PROXY_AUTHENTICATION_REQUIRED: "Proxy-Authenticate",
}
_ANSWER_HEADER = {
    ChallengeStatus.UNAUTHORIZED: "Authorization",
    ChallengeStatus.PROXY_AUTHENTICATION_REQUIRED: "Proxy-Authorization",
}


def is_challenge(status: int) -> bool:
    return status in (ChallengeStatus.UNAUTHORIZED,
                      ChallengeStatus.PROXY_AUTHENTICATION_REQUIRED)


def pick_challenge(values: list[str]) -> DigestChallenge | None:
    """Prefer SHA-256 over MD5 among the challenges we can parse (RFC 7616 §3.7);
    ``None`` when none is a usable Digest challenge."""
    parsed: list[DigestChallenge] = []
    for value in values:
        try:
            parsed.append(DigestChallenge.parse(value))
        except DigestError:
            continue
    sha256 = (DigestAlgorithm.SHA_256, DigestAlgorithm.SHA_256_SESS)
    parsed.sort(key=lambda c: 0 if c.algorithm in sha256 else 1)
    return parsed[0] if parsed else None


def authorization_for(
    request: Request, response: Response, client: DigestClient, *, allow_stale: bool = False
) -> tuple[str, str] | None:
    """The (header name, value) answering ``response``'s challenge to ``request``, or
    ``None`` when we must give up: not a 401/407, no usable challenge, or ``request``
    already carried our answer to that kind of challenge (a second challenge means
    the credentials were refused, RFC 3261 §22.2: "SHOULD NOT re-attempt") - unless
    ``allow_stale`` and the new challenge says ``stale=true`` (RFC 7616 §3.3: only the
    nonce was too old; retry without re-prompting).  The caller bounds stale retries."""
    if not is_challenge(response.status):
        return None
    status = ChallengeStatus(response.status)
    answer_header = _ANSWER_HEADER[status]
    challenge = pick_challenge(response.headers.get_all(_CHALLENGE_HEADER[status]))
    if challenge is None:
        return None
    if request.headers.get(answer_header) is not None and not (allow_stale and challenge.stale):
        return None
    credentials = client.authorize(challenge, request.method, str(request.uri), request.body)
    return answer_header, str(credentials)


def retried_request(
    request: Request, authorization: tuple[str, str], via: str, cseq: int | None = None
) -> Request:
    """§22.2: the same request again with CSeq + 1 (or ``cseq``: the dialog's next
    local sequence number for an in-dialog request, §12.2.1.1), a new top Via (new
    branch) and the credentials added."""
    seq = request.cseq.seq + 1 if cseq is None else cseq
    headers = Headers()
    via_replaced = False
    for name, value in request.headers:
        if name == "Via" and not via_replaced:
            headers.add("Via", via)
            via_replaced = True
        elif name == "CSeq":
            headers.add("CSeq", f"{seq} {request.method}")
        elif name == authorization[0]:
            continue  # the answer to the previous (stale) challenge
        else:
            headers.add(name, value)
    headers.add(*authorization)
    return Request(request.method, request.uri, headers, request.body)
