"""SDP codec (RFC 8866) with the offer/answer checks of RFC 3264 and MIKEY's
``a=key-mgmt`` (RFC 4567).

`SessionDescription.parse(text | bytes)` and `str()` / `bytes()` are symmetric; field
values are kept as on the wire, attributes in order with repeats.  Bad input raises
`SdpError`, whose ``status`` is the SIP answer: 400 for a body that is not SDP at all,
488 Not Acceptable Here (RFC 3261 §21.4.26) for an unusable or contradictory one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from mobilityd.sip.errors import SipError, StatusCode

#   token = 1*(token-char)   (RFC 8866 §9)
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TOKEN_RE = re.compile(_TOKEN)
#   media-field = %s"m" "=" media SP port ["/" integer] SP proto 1*(SP fmt)
_MEDIA_RE = re.compile(
    rf"({_TOKEN}) ([0-9]+)(?:/([0-9]+))? ({_TOKEN}(?:/{_TOKEN})*)((?: {_TOKEN})+)"
)
#   origin-field = username SP sess-id SP sess-version SP nettype SP addrtype SP address
_ORIGIN_RE = re.compile(rf"(\S+) ([0-9]+) ([0-9]+) ({_TOKEN}) ({_TOKEN}) (\S+)")
#   connection-field = nettype SP addrtype SP connection-address
_CONNECTION_RE = re.compile(rf"({_TOKEN}) ({_TOKEN}) (\S+)")
#   bandwidth-field = bwtype ":" bandwidth
_BANDWIDTH_RE = re.compile(rf"({_TOKEN}):([0-9]+)")
#   time-field = start-time SP stop-time
_TIME_RE = re.compile(r"([0-9]+) ([0-9]+)")
#   attribute = (attribute-name ":" attribute-value) / attribute-name
_ATTRIBUTE_RE = re.compile(rf"({_TOKEN})(?::(.*))?", re.S)
#   rtpmap-value = payload-type SP encoding-name "/" clock-rate [ "/" encoding-params ]
_RTPMAP_RE = re.compile(rf"([0-9]{{1,3}}) ({_TOKEN})/([0-9]+)(?:/([0-9]+))?")
#   rtcp-attribute = "rtcp:" port [nettype space addrtype space connection-address]
_RTCP_RE = re.compile(rf"([0-9]+)(?: ({_TOKEN}) ({_TOKEN}) (\S+))?")
#   key-mgmt-att-value = 0*1SP prtcl-id SP keymgmt-data   (RFC 4567 §3.1)
_KEY_MGMT_RE = re.compile(rf" ?({_TOKEN}) ([A-Za-z0-9+/=]+)")

_SESSION_LETTERS = "vosiuepcbtrzka"
_MEDIA_LETTERS = "icbka"
MAX_SDP_SIZE = 65535
MAX_LINES = 1024


class SdpError(SipError):
    """An unusable session description; ``status`` is the SIP response to send."""

    def __init__(self, reason: str, status: int = StatusCode.BAD_REQUEST) -> None:
        super().__init__(status, f"bad SDP: {reason}" if status == 400 else reason)


class Direction(StrEnum):
    """Media direction attributes (RFC 8866 §6.7); sendrecv is the default."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def reversed(self) -> Direction:
        """The direction an answer uses for this offered one (RFC 3264 §6.1)."""
        return {
            Direction.SENDONLY: Direction.RECVONLY,
            Direction.RECVONLY: Direction.SENDONLY,
        }.get(self, self)


@dataclass(frozen=True)
class Origin:
    """``o=`` (RFC 8866 §5.2); ``sess_version`` increases with every new offer."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True)
class Connection:
    """``c=`` (RFC 8866 §5.7)."""

    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Bandwidth:
    """``b=`` (RFC 8866 §5.8)."""

    bwtype: str
    bandwidth: int

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True)
class Timing:
    """``t=`` with its ``r=`` lines (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attribute:
    """``a=name`` or ``a=name:value`` (RFC 8866 §5.13)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True)
class RtpMap:
    """``a=rtpmap`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None


@dataclass(frozen=True)
class Rtcp:
    """``a=rtcp`` (RFC 3605 §2.1)."""

    port: int
    connection: Connection | None = None


@dataclass(frozen=True)
class KeyMgmt:
    """``a=key-mgmt:<prtcl-id> <keymgmt-data>`` (RFC 4567 §3.1), e.g. ``mikey``."""

    protocol: str
    data: str


class _Attributes:
    """Attribute look-ups shared by the session and the media level."""

    attributes: list[Attribute]

    def has(self, name: str) -> bool:
        """True when an attribute ``name`` is present."""
        return any(a.name == name for a in self.attributes)

    def get(self, name: str) -> str | None:
        """The value of the first attribute ``name`` (None if absent or a flag)."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value
        return None

    def values(self, name: str) -> list[str]:
        """The values of every attribute ``name``, in order."""
        return [a.value for a in self.attributes if a.name == name and a.value is not None]

    @property
    def key_mgmt(self) -> list[KeyMgmt]:
        """The ``a=key-mgmt`` attributes at this level (RFC 4567 §3.1)."""
        found: list[KeyMgmt] = []
        for value in self.values("key-mgmt"):
            match = _KEY_MGMT_RE.fullmatch(value)
            if not match:
                raise SdpError("bad key-mgmt attribute", StatusCode.NOT_ACCEPTABLE_HERE)
            found.append(KeyMgmt(match.group(1).lower(), match.group(2)))
        return found

    @property
    def own_direction(self) -> Direction | None:
        """The direction attribute at this level, if any (RFC 8866 §6.7)."""
        for attribute in self.attributes:
            if attribute.value is None and attribute.name in _DIRECTIONS:
                return Direction(attribute.name)
        return None


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass
class Media(_Attributes):
    """One media description, ``m=`` and its fields (RFC 8866 §5.14)."""

    media: str
    port: int
    proto: str
    fmts: list[str]
    num_ports: int | None = None
    title: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    @property
    def is_rejected(self) -> bool:
        """Port 0: the stream is rejected or disabled (RFC 3264 §5.1, §6)."""
        return self.port == 0

    @property
    def is_srtp(self) -> bool:
        """True for a secure RTP profile (RTP/SAVP, RTP/SAVPF; RFC 3711 §12)."""
        return "SAVP" in self.proto.upper()

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """``a=rtpmap`` by payload type (RFC 8866 §6.6)."""
        maps: dict[int, RtpMap] = {}
        for value in self.values("rtpmap"):
            match = _RTPMAP_RE.fullmatch(value.strip())
            if not match or int(match.group(1)) > 127:
                raise SdpError("bad rtpmap attribute", StatusCode.NOT_ACCEPTABLE_HERE)
            pt = int(match.group(1))
            channels = int(match.group(4)) if match.group(4) else None
            maps[pt] = RtpMap(pt, match.group(2), int(match.group(3)), channels)
        return maps

    @property
    def fmtps(self) -> dict[str, str]:
        """``a=fmtp`` parameters by format (RFC 8866 §6.15)."""
        out: dict[str, str] = {}
        for value in self.values("fmtp"):
            fmt, _, params = value.partition(" ")
            out[fmt] = params
        return out

    @property
    def rtcp(self) -> Rtcp | None:
        """``a=rtcp`` (RFC 3605 §2.1), or None."""
        value = self.get("rtcp")
        if value is None:
            return None
        match = _RTCP_RE.fullmatch(value.strip())
        if not match or int(match.group(1)) > 65535:
            raise SdpError("bad rtcp attribute", StatusCode.NOT_ACCEPTABLE_HERE)
        conn = None
        if match.group(2):
            conn = Connection(match.group(2), match.group(3), match.group(4))
        return Rtcp(int(match.group(1)), conn)

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux`` (RFC 5761 §5.1.1)."""
        return self.has("rtcp-mux")

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (RFC 8866 §6.4)."""
        value = self.get("ptime")
        try:
            return int(float(value)) if value is not None else None
        except ValueError as exc:
            raise SdpError("bad ptime attribute", StatusCode.NOT_ACCEPTABLE_HERE) from exc

    def rejected(self) -> Media:
        """This stream refused in an answer: port 0, the offered formats kept
        (RFC 3264 §6: at least one format must be listed)."""
        return Media(self.media, 0, self.proto, list(self.fmts[:1]) or ["0"])

    def lines(self) -> list[str]:
        """The ``x=`` lines of this media description, in RFC 8866 order."""
        port = f"{self.port}/{self.num_ports}" if self.num_ports is not None else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.fmts)}"]
        if self.title is not None:
            out.append(f"i={self.title}")
        out.extend(f"c={c}" for c in self.connections)
        out.extend(f"b={b}" for b in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a}" for a in self.attributes)
        return out


@dataclass
class SessionDescription(_Attributes):
    """A whole session description (RFC 8866 §5)."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timings: list[Timing] = field(default_factory=lambda: [Timing()])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    zone: str | None = None
    key: str | None = None

    # -- codec -----------------------------------------------------------------------
    @classmethod
    def parse(cls, data: str | bytes) -> SessionDescription:
        """Parse SDP text (RFC 8866 §5, §9); raises SdpError."""
        if isinstance(data, bytes):
            if len(data) > MAX_SDP_SIZE:
                raise SdpError("too large", StatusCode.REQUEST_ENTITY_TOO_LARGE)
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError("not UTF-8") from exc
        elif len(data) > MAX_SDP_SIZE:
            raise SdpError("too large", StatusCode.REQUEST_ENTITY_TOO_LARGE)
        lines = data.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > MAX_LINES:
            raise SdpError("too many lines", StatusCode.REQUEST_ENTITY_TOO_LARGE)
        return _Parser(lines).parse()

    def lines(self) -> list[str]:
        """The ``x=`` lines in RFC 8866 order."""
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={e}" for e in self.emails)
        out.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        for timing in self.timings:
            out.append(f"t={timing.start} {timing.stop}")
            out.extend(f"r={r}" for r in timing.repeats)
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a}" for a in self.attributes)
        for media in self.media:
            out.extend(media.lines())
        return out

    def __str__(self) -> str:
        return "\r\n".join(self.lines()) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    # -- helpers ---------------------------------------------------------------------
    def key_mgmt_for(self, index: int) -> list[KeyMgmt]:
        """The key-mgmt that applies to media ``index``: its own, else the session's
        (RFC 4567 §3.1: media level overrides session level)."""
        own = self.media[index].key_mgmt
        return own if own else self.key_mgmt

    def direction_of(self, index: int) -> Direction:
        """The direction of media ``index``: its own, else the session's, else
        sendrecv (RFC 8866 §6.7)."""
        return self.media[index].own_direction or self.own_direction or Direction.SENDRECV

    def connection_of(self, index: int) -> Connection | None:
        """The connection address of media ``index`` (RFC 8866 §5.7)."""
        own = self.media[index].connections
        return own[0] if own else self.connection

    def next_version(self) -> SessionDescription:
        """A copy whose o= version is one higher, for a new offer (RFC 3264 §8)."""
        origin = replace(self.origin, sess_version=self.origin.sess_version + 1)
        return replace(self, origin=origin)


class _Parser:
    """Line-by-line reader of RFC 8866 §9's grammar."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def parse(self) -> SessionDescription:
        fields = [self._split(line) for line in self.lines]
        if [f[0] for f in fields[:3]] != ["v", "o", "s"]:
            raise SdpError("must start with v=, o= and s=")
        if fields[0][1] != "0":
            raise SdpError("unsupported SDP version")
        sd = SessionDescription(origin=self._origin(fields[1][1]), session_name=fields[2][1])
        sd.timings = []
        media: Media | None = None
        for letter, value in fields[3:]:
            if letter == "m":
                media = self._media(value)
                sd.media.append(media)
            elif media is None:
                self._session_field(sd, letter, value)
            else:
                self._media_field(media, letter, value)
        if not sd.timings:
            raise SdpError("no t= line")
        for index, item in enumerate(sd.media):
            if not item.is_rejected and sd.connection_of(index) is None:
                raise SdpError("no c= line for a media stream")
        return sd

    @staticmethod
    def _split(line: str) -> tuple[str, str]:
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError(f"malformed line {line[:20]!r}")
        if "\r" in line or "\x00" in line:
            raise SdpError("control character in a line")
        return line[0], line[2:]

    @staticmethod
    def _origin(value: str) -> Origin:
        match = _ORIGIN_RE.fullmatch(value)
        if not match:
            raise SdpError("bad o= line")
        user, sess_id, version, nettype, addrtype, address = match.groups()
        if len(version) > 20:
            raise SdpError("o= version too large")
        return Origin(user, sess_id, int(version), nettype, addrtype, address)

    @staticmethod
    def _connection(value: str) -> Connection:
        match = _CONNECTION_RE.fullmatch(value)
        if not match:
            raise SdpError("bad c= line")
        return Connection(*match.groups())

    @staticmethod
    def _bandwidth(value: str) -> Bandwidth:
        match = _BANDWIDTH_RE.fullmatch(value)
        if not match or len(match.group(2)) > 12:
            raise SdpError("bad b= line")
        return Bandwidth(match.group(1), int(match.group(2)))

    @staticmethod
    def _attribute(value: str) -> Attribute:
        match = _ATTRIBUTE_RE.fullmatch(value)
        if not match:
            raise SdpError("bad a= line")
        return Attribute(match.group(1), match.group(2))

    @staticmethod
    def _media(value: str) -> Media:
        match = _MEDIA_RE.fullmatch(value)
        if not match:
            raise SdpError("bad m= line")
        media, port, count, proto, fmts = match.groups()
        if len(port) > 5 or int(port) > 65535:
            raise SdpError("bad m= port")
        num_ports = int(count) if count is not None else None
        if num_ports is not None and (len(count) > 5 or num_ports == 0):
            raise SdpError("bad m= port count")
        return Media(media, int(port), proto, fmts.split(), num_ports)

    def _session_field(self, sd: SessionDescription, letter: str, value: str) -> None:
        if letter == "c":
            if sd.connection is not None:
                raise SdpError("more than one session-level c= line")
            sd.connection = self._connection(value)
        elif letter == "t":
            match = _TIME_RE.fullmatch(value)
            if not match:
                raise SdpError("bad t= line")
            sd.timings.append(Timing(int(match.group(1)), int(match.group(2))))
        elif letter == "r":
            if not sd.timings:
                raise SdpError("r= before t=")
            last = sd.timings[-1]
            sd.timings[-1] = replace(last, repeats=(*last.repeats, value))
        elif letter == "a":
            sd.attributes.append(self._attribute(value))
        elif letter == "b":
            sd.bandwidths.append(self._bandwidth(value))
        elif letter in "iuzk":
            attr = {"i": "information", "u": "uri", "z": "zone", "k": "key"}[letter]
            if getattr(sd, attr) is not None:
                raise SdpError(f"more than one {letter}= line")
            setattr(sd, attr, value)
        elif letter == "e":
            sd.emails.append(value)
        elif letter == "p":
            sd.phones.append(value)
        else:
            raise SdpError(f"unexpected {letter}= line at session level")

    def _media_field(self, media: Media, letter: str, value: str) -> None:
        if letter == "a":
            media.attributes.append(self._attribute(value))
        elif letter == "c":
            media.connections.append(self._connection(value))
        elif letter == "b":
            media.bandwidths.append(self._bandwidth(value))
        elif letter == "i" and media.title is None:
            media.title = value
        elif letter == "k" and media.key is None:
            media.key = value
        else:
            raise SdpError(f"unexpected {letter}= line in a media description")


# ---------------------------------------------------------------------------------------
# Offer / answer (RFC 3264)
# ---------------------------------------------------------------------------------------


def check_answer(offer: SessionDescription, answer: SessionDescription) -> None:
    """An answer must have as many m= lines as the offer, in the same order and of the
    same media types, and keep refused streams refused (RFC 3264 §6); else 488."""
    if len(answer.media) != len(offer.media):
        raise SdpError("answer has a different number of m= lines", StatusCode.NOT_ACCEPTABLE_HERE)
    for index, (offered, answered) in enumerate(zip(offer.media, answer.media, strict=True)):
        if offered.media != answered.media:
            raise SdpError(
                f"answer m= line {index} has another media type", StatusCode.NOT_ACCEPTABLE_HERE
            )
        if offered.is_rejected and not answered.is_rejected:
            raise SdpError(
                f"answer accepts refused m= line {index}", StatusCode.NOT_ACCEPTABLE_HERE
            )
        if not answered.is_rejected and answered.proto.upper() != offered.proto.upper():
            raise SdpError(
                f"answer m= line {index} changes the transport protocol",
                StatusCode.NOT_ACCEPTABLE_HERE,
            )


def check_reoffer(previous: SessionDescription, offer: SessionDescription) -> None:
    """A new offer in a session keeps the m= lines (it may add, never remove) and
    raises the o= version by exactly one, or repeats the previous SDP unchanged with
    the same version (RFC 3264 §8)."""
    if len(offer.media) < len(previous.media):
        raise SdpError("re-offer removes m= lines", StatusCode.NOT_ACCEPTABLE_HERE)
    if offer.origin.sess_id != previous.origin.sess_id:
        raise SdpError("re-offer changes the o= session id", StatusCode.NOT_ACCEPTABLE_HERE)
    version, before = offer.origin.sess_version, previous.origin.sess_version
    if version == before and str(offer) != str(previous):
        raise SdpError("changed re-offer keeps the o= version", StatusCode.NOT_ACCEPTABLE_HERE)
    if version not in (before, before + 1):
        raise SdpError("re-offer o= version is not previous + 1", StatusCode.NOT_ACCEPTABLE_HERE)


def build_answer(
    offer: SessionDescription,
    origin: Origin,
    accept: Callable[[int, Media], Media | None],
    *,
    connection: Connection | None = None,
    attributes: list[Attribute] | None = None,
) -> SessionDescription:
    """An answer with one m= line per offered one (RFC 3264 §6): ``accept(index,
    offered)`` returns the answered stream, or None to refuse it (port 0).  Streams
    refused in the offer stay refused."""
    media: list[Media] = []
    for index, offered in enumerate(offer.media):
        answered = None if offered.is_rejected else accept(index, offered)
        media.append(answered if answered is not None else offered.rejected())
    answer = SessionDescription(
        origin=origin,
        session_name="-",
        connection=connection,
        timings=list(offer.timings) or [Timing()],
        attributes=list(attributes or []),
        media=media,
    )
    check_answer(offer, answer)
    return answer
