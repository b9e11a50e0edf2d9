"""Pre-shared key method (RFC 3830 §3.1), sans-I/O.

    I_MESSAGE = HDR, T, RAND, [IDi], [IDr], {SP}, KEMAC
    R_MESSAGE = HDR, T, [IDr], V           (only when the Initiator sets the V flag)

KEMAC = E(encr_key, {TGK}) || MAC, with encr_key/auth_key/salt derived from the PSK,
CSB ID and RAND (§4.1.4); the MAC covers the whole message (§5.2). V is a MAC with the
same auth_key over the R_MESSAGE, IDi, IDr and T (§5.2, see :mod:`session_common`).

**Transfer** (moving a call to another device, issue 6): pass ``existing=`` a context
and the I_MESSAGE carries that context's TGK with the same CSB ID and RAND, and the
CS ID map given (with the streams' current ROCs), so the new device derives the very
same SRTP keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from mobilityd.mikey.constants import MAC_LENGTHS, DataType, ErrorType
from mobilityd.mikey.context import ContextSecrets, CryptoContext, KeyMode
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import MessageKeys, derive_message_keys
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CommonHeader,
    GeneralExtension,
    Kemac,
    Payload,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
)
from mobilityd.mikey.protection import verify_mac
from mobilityd.mikey.replay import ReplayCache
from mobilityd.mikey.session_common import (
    answer_prefix,
    build_maced,
    check_policies,
    check_protection_algs,
    check_timestamp,
    collect_policies,
    decrypt_kemac,
    encrypt_kemac,
    expect_data_type,
    id_payload,
    identities,
    key_data_for,
    key_material,
    parse,
    policies_by_number,
    require_rand,
    verification_answer,
    verify_verification,
)
from mobilityd.mikey.session_error import parse_error_message
from mobilityd.mikey.session_policy import Rng, SessionPolicy
from mobilityd.mikey.timestamps import timestamp_payload

__all__ = [
    "InitialValues",
    "InitiatorState",
    "PskInitiator",
    "check_response_header",
    "initial_values",
    "message_keys_for",
    "respond_psk",
    "verify_expected_reply",
]


class InitiatorState(Enum):
    """Initiator life cycle: a forged answer leaves the state as it was."""

    IDLE = "idle"
    WAITING = "waiting"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class InitialValues:
    """CSB ID, RAND, TGK and salt of a new exchange (fresh, or taken from a context)."""

    csb_id: int
    rand: bytes
    tgk: bytes = field(repr=False)
    tgk_salt: bytes | None = field(repr=False)


def initial_values(
    rng: Rng, policy: SessionPolicy, existing: CryptoContext | None
) -> InitialValues:
    """Fresh values from ``rng`` (§3: TGK and RAND chosen by the Initiator), or reuse."""
    if existing is not None:
        if existing.tek_direct:
            raise ValueError("a context keyed by a direct TEK cannot be transferred")
        return InitialValues(existing.csb_id, existing.rand, existing.tgk, existing.tgk_salt)
    csb_id = int.from_bytes(rng(4), "big")
    return InitialValues(csb_id, rng(policy.rand_len), rng(policy.tgk_len), None)


def message_keys_for(secret: bytes, csb_id: int, rand: bytes) -> MessageKeys:
    """§4.1.4 keys: 128-bit encryption key, 160-bit auth key, 112-bit salt."""
    return derive_message_keys(secret, csb_id, rand, 16, 20, 14)


@dataclass
class PskInitiator:
    """Initiator of the pre-shared key method (RFC 3830 §3.1)."""

    psk: bytes = field(repr=False)
    local_id: bytes
    peer_id: bytes
    cs_map: Sequence[SrtpCsEntry]
    policies: Sequence[SecurityPolicy] = (SecurityPolicy.srtp_defaults(0),)
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    replay_cache: ReplayCache | None = None
    want_verification: bool = True
    existing: CryptoContext | None = None
    #: General Extension payloads to authenticate, e.g. RFC 4567 §4.1.4 "SDP IDs".
    extensions: Sequence[GeneralExtension] = ()
    state: InitiatorState = InitiatorState.IDLE
    _pending: CryptoContext | None = field(default=None, repr=False)
    _ts: Timestamp | None = field(default=None, repr=False)
    _reply_prefix: bytes = field(default=b"", repr=False)

    def start(self, now: float, rng: Rng) -> bytes:
        """Build the I_MESSAGE (§3.1)."""
        if self.state is not InitiatorState.IDLE:
            raise RuntimeError("exchange already started")
        values = initial_values(rng, self.policy, self.existing)
        keys = message_keys_for(self.psk, values.csb_id, values.rand)
        ts = timestamp_payload(now)
        cs_map = tuple(self.cs_map)
        header = CommonHeader(
            DataType.PSK_INIT, values.csb_id, cs_map, v_flag=self.want_verification
        )
        kemac = encrypt_kemac(
            [key_data_for(values.tgk, values.tgk_salt)], keys, values.csb_id, ts, self.policy
        )
        payloads: list[Payload] = [
            ts,
            Rand(values.rand),
            id_payload(self.local_id),
            id_payload(self.peer_id),
            *self.extensions,
            *self.policies,
            kemac,
        ]
        # the keys object keys its HMAC once; the context's updates reuse it (§4.5)
        wire = build_maced(header, payloads, self.policy.mac_alg, keys)
        self._ts = ts
        self._reply_prefix = answer_prefix(
            DataType.PSK_RESP, values.csb_id, cs_map, ts, self.peer_id, self.policy.mac_alg
        )
        self._pending = CryptoContext(
            mode=KeyMode.PSK,
            csb_id=values.csb_id,
            tgk=values.tgk,
            rand=values.rand,
            cs_map=cs_map,
            policies=policies_by_number(self.policies),
            local_id=self.local_id,
            peer_id=self.peer_id,
            is_initiator=True,
            secrets=ContextSecrets(message_keys=keys),
            replay_cache=self.replay_cache or ReplayCache(window=self.policy.clock_skew),
            policy=self.policy,
            tgk_salt=values.tgk_salt,
            last_timestamp=ts.value,
        )
        self.state = InitiatorState.DONE if not self.want_verification else InitiatorState.WAITING
        return wire

    @property
    def context(self) -> CryptoContext | None:
        """The context once the exchange is complete (at once without the V flag)."""
        return self._pending if self.state is InitiatorState.DONE else None

    def receive_response(self, data: bytes, now: float) -> CryptoContext:
        """Verify the R_MESSAGE (§3.1, §5.2); a bad one raises and changes nothing."""
        del now  # the Responder echoes our own T: nothing to check against the clock
        pending, ts = self._pending, self._ts
        if self.state is not InitiatorState.WAITING or pending is None or ts is None:
            raise MikeyError("no response expected", ErrorType.UNSPECIFIED)
        keys = pending.secrets.message_keys
        assert keys is not None
        ids = (self.local_id, self.peer_id)
        if not verify_expected_reply(data, self._reply_prefix, keys.auth_key, ids, ts, self.policy):
            msg = parse(data)
            check_response_header(msg, pending.csb_id, ts, DataType.PSK_RESP)
            verify_verification(msg, keys.auth_key, ids, ts, self.policy)
        self.state = InitiatorState.DONE
        return pending


def verify_expected_reply(  # noqa: PLR0917
    data: bytes,
    prefix: bytes,
    auth_key: bytes,
    ids: tuple[bytes, bytes],
    ts: Timestamp,
    policy: SessionPolicy,
) -> bool:
    """Fast path: ``data`` is exactly the R_MESSAGE we expect (``prefix`` || V data).

    True when its V verifies; False when the layout differs (the caller then parses
    it in full). A wrong V on the expected layout is ``AUTH_FAILURE`` at once.
    """
    mac_len = len(data) - len(prefix)
    if mac_len != MAC_LENGTHS[policy.mac_alg] or not data.startswith(prefix):
        return False
    verify_mac(policy.mac_alg, auth_key, prefix + ids[0] + ids[1] + ts.value_bytes,
               data[len(prefix):])
    return True


def check_response_header(
    msg: MikeyMessage, csb_id: int, ts: Timestamp, data_type: DataType
) -> None:
    """An answer to our I_MESSAGE: error message, CSB ID, echoed T (§5.2)."""
    if msg.header.data_type == DataType.ERROR:
        raise parse_error_message(msg)
    expect_data_type(msg, data_type)
    if msg.header.csb_id != csb_id:
        raise MikeyError("response for another CSB", ErrorType.UNSPECIFIED)
    echoed = msg.find(Timestamp)
    if echoed is None or (echoed.ts_type, echoed.value) != (ts.ts_type, ts.value):
        raise MikeyError("response does not echo our timestamp", ErrorType.INVALID_TS)


def respond_psk(  # noqa: PLR0917
    msg: MikeyMessage,
    now: float,
    psk: bytes,
    local_id: bytes,
    peer_id: bytes | None,
    policy: SessionPolicy,
    replay: ReplayCache,
) -> tuple[CryptoContext, bytes | None]:
    """Responder side of §3.1: verify the I_MESSAGE, build the context and V answer.

    Order of checks follows §5.3: identity and timestamp/replay, then the MAC; only an
    authenticated message enters the replay cache and is decrypted.
    """
    expect_data_type(msg, DataType.PSK_INIT)
    rand = require_rand(msg, policy)
    id_i, id_r = identities(msg, local_id, peer_id)
    ts, when = check_timestamp(msg, now, policy, replay, id_i)
    kemac = msg.payloads[-1] if msg.payloads else None
    if not isinstance(kemac, Kemac):
        raise MikeyError("pre-shared key message must end with KEMAC", ErrorType.AUTH_FAILURE)
    check_protection_algs(kemac, policy)
    keys = message_keys_for(psk, msg.header.csb_id, rand)
    verify_mac(kemac.mac_alg, keys, msg.authenticated_bytes(), kemac.mac)
    replay.remember((id_i, msg.header.csb_id, ts.value), when, now)
    material = key_material(decrypt_kemac(kemac, keys, msg.header.csb_id, ts, pke=False))
    if material is None:
        raise MikeyError("initial message carries no TGK", ErrorType.UNSPECIFIED)
    policies = collect_policies(msg)
    check_policies(msg.header.cs_map, policies)
    context = CryptoContext(
        mode=KeyMode.PSK,
        csb_id=msg.header.csb_id,
        tgk=material.key,
        rand=rand,
        cs_map=msg.header.cs_map,
        policies=policies,
        local_id=local_id,
        peer_id=id_i,
        is_initiator=False,
        secrets=ContextSecrets(message_keys=keys),
        replay_cache=replay,
        policy=policy,
        tgk_salt=material.salt,
        tek_direct=material.tek_direct,
        last_timestamp=ts.value,
    )
    if not msg.header.v_flag:
        return context, None
    covered = answer_prefix(
        DataType.PSK_RESP, msg.header.csb_id, msg.header.cs_map, ts, id_r, policy.mac_alg
    )
    return context, verification_answer(covered, policy.mac_alg, keys.auth_key, id_i, id_r, ts)
