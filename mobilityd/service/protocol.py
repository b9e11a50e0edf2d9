"""The control protocol, version 1: JSON lines over a Unix stream socket (sans-I/O).

Each request is one JSON object on one line (UTF-8, ``\\n``-terminated, at most
:data:`MAX_LINE_BYTES`); each answer is one line too. docs/control-protocol.md is the
reference; in short::

    -> {"v":1,"id":7,"op":"move","call":"c1","device":"pda"}
    <- {"v":1,"id":7,"ok":true,"result":{...}}
    <- {"v":1,"id":7,"ok":false,"error":{"code":"no-such-call","message":"...","field":"call"}}
    <- {"v":1,"event":"call-moved","seq":12,"data":{...}}      (after "subscribe")

This module only turns bytes into :class:`Request` values and values into bytes; it
never touches a socket. A malformed line yields a :class:`RequestError` that carries the
reply to send, and the connection stays usable.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mobilityd.service.errors import ControlError, ErrorCode

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_LINE_BYTES = 64 * 1024


class Op(enum.StrEnum):
    """Request operations (docs/control-protocol.md, "Operations")."""

    STATUS = "status"
    CALLS = "calls"
    PLACE = "place"
    ANSWER = "answer"
    REJECT = "reject"
    HANGUP = "hangup"
    MOVE = "move"
    PULL = "pull"
    SUBSCRIBE = "subscribe"


# Per operation: required fields, then optional ones, each with its JSON type.
_STR, _STRS = "string", "array of strings"
REQUIRED_FIELDS: Mapping[Op, Mapping[str, str]] = {
    Op.STATUS: {}, Op.CALLS: {}, Op.SUBSCRIBE: {},
    Op.PLACE: {"uri": _STR},
    Op.ANSWER: {"call": _STR}, Op.REJECT: {"call": _STR}, Op.HANGUP: {"call": _STR},
    Op.PULL: {"call": _STR},
    Op.MOVE: {"call": _STR, "device": _STR},
}
OPTIONAL_FIELDS: Mapping[Op, Mapping[str, str]] = {
    Op.PLACE: {"peer": _STR}, Op.REJECT: {"reason": _STR},
    Op.SUBSCRIBE: {"events": _STRS},
}
_ENVELOPE = ("v", "id", "op")


@dataclass(frozen=True)
class Request:
    """A validated request: ``args`` holds exactly the operation's fields."""

    id: int
    op: Op
    args: Mapping[str, Any] = field(default_factory=dict)


class RequestError(ControlError):
    """A line that is not a valid request; ``request_id`` is echoed when it was readable."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None,
                 request_id: int | None = None) -> None:
        super().__init__(code, message, field)
        self.request_id = request_id

    def reply(self) -> bytes:
        return encode_error(self.request_id, self)


@dataclass(frozen=True)
class Reply:
    """A decoded answer (client side)."""

    id: int | None
    ok: bool
    result: Any = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class EventMessage:
    """A decoded subscription event (client side)."""

    event: str
    seq: int
    data: Mapping[str, Any]


def parse_request(line: bytes) -> Request:
    """Decode and validate one request line (without its ``\\n``)."""
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(ErrorCode.BAD_JSON, f"not a JSON document: {exc}") from None
    if not isinstance(obj, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "a request must be a JSON object")
    request_id = obj.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 0:
        raise RequestError(ErrorCode.BAD_REQUEST, "'id' must be a non-negative integer",
                           "id")
    if obj.get("v") not in SUPPORTED_VERSIONS:
        raise RequestError(ErrorCode.UNSUPPORTED_VERSION,
                           f"protocol version {obj.get('v')!r} is not supported; "
                           f"this daemon speaks {list(SUPPORTED_VERSIONS)}", "v", request_id)
    raw_op = obj.get("op")
    if not isinstance(raw_op, str):
        raise RequestError(ErrorCode.BAD_REQUEST, "'op' must be a string", "op", request_id)
    try:
        op = Op(raw_op)
    except ValueError:
        known = ", ".join(o.value for o in Op)
        raise RequestError(ErrorCode.UNKNOWN_OP, f"unknown op {raw_op!r} (known: {known})",
                           "op", request_id) from None
    required, optional = REQUIRED_FIELDS[op], OPTIONAL_FIELDS.get(op, {})
    args: dict[str, Any] = {}
    for name, kind in (*required.items(), *optional.items()):
        if name not in obj:
            if name in required:
                raise RequestError(ErrorCode.BAD_REQUEST, f"'{op}' needs field '{name}'",
                                   name, request_id)
            continue
        args[name] = _check_type(obj[name], kind, name, request_id)
    for name in obj:
        if name not in args and name not in _ENVELOPE:
            raise RequestError(ErrorCode.BAD_REQUEST, f"'{op}' has no field '{name}'",
                               name, request_id)
    return Request(id=request_id, op=op, args=args)


def encode_request(request_id: int, op: Op, **args: Any) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "id": request_id, "op": op.value, **args})


def encode_result(request_id: int, result: Any) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result})


def encode_error(request_id: int | None, error: ControlError) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "id": request_id, "ok": False,
                  "error": error.to_json()})


def encode_event(name: str, seq: int, data: Mapping[str, Any]) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "event": name, "seq": seq, "data": dict(data)})


def parse_server_line(line: bytes) -> Reply | EventMessage:
    """Decode a line from the daemon (client side); :class:`ControlError` if malformed."""
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(ErrorCode.BAD_JSON, f"daemon sent invalid JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("v") != PROTOCOL_VERSION:
        raise ControlError(ErrorCode.UNSUPPORTED_VERSION,
                           f"daemon answered with an unknown protocol version: {line[:80]!r}")
    if isinstance(obj.get("event"), str):
        data, seq = obj.get("data"), obj.get("seq")
        return EventMessage(obj["event"],
                            seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
                            data if isinstance(data, dict) else {})
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ControlError(ErrorCode.BAD_REQUEST, "daemon reply lacks a boolean 'ok'", "ok")
    error, reply_id = obj.get("error"), obj.get("id")
    if reply_id is not None and (isinstance(reply_id, bool) or not isinstance(reply_id, int)):
        raise ControlError(ErrorCode.BAD_REQUEST, "daemon reply has a non-integer 'id'", "id")
    return Reply(id=reply_id, ok=ok, result=obj.get("result"),
                 error=error if isinstance(error, dict) else None)


class LineSplitter:
    """Split a byte stream into lines of at most ``max_bytes`` (sans-I/O).

    :meth:`feed` returns complete lines (without ``\\n``; a trailing ``\\r`` is kept out
    too) and, for each over-long line, a :class:`RequestError` in its place; the rest of
    that line is discarded up to the next newline so the stream resynchronises.
    """

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | RequestError]:
        out: list[bytes | RequestError] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if not self._discarding and len(self._buffer) > self.max_bytes:
                    out.append(self._too_long())
                    self._discarding = True
                if self._discarding:
                    self._buffer.clear()
                return out
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False
            elif len(line) > self.max_bytes:
                out.append(self._too_long())
            elif line.strip():
                out.append(line)

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a line."""
        return len(self._buffer)

    def _too_long(self) -> RequestError:
        return RequestError(ErrorCode.LINE_TOO_LONG,
                            f"request line longer than {self.max_bytes} bytes; discarded")


def _check_type(value: Any, kind: str, name: str, request_id: int) -> Any:
    if kind == _STR and isinstance(value, str) and value:
        return value
    if kind == _STRS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RequestError(ErrorCode.BAD_REQUEST, f"field '{name}' must be a non-empty {kind}",
                       name, request_id)


def _line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
