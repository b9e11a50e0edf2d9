"""Hypothesis strategies generating valid MIKEY payloads and messages (RFC 3830 §6)."""

from __future__ import annotations

from hypothesis import strategies as st

from mobilityd.mikey.constants import (
    DH_VALUE_LENGTHS,
    HASH_LENGTHS,
    KEY_TYPES_WITH_SALT,
    MAC_LENGTHS,
    CacheType,
    CertType,
    CsIdMapType,
    DataType,
    DhGroup,
    EncrAlg,
    ErrorType,
    GeneralExtType,
    HashFunc,
    IdType,
    KeyDataType,
    MacAlg,
    ProtType,
    SignatureType,
    SrtpParam,
    TsType,
)
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CertHash,
    CertPayload,
    CommonHeader,
    DhPayload,
    ErrorPayload,
    GeneralExtension,
    IdPayload,
    Kemac,
    KeyData,
    KeyInterval,
    KeySpi,
    Payload,
    Pke,
    PolicyParam,
    Rand,
    SecurityPolicy,
    Signature,
    SrtpCsEntry,
    Timestamp,
    Verification,
    encode_key_data_chain,
)
from mobilityd.mikey.payloads.policy import SRTP_DEFAULTS

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
short_bytes = st.binary(max_size=40)


def fixed_bytes(length: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=length, max_size=length)


srtp_entries = st.builds(SrtpCsEntry, u8, u32, u32)


@st.composite
def headers(draw: st.DrawFn) -> CommonHeader:
    map_type = draw(st.sampled_from([CsIdMapType.SRTP_ID, CsIdMapType.EMPTY]))
    cs_map = (
        tuple(draw(st.lists(srtp_entries, max_size=6))) if map_type == CsIdMapType.SRTP_ID else ()
    )
    return CommonHeader(
        data_type=draw(st.sampled_from(DataType)),
        csb_id=draw(u32),
        cs_map=cs_map,
        cs_id_map_type=map_type,
        v_flag=draw(st.booleans()),
    )


key_validity = st.one_of(
    st.none(),
    st.builds(KeySpi, st.binary(max_size=8)),
    st.builds(KeyInterval, st.binary(max_size=6), st.binary(max_size=6)),
)


@st.composite
def key_data(draw: st.DrawFn) -> KeyData:
    key_type = draw(st.sampled_from(KeyDataType))
    salt = draw(st.binary(max_size=14)) if key_type in KEY_TYPES_WITH_SALT else None
    return KeyData(key_type, draw(st.binary(max_size=32)), salt, draw(key_validity))


@st.composite
def kemacs(draw: st.DrawFn) -> Kemac:
    mac_alg = draw(st.sampled_from(MacAlg))
    encr_alg = draw(st.sampled_from(EncrAlg))
    if encr_alg == EncrAlg.NULL and draw(st.booleans()):
        encr_data = encode_key_data_chain(draw(st.lists(key_data(), max_size=3)))
    else:
        encr_data = draw(st.binary(max_size=64))
    return Kemac(encr_alg, encr_data, mac_alg, draw(fixed_bytes(MAC_LENGTHS[mac_alg])))


@st.composite
def dh_payloads(draw: st.DrawFn) -> DhPayload:
    group = draw(st.sampled_from(DhGroup))
    return DhPayload(group, draw(fixed_bytes(DH_VALUE_LENGTHS[group])), draw(key_validity))


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp:
    ts_type = draw(st.sampled_from(TsType))
    bits = 32 if ts_type == TsType.COUNTER else 64
    return Timestamp(ts_type, draw(st.integers(0, 2**bits - 1)))


@st.composite
def cert_hashes(draw: st.DrawFn) -> CertHash:
    func = draw(st.sampled_from(HashFunc))
    return CertHash(func, draw(fixed_bytes(HASH_LENGTHS[func])))


@st.composite
def verifications(draw: st.DrawFn) -> Verification:
    alg = draw(st.sampled_from(MacAlg))
    return Verification(alg, draw(fixed_bytes(MAC_LENGTHS[alg])))


@st.composite
def policies(draw: st.DrawFn) -> SecurityPolicy:
    defaults = dict(SRTP_DEFAULTS)
    chosen = draw(st.lists(st.sampled_from(SrtpParam), max_size=14))
    params = []
    for ptype in chosen:
        if ptype not in defaults or ptype in (
            SrtpParam.KEY_DERIVATION_RATE,
            SrtpParam.SESSION_ENCR_KEY_LEN,
        ):
            value = draw(st.binary(min_size=1, max_size=4))
        else:
            value = bytes((defaults[ptype],))
        params.append(PolicyParam(ptype, value))
    return SecurityPolicy(draw(u8), ProtType.SRTP, tuple(params))


general_ext_types = st.one_of(st.sampled_from(GeneralExtType), st.integers(5, 255))
pkes = st.builds(Pke, st.sampled_from(CacheType), st.binary(max_size=80))
ids = st.builds(IdPayload, st.sampled_from(IdType), short_bytes)
certs = st.builds(CertPayload, st.sampled_from(CertType), st.binary(max_size=120))
rands = st.builds(Rand, st.binary(max_size=32))
error_payloads = st.builds(ErrorPayload, st.sampled_from(ErrorType), st.integers(0, 0xFFFF))
extensions = st.builds(GeneralExtension, general_ext_types, short_bytes)

middle_payloads: st.SearchStrategy[Payload] = st.one_of(
    kemacs(),
    pkes,
    dh_payloads(),
    timestamps(),
    ids,
    certs,
    cert_hashes(),
    verifications(),
    policies(),
    rands,
    error_payloads,
    extensions,
)

signatures = st.builds(Signature, st.sampled_from(SignatureType), st.binary(max_size=300))


@st.composite
def messages(
    draw: st.DrawFn, middle: st.SearchStrategy[Payload] = middle_payloads, max_payloads: int = 8
) -> MikeyMessage:
    """Valid messages: any payloads in any order, optionally closed by SIGN."""
    payloads = draw(st.lists(middle, max_size=max_payloads))
    if draw(st.booleans()):
        payloads.append(draw(signatures))
    return MikeyMessage.build(draw(headers()), payloads)
