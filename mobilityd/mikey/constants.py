"""MIKEY code points (RFC 3830 §6, with the later additions registered per RFC 6309).

Every field value that MIKEY puts on the wire as a number is an :class:`enum.IntEnum`
here. Values added by later RFCs are marked with the RFC that defines them:
RFC 4563 (Key ID / empty map), RFC 4567 (SDP IDs), RFC 4650 (DHHMAC), RFC 4738
(RSA-R), RFC 6043 (MIKEY-TICKET), RFC 7714 (AES-GCM for SRTP). RFC 6309 only changes
IANA rules and clarifies the valid ranges of the 2- and 4-bit fields (C: 0-3, S type:
0-15, key data type: 0-15, KV type: 0-15), which the codec enforces by field width.
"""

from __future__ import annotations

from enum import IntEnum

MIKEY_VERSION = 1
"""RFC 3830 §6.1: version 0x01 is MIKEY as defined in RFC 3830."""


class DataType(IntEnum):
    """Common Header data type (RFC 3830 §6.1, Table 6.1.a, and additions)."""

    PSK_INIT = 0
    PSK_RESP = 1  # "PSK ver msg"
    PK_INIT = 2
    PK_RESP = 3  # "PK ver msg"
    DH_INIT = 4
    DH_RESP = 5
    ERROR = 6
    DHHMAC_INIT = 7  # RFC 4650
    DHHMAC_RESP = 8  # RFC 4650
    RSA_R_INIT = 9  # RFC 4738
    RSA_R_RESP = 10  # RFC 4738
    REQUEST_INIT_PSK = 11  # RFC 6043
    REQUEST_INIT_PK = 12  # RFC 6043
    REQUEST_RESP = 13  # RFC 6043
    TRANSFER_INIT = 14  # RFC 6043
    TRANSFER_RESP = 15  # RFC 6043
    RESOLVE_INIT_PSK = 16  # RFC 6043
    RESOLVE_INIT_PK = 17  # RFC 6043
    RESOLVE_RESP = 18  # RFC 6043


class PayloadType(IntEnum):
    """Next-payload values (RFC 3830 §6.1, Table 6.1.b, and RFC 6043 §6)."""

    LAST = 0
    KEMAC = 1
    PKE = 2
    DH = 3
    SIGN = 4
    T = 5
    ID = 6
    CERT = 7
    CHASH = 8
    V = 9
    SP = 10
    RAND = 11
    ERR = 12
    TR = 13  # RFC 6043 (not decoded by this codec)
    IDR = 14  # RFC 6043 (not decoded by this codec)
    RANDR = 15  # RFC 6043 (not decoded by this codec)
    TP = 16  # RFC 6043 (not decoded by this codec)
    TICKET = 17  # RFC 6043 (not decoded by this codec)
    KEY_DATA = 20
    GENERAL_EXT = 21


class PrfFunc(IntEnum):
    """PRF function of the Common Header (RFC 3830 §6.1, Table 6.1.c)."""

    MIKEY_1 = 0


class CsIdMapType(IntEnum):
    """CS ID map type (RFC 3830 §6.1, Table 6.1.d, and additions)."""

    SRTP_ID = 0
    EMPTY = 1  # RFC 4563 §4: no CS ID map info follows
    GENERIC_ID = 2  # RFC 6043 §6.1.1 (not decoded by this codec)


class EncrAlg(IntEnum):
    """KEMAC encryption algorithm (RFC 3830 §6.2, Table 6.2.a)."""

    NULL = 0
    AES_CM_128 = 1
    AES_KW_128 = 2


class MacAlg(IntEnum):
    """KEMAC / V MAC algorithm (RFC 3830 §6.2, Table 6.2.b)."""

    NULL = 0
    HMAC_SHA1_160 = 1
    HMAC_SHA_1_160 = 1  # alias of HMAC_SHA1_160 (same code point)


MAC_LENGTHS: dict[MacAlg, int] = {MacAlg.NULL: 0, MacAlg.HMAC_SHA1_160: 20}
"""MAC field length in bytes for each MAC algorithm (RFC 3830 §6.2, Table 6.2.b)."""


class CacheType(IntEnum):
    """PKE envelope key cache indicator C (RFC 3830 §6.3, Table 6.3; 0-3 per RFC 6309)."""

    NO_CACHE = 0
    CACHE = 1
    CACHE_FOR_CSB = 2


class DhGroup(IntEnum):
    """DH group (RFC 3830 §6.4, Table 6.4)."""

    OAKLEY_5 = 0
    OAKLEY_1 = 1
    OAKLEY_2 = 2


DH_VALUE_LENGTHS: dict[DhGroup, int] = {
    DhGroup.OAKLEY_5: 1536 // 8,
    DhGroup.OAKLEY_1: 768 // 8,
    DhGroup.OAKLEY_2: 1024 // 8,
}
"""Length in bytes of the DH value of each group (RFC 3830 §6.4, Table 6.4)."""


class SignatureType(IntEnum):
    """SIGN payload S type (RFC 3830 §6.5, Table 6.5)."""

    RSA_PKCS1_V15 = 0
    RSA_PSS = 1


class TsType(IntEnum):
    """Timestamp type (RFC 3830 §6.6, Table 6.6)."""

    NTP_UTC = 0
    NTP = 1
    COUNTER = 2


TS_VALUE_LENGTHS: dict[TsType, int] = {TsType.NTP_UTC: 8, TsType.NTP: 8, TsType.COUNTER: 4}
"""Length in bytes of the TS value of each timestamp type (RFC 3830 §6.6, Table 6.6)."""


class IdType(IntEnum):
    """ID payload type (RFC 3830 §6.7, Table 6.7.a)."""

    NAI = 0
    URI = 1


class CertType(IntEnum):
    """CERT payload type (RFC 3830 §6.7, Table 6.7.b)."""

    X509V3 = 0
    X509V3_URL = 1
    X509V3_SIGN = 2
    X509V3_ENCR = 3


class HashFunc(IntEnum):
    """CHASH hash function (RFC 3830 §6.8, Table 6.8)."""

    SHA1 = 0
    MD5 = 1


HASH_LENGTHS: dict[HashFunc, int] = {HashFunc.SHA1: 20, HashFunc.MD5: 16}
"""Hash length in bytes of each CHASH hash function (RFC 3830 §6.8, Table 6.8)."""


class ProtType(IntEnum):
    """Security protocol of an SP payload (RFC 3830 §6.10, Table 6.10)."""

    SRTP = 0


class SrtpParam(IntEnum):
    """SRTP policy parameter types (RFC 3830 §6.10.1, Table 6.10.1.a)."""

    ENCR_ALG = 0
    SESSION_ENCR_KEY_LEN = 1
    AUTH_ALG = 2
    SESSION_AUTH_KEY_LEN = 3
    SESSION_SALT_KEY_LEN = 4
    SRTP_PRF = 5
    KEY_DERIVATION_RATE = 6
    SRTP_ENCRYPTION = 7
    SRTCP_ENCRYPTION = 8
    FEC_ORDER = 9
    SRTP_AUTHENTICATION = 10
    AUTH_TAG_LEN = 11
    SRTP_PREFIX_LEN = 12
    AEAD_AUTH_TAG_LEN = 20  # RFC 7714 §14.3


class SrtpEncrAlg(IntEnum):
    """SRTP encryption algorithm parameter value (RFC 3830 §6.10.1, Table 6.10.1.b)."""

    NULL = 0
    AES_CM = 1
    AES_F8 = 2
    AES_GCM = 6  # RFC 7714 §14.3


class SrtpAuthAlg(IntEnum):
    """SRTP authentication algorithm parameter value (RFC 3830 §6.10.1, Table 6.10.1.c)."""

    NULL = 0
    HMAC_SHA1 = 1


class SrtpPrf(IntEnum):
    """SRTP pseudo-random function parameter value (RFC 3830 §6.10.1, Table 6.10.1.d)."""

    AES_CM = 0


class FecOrder(IntEnum):
    """Sender's FEC order parameter value (RFC 3830 §6.10.1, Table 6.10.1.e)."""

    FEC_SRTP = 0


class OnOff(IntEnum):
    """Value of the SRTP/SRTCP encryption and SRTP authentication switches (§6.10.1)."""

    OFF = 0
    ON = 1


class ErrorType(IntEnum):
    """ERR payload error number (RFC 3830 §6.12, Table 6.12, and additions)."""

    AUTH_FAILURE = 0
    INVALID_TS = 1
    INVALID_PRF = 2
    INVALID_MAC = 3
    INVALID_EA = 4
    INVALID_HA = 5
    INVALID_DH = 6
    INVALID_ID = 7
    INVALID_CERT = 8
    INVALID_SP = 9
    INVALID_SPPAR = 10
    INVALID_DT = 11
    UNSPECIFIED = 12
    UNSUPPORTED_MESSAGE_TYPE = 13  # RFC 4738 §3.9.2 ("unparseable MIKEY message")
    INVALID_TICKET = 14  # RFC 6043 §6.9
    INVALID_TPPAR = 15  # RFC 6043 §6.9


class KeyDataType(IntEnum):
    """Key data sub-payload type (RFC 3830 §6.13, Table 6.13.a, and RFC 6043 §6.7)."""

    TGK = 0
    TGK_SALT = 1
    TEK = 2
    TEK_SALT = 3
    GTGK = 4  # RFC 6043
    GTGK_SALT = 5  # RFC 6043
    MPK = 6  # RFC 6043


KEY_TYPES_WITH_SALT = frozenset({KeyDataType.TGK_SALT, KeyDataType.TEK_SALT, KeyDataType.GTGK_SALT})
"""Key data types whose sub-payload carries the salt fields (RFC 3830 §6.13)."""


class KvType(IntEnum):
    """Key validity type (RFC 3830 §6.13, Table 6.13.b)."""

    NULL = 0
    SPI = 1
    INTERVAL = 2


class GeneralExtType(IntEnum):
    """General Extension type (RFC 3830 §6.15, Table 6.15, as revised by RFC 4738 §3.9.3)."""

    VENDOR_ID = 0
    SDP_IDS = 1  # RFC 4567 §7
    TESLA_I_KEY = 2  # RFC 4442
    KEY_ID = 3  # RFC 4563
    CSB_ID = 4  # RFC 4738


class KeyMgmtProtocol:
    """Key-management protocol identifiers of RFC 4567 §9.3 used here."""

    MIKEY = "mikey"
