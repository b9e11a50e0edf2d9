#!/usr/bin/python3
"""GStreamer's MIKEY codec (libgstsdp) as a subprocess helper for interop tests.

Runs under the SYSTEM python (/usr/bin/python3 with python3-gi), not the project's
virtualenv; tests/mikey/test_interop_gstreamer.py starts it with a timeout (libgstsdp
loops forever on some payload types, see ../shared/docs/testbed.md).

    gst_mikey_helper.py parse < ["<hex>", ...]   -> one JSON object per message
    gst_mikey_helper.py build                    -> JSON list of base64 messages

``parse`` calls ``gst_mikey_message_new_from_data`` through ctypes (GI cannot pass its
NULL info argument) and reads the result through the public structs of gstmikey.h and
its accessor functions; it also re-encodes with ``gst_mikey_message_to_bytes``.
``build`` uses the GI API (``GstSdp.MIKEYMessage.new`` ... ``base64_encode``).
"""

from __future__ import annotations

import ctypes
import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import Gst, GstSdp  # noqa: E402

P = ctypes.POINTER
u8p = P(ctypes.c_uint8)


class MiniObject(ctypes.Structure):  # GstMiniObject (gst/gstminiobject.h)
    _fields_ = [
        ("type", ctypes.c_size_t), ("refcount", ctypes.c_int), ("lockstate", ctypes.c_int),
        ("flags", ctypes.c_uint), ("copy", ctypes.c_void_p), ("dispose", ctypes.c_void_p),
        ("free", ctypes.c_void_p), ("priv_uint", ctypes.c_uint), ("priv_pointer", ctypes.c_void_p),
    ]  # fmt: skip


class Message(ctypes.Structure):  # GstMIKEYMessage
    _fields_ = [
        ("mini_object", MiniObject), ("version", ctypes.c_uint8), ("type", ctypes.c_int),
        ("V", ctypes.c_int), ("prf_func", ctypes.c_int), ("CSB_id", ctypes.c_uint32),
        ("map_type", ctypes.c_int), ("map_info", ctypes.c_void_p), ("payloads", ctypes.c_void_p),
    ]  # fmt: skip


class MapSRTP(ctypes.Structure):  # GstMIKEYMapSRTP
    _fields_ = [("policy", ctypes.c_uint8), ("ssrc", ctypes.c_uint32), ("roc", ctypes.c_uint32)]


class Payload(ctypes.Structure):  # GstMIKEYPayload
    _fields_ = [("mini_object", MiniObject), ("type", ctypes.c_int), ("len", ctypes.c_uint)]


class PayloadKEMAC(ctypes.Structure):
    _fields_ = [("pt", Payload), ("enc_alg", ctypes.c_int), ("mac_alg", ctypes.c_int),
                ("subpayloads", ctypes.c_void_p)]  # fmt: skip


class PayloadT(ctypes.Structure):
    _fields_ = [("pt", Payload), ("type", ctypes.c_int), ("ts_value", u8p)]


class PayloadSP(ctypes.Structure):
    _fields_ = [("pt", Payload), ("policy", ctypes.c_uint), ("proto", ctypes.c_int),
                ("params", ctypes.c_void_p)]  # fmt: skip


class SPParam(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint8), ("len", ctypes.c_uint8), ("val", u8p)]


class PayloadRAND(ctypes.Structure):
    _fields_ = [("pt", Payload), ("len", ctypes.c_uint8), ("rand", u8p)]


class PayloadPKE(ctypes.Structure):
    _fields_ = [("pt", Payload), ("C", ctypes.c_int), ("data_len", ctypes.c_uint16),
                ("data", u8p)]  # fmt: skip


class PayloadKeyData(ctypes.Structure):
    _fields_ = [
        ("pt", Payload), ("key_type", ctypes.c_int), ("key_len", ctypes.c_uint16),
        ("key_data", u8p), ("salt_len", ctypes.c_uint16), ("salt_data", u8p),
        ("kv_type", ctypes.c_int), ("kv_len", ctypes.c_uint8 * 2), ("kv_data", u8p * 2),
    ]  # fmt: skip


sdp = ctypes.CDLL("libgstsdp-1.0.so.0")
glib = ctypes.CDLL("libglib-2.0.so.0")
sdp.gst_mikey_message_new_from_data.restype = P(Message)
sdp.gst_mikey_message_new_from_data.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                                ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
sdp.gst_mikey_message_to_bytes.restype = ctypes.c_void_p
sdp.gst_mikey_message_to_bytes.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
glib.g_bytes_get_data.restype = ctypes.c_void_p
glib.g_bytes_get_data.argtypes = [ctypes.c_void_p, P(ctypes.c_size_t)]
glib.g_bytes_unref.argtypes = [ctypes.c_void_p]
for name, restype in [
    ("gst_mikey_message_get_n_cs", ctypes.c_uint),
    ("gst_mikey_message_get_cs_srtp", P(MapSRTP)),
    ("gst_mikey_message_get_n_payloads", ctypes.c_uint),
    ("gst_mikey_message_get_payload", P(Payload)),
    ("gst_mikey_payload_kemac_get_n_sub", ctypes.c_uint),
    ("gst_mikey_payload_kemac_get_sub", P(Payload)),
    ("gst_mikey_payload_sp_get_n_params", ctypes.c_uint),
    ("gst_mikey_payload_sp_get_param", P(SPParam)),
]:
    getattr(sdp, name).restype = restype
    getattr(sdp, name).argtypes = [ctypes.c_void_p, ctypes.c_uint][: 1 if "_n_" in name else 2]
sdp.gst_mini_object_unref = ctypes.CDLL("libgstreamer-1.0.so.0").gst_mini_object_unref
sdp.gst_mini_object_unref.argtypes = [ctypes.c_void_p]

PT_KEMAC, PT_PKE, PT_T, PT_SP, PT_RAND = 1, 2, 5, 10, 11


def hexbytes(ptr: object, length: int) -> str:
    return ctypes.string_at(ptr, length).hex() if length else ""


def key_data(ptr: object) -> dict:
    kd = ctypes.cast(ptr, P(PayloadKeyData)).contents
    return {
        "type": kd.pt.type, "key_type": kd.key_type, "key": hexbytes(kd.key_data, kd.key_len),
        "salt": hexbytes(kd.salt_data, kd.salt_len) if kd.salt_len else None,
        "kv_type": kd.kv_type,
        "kv": [hexbytes(kd.kv_data[i], kd.kv_len[i]) for i in range(2) if kd.kv_len[i]],
    }  # fmt: skip


def payload(ptr: object) -> dict:
    base = ptr.contents
    out: dict = {"type": base.type, "len": base.len}
    if base.type == PT_KEMAC:
        kemac = ctypes.cast(ptr, P(PayloadKEMAC)).contents
        count = sdp.gst_mikey_payload_kemac_get_n_sub(ptr)
        subs = [key_data(sdp.gst_mikey_payload_kemac_get_sub(ptr, i)) for i in range(count)]
        out.update(enc_alg=kemac.enc_alg, mac_alg=kemac.mac_alg, sub=subs)
    elif base.type == PT_T:
        ts = ctypes.cast(ptr, P(PayloadT)).contents
        out.update(ts_type=ts.type, value=hexbytes(ts.ts_value, 4 if ts.type == 2 else 8))
    elif base.type == PT_SP:
        sp = ctypes.cast(ptr, P(PayloadSP)).contents
        params = []
        for i in range(sdp.gst_mikey_payload_sp_get_n_params(ptr)):
            param = sdp.gst_mikey_payload_sp_get_param(ptr, i).contents
            params.append([param.type, hexbytes(param.val, param.len)])
        out.update(policy=sp.policy, proto=sp.proto, params=params)
    elif base.type == PT_RAND:
        rand = ctypes.cast(ptr, P(PayloadRAND)).contents
        out.update(rand=hexbytes(rand.rand, rand.len))
    elif base.type == PT_PKE:
        pke = ctypes.cast(ptr, P(PayloadPKE)).contents
        out.update(C=pke.C, data=hexbytes(pke.data, pke.data_len))
    return out


def parse_one(data: bytes) -> dict:
    msg = sdp.gst_mikey_message_new_from_data(data, len(data), None, None)
    if not msg:
        return {"ok": False}
    m = msg.contents
    cs = []
    for i in range(sdp.gst_mikey_message_get_n_cs(msg)):
        entry = sdp.gst_mikey_message_get_cs_srtp(msg, i).contents
        cs.append({"policy": entry.policy, "ssrc": entry.ssrc, "roc": entry.roc})
    payloads = [
        payload(sdp.gst_mikey_message_get_payload(msg, i))
        for i in range(sdp.gst_mikey_message_get_n_payloads(msg))
    ]
    gbytes = sdp.gst_mikey_message_to_bytes(msg, None, None)
    size = ctypes.c_size_t()
    reencoded = ctypes.string_at(glib.g_bytes_get_data(gbytes, ctypes.byref(size)), size.value)
    glib.g_bytes_unref(gbytes)
    result = {
        "ok": True, "version": m.version, "type": m.type, "V": bool(m.V),
        "prf_func": m.prf_func, "csb_id": m.CSB_id, "map_type": m.map_type, "cs": cs,
        "payloads": payloads, "reencoded": reencoded.hex(),
    }  # fmt: skip
    sdp.gst_mini_object_unref(msg)
    return result


def build_all() -> list[str]:
    """Messages built with GStreamer's own API (NULL encryption and MAC, PSK style)."""
    built = []
    variants = [
        # (csb_id, [(policy, ssrc, roc)], key type, key, salt, kv, with SP)
        (0x12345678, [(0, 0xDEADBEEF, 0)], GstSdp.MIKEYKeyDataType.TGK, b"\x11" * 16, None,
         None, True),
        (0xFFFFFFFF, [(0, 1, 2), (1, 0xCAFEBABE, 7)], GstSdp.MIKEYKeyDataType.TEK,
         b"\x22" * 16, b"\x33" * 14, ("spi", b"\x01\x02\x03\x04"), True),
        # (key_data_set_interval is unusable through GI: it takes Valid To as one byte)
        (7, [], GstSdp.MIKEYKeyDataType.TGK, b"\x44" * 32, None, ("spi", b"\x09"), False),
    ]  # fmt: skip
    for csb_id, cs_map, key_type, key, salt, kv, with_sp in variants:
        msg = GstSdp.MIKEYMessage.new()
        prf = GstSdp.MIKEYPRFFunc.MIKEY_PRF_MIKEY_1
        srtp_map = GstSdp.MIKEYMapType.MIKEY_MAP_TYPE_SRTP
        msg.set_info(1, GstSdp.MIKEYType.PSK_INIT, False, prf, csb_id, srtp_map)
        for policy, ssrc, roc in cs_map:
            msg.add_cs_srtp(policy, ssrc, roc)
        msg.add_t(GstSdp.MIKEYTSType.NTP_UTC, bytes.fromhex("e7c3a1b2a1a2a3a4"))
        msg.add_rand(bytes(range(16)))
        if with_sp:
            sp = GstSdp.MIKEYPayload.new(GstSdp.MIKEYPayloadType.SP)
            sp.sp_set(0, GstSdp.MIKEYSecProto.MIKEY_SEC_PROTO_SRTP)
            for ptype, value in [(0, b"\x01"), (1, b"\x10"), (2, b"\x01"), (3, b"\x14"),
                                 (4, b"\x0e"), (7, b"\x01"), (11, b"\x0a")]:  # fmt: skip
                sp.sp_add_param(ptype, value)
            msg.add_payload(sp)
        kemac = GstSdp.MIKEYPayload.new(GstSdp.MIKEYPayloadType.KEMAC)
        kemac.kemac_set(GstSdp.MIKEYEncAlg.NULL, GstSdp.MIKEYMacAlg.NULL)
        sub = GstSdp.MIKEYPayload.new(GstSdp.MIKEYPayloadType.KEY_DATA)
        sub.key_data_set_key(key_type, key)
        if salt is not None:
            sub.key_data_set_salt(salt)
        if kv is not None:
            sub.key_data_set_spi(kv[1])
        kemac.kemac_add_sub(sub)
        msg.add_payload(kemac)
        built.append(msg.base64_encode())
    return built


def main() -> None:
    Gst.init(None)
    if sys.argv[1:] == ["parse"]:
        messages = json.load(sys.stdin)
        print(json.dumps([parse_one(bytes.fromhex(item)) for item in messages]))
    elif sys.argv[1:] == ["build"]:
        print(json.dumps(build_all()))
    else:
        sys.exit("usage: gst_mikey_helper.py parse|build")


if __name__ == "__main__":
    main()
