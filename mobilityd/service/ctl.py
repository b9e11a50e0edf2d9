"""``mobilityctl``: the command-line side of the control API (docs/control-protocol.md).

Exit codes (also in ``mobilityctl --help``):

=====  ==============================================================
0      success
1      the daemon refused the operation (its error code is printed)
2      usage error (bad arguments)
3      the daemon cannot be reached (not running, wrong socket, no permission)
4      protocol error (unexpected answer, no answer in time)
5      a key file could not be created (``mobilityctl keys``)
=====  ==============================================================
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilityd.service.client import ControlClient, DaemonUnreachable
from mobilityd.service.completion import bash_completion
from mobilityd.service.config import DEFAULT_CONTROL_SOCKET
from mobilityd.service.ctlformat import calls_table, event_line, status_text
from mobilityd.service.errors import ControlError
from mobilityd.service.keys import (
    CA_DAYS,
    DEVICE_DAYS,
    RSA_BITS,
    KeyCreationError,
    create_ca,
    create_device_cert,
    write_psk,
)
from mobilityd.service.protocol import EventMessage, Op, Reply

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_PROTOCOL, EXIT_KEYS = range(6)
EXIT_CODES_HELP = """exit codes:
  0  success                          3  daemon unreachable (not running, socket, permission)
  1  operation refused by the daemon  4  protocol error (bad or missing answer)
  2  usage error                      5  key file could not be created (keys ...)"""
LONG_OPS = {Op.PLACE, Op.MOVE, Op.PULL}
PROGRESS_EVENTS = ["call-state-changed", "call-moved", "call-transferred", "security-failed"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilityctl", description="Control mobilityd: calls, moves, events, keys.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", type=Path,
                        default=Path(os.environ.get("MOBILITYD_SOCKET",
                                                    str(DEFAULT_CONTROL_SOCKET))),
                        help=f"control socket (default $MOBILITYD_SOCKET or "
                             f"{DEFAULT_CONTROL_SOCKET})")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for an answer (long operations: x6)")
    # the same options after the command too: "mobilityctl status --json"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", type=Path, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_calls(sub, common)
    _add_keys(sub, common)
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=("bash",))
    return parser


def _add_calls(sub: Any, common: argparse.ArgumentParser) -> None:
    def add(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text, parents=[common])
        return parser

    add("status", "daemon status and metrics")
    add("calls", "list calls")
    p = add("place", "place a secure call")
    p.add_argument("uri", help="SIP URI to call")
    p.add_argument("--peer", help="configured peer name whose keys to use")
    for name, text in (("answer", "answer a ringing call"), ("hangup", "end a call"),
                       ("pull", "pull a call from another of your devices to this one")):
        add(name, text).add_argument("id", help="call id")
    p = add("reject", "reject a ringing call")
    p.add_argument("id", help="call id")
    p.add_argument("--reason", help="reason given to the caller")
    p = add("move", "move a call to another of your devices")
    p.add_argument("id", help="call id")
    p.add_argument("device", help="device name from [[devices]]")
    p = add("watch", "live view of events (Ctrl-C to stop)")
    p.add_argument("--events", help="comma-separated event names (default: all)")


def _add_keys(sub: Any, common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="create PSKs, a local CA, device certificates")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="KIND")
    p = ksub.add_parser("psk", help="a pre-shared key file (hex, mode 0600)", parents=[common])
    p.add_argument("out", type=Path, help="file to create")
    p.add_argument("--bytes", type=int, default=32, help="key length (default 32)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p = ksub.add_parser("ca", help="a local CA key (0600) and self-signed certificate",
                        parents=[common])
    p.add_argument("--key", type=Path, required=True, help="CA private key to create")
    p.add_argument("--cert", type=Path, required=True, help="CA certificate to create")
    p.add_argument("--name", default="mobilityd local CA", help="CA common name")
    p.add_argument("--days", type=int, default=CA_DAYS)
    p.add_argument("--bits", type=int, choices=RSA_BITS, default=3072, help="RSA key size")
    p.add_argument("--force", action="store_true")
    p = ksub.add_parser("device-cert", help="a device key and certificate signed by the CA",
                        parents=[common])
    p.add_argument("--ca-key", type=Path, required=True)
    p.add_argument("--ca-cert", type=Path, required=True)
    p.add_argument("--uri", required=True, help="the user's SIP URI (subjectAltName)")
    p.add_argument("--device", required=True, help="device name (certificate CN)")
    p.add_argument("--key", type=Path, required=True, help="device private key to create")
    p.add_argument("--cert", type=Path, required=True, help="device certificate to create")
    p.add_argument("--days", type=int, default=DEVICE_DAYS)
    p.add_argument("--bits", type=int, choices=RSA_BITS, default=2048, help="RSA key size")
    p.add_argument("--force", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "completion":
        print(bash_completion(parser))
        return EXIT_OK
    if args.command == "keys":
        return _keys(args)
    try:
        if args.command == "watch":
            return _watch(args)
        return _operation(args)
    except DaemonUnreachable as exc:
        _fail(f"cannot reach mobilityd: {exc}")
        return EXIT_UNREACHABLE
    except ControlError as exc:
        _fail(f"protocol error: {exc.message}")
        return EXIT_PROTOCOL
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "watch" else EXIT_REFUSED


def _operation(args: argparse.Namespace) -> int:
    op = Op(args.command)
    fields: dict[str, Any] = {}
    if op is Op.PLACE:
        fields = {"uri": args.uri, **({"peer": args.peer} if args.peer else {})}
    elif op is Op.MOVE:
        fields = {"call": args.id, "device": args.device}
    elif op in (Op.ANSWER, Op.HANGUP, Op.PULL, Op.REJECT):
        fields = {"call": args.id}
        if op is Op.REJECT and args.reason:
            fields["reason"] = args.reason
    timeout = args.timeout * (6 if op in LONG_OPS else 1)
    with ControlClient(args.socket, timeout) as client:
        if op in LONG_OPS and not args.json:
            reply = _with_progress(client, op, fields)
        else:
            reply = client.request(op, **fields)
    if not reply.ok:
        error = reply.error or {}
        field = f" (field '{error['field']}')" if error.get("field") else ""
        if args.json:
            print(json.dumps({"ok": False, "error": error}))
        _fail(f"{op.value} refused: {error.get('code', '?')}: {error.get('message', '')}{field}")
        return EXIT_REFUSED
    if args.json:
        print(json.dumps(reply.result, indent=2))
    elif op is Op.STATUS:
        print(status_text(reply.result))
    elif op is Op.CALLS:
        print(calls_table(reply.result))
    else:
        print(f"{op.value}: ok" + (f" {json.dumps(reply.result)}" if reply.result else ""))
    return EXIT_OK


def _with_progress(client: ControlClient, op: Op, fields: dict[str, Any]) -> Reply:
    """Send a long operation and print the events about it to stderr until it answers."""
    client.request(Op.SUBSCRIBE, events=PROGRESS_EVENTS)
    started = time.monotonic()
    target = fields.get("call") or fields.get("uri")
    print(f"{op.value} {target}...", file=sys.stderr)
    request_id = client.send(op, **fields)
    while True:
        message = client.receive()
        if isinstance(message, EventMessage):
            print("  " + event_line(message.event, message.data, time.time()), file=sys.stderr)
        elif message.id == request_id:
            elapsed = (time.monotonic() - started) * 1000
            print(f"{op.value} {'done' if message.ok else 'failed'} after {elapsed:.0f} ms",
                  file=sys.stderr)
            return message


def _watch(args: argparse.Namespace) -> int:
    events = [e.strip() for e in args.events.split(",")] if args.events else None
    with ControlClient(args.socket, None) as client:
        reply = client.request(Op.SUBSCRIBE, **({"events": events} if events else {}))
        if not reply.ok:
            _fail(f"watch refused: {(reply.error or {}).get('message')}")
            return EXIT_REFUSED
        if not args.json:
            print(f"watching {', '.join(reply.result['subscribed'])} (Ctrl-C to stop)",
                  file=sys.stderr)
        while True:
            message = client.receive()
            if not isinstance(message, EventMessage):
                continue
            if args.json:
                print(json.dumps({"event": message.event, "seq": message.seq,
                                  "data": message.data}), flush=True)
            else:
                print(event_line(message.event, message.data, time.time()), flush=True)


def _keys(args: argparse.Namespace) -> int:
    now = datetime.datetime.now(datetime.UTC)
    try:
        if args.keys_command == "psk":
            write_psk(args.out, length=args.bytes, force=args.force)
            made = [args.out]
        elif args.keys_command == "ca":
            create_ca(args.key, args.cert, args.name, now=now, days=args.days, bits=args.bits,
                      force=args.force)
            made = [args.key, args.cert]
        else:
            create_device_cert(args.ca_key, args.ca_cert, args.uri, args.device,
                               key_path=args.key, cert_path=args.cert, now=now,
                               days=args.days, bits=args.bits, force=args.force)
            made = [args.key, args.cert]
    except KeyCreationError as exc:
        _fail(f"keys {args.keys_command}: {exc}")
        return EXIT_KEYS
    for path in made:
        mode = path.stat().st_mode & 0o777
        if args.json:
            continue
        print(f"created {path} (mode {mode:04o})")
    if args.json:
        print(json.dumps({"created": [str(p) for p in made]}))
    return EXIT_OK


def _fail(message: str) -> None:
    print(f"mobilityctl: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
