"""Human-readable rendering for ``mobilityctl`` (``--json`` bypasses all of this)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

CALL_COLUMNS = (("ID", "id"), ("PEER", "peer"), ("STATE", "state"), ("KEYS", "key_agreement"),
                ("SRTP", "srtp_suite"), ("LOCAL", "local"), ("REMOTE", "remote"),
                ("MOVES", "moves"))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def calls_table(calls: Sequence[Mapping[str, Any]]) -> str:
    if not calls:
        return "no calls"
    rows = [[_cell(call.get(key)) for _, key in CALL_COLUMNS] for call in calls]
    return table([h for h, _ in CALL_COLUMNS], rows)


def status_text(status: Mapping[str, Any]) -> str:
    ident = status.get("identity", {})
    who = f"{ident.get('display_name') or ''} <{ident.get('uri')}>".strip()
    if ident.get("device"):
        who += f" (device {ident['device']})"
    calls = status.get("calls", {})
    lines = [
        f"mobilityd {status.get('version')} (pid {status.get('pid')}, up "
        f"{_duration(float(status.get('uptime_s', 0)))}, protocol v{status.get('protocol')})",
        f"identity   {who}",
        f"config     {status.get('config')}",
        f"security   {status.get('security_policy')}",
        f"log level  {status.get('log_level')}",
        "calls      " + (str(calls.get("count", 0)) if calls.get("available")
                         else "call handling not available in this build"),
    ]
    for peer in status.get("peers", []):
        lines.append(f"peer       {peer['name']}  {peer['uri']}  ({peer['key_agreement']})")
    for device in status.get("devices", []):
        lines.append(f"device     {device['name']}  {device['contact']}")
    registration = status.get("registration")
    if registration:
        lines.append(f"registrar  {registration.get('registrar')}  "
                     f"{registration.get('state')}  {registration.get('contact') or ''}")
        if registration.get("reason"):
            lines.append(f"           {registration['reason']}")
        if registration.get("gruu"):
            lines.append(f"gruu       {registration['gruu']}")
        if registration.get("username"):
            realm = registration.get("realm") or "any realm"
            lines.append(f"auth       {registration['username']} ({realm}), password in "
                         f"{registration.get('password_file')}")
    network = status.get("network")
    if network is not None and not network.get("available"):
        lines.append(f"network    not watched: {network.get('error')}")
    elif network is not None:
        for entry in network.get("addresses", []):
            lines.append(f"address    {entry['interface']}  {entry['address']}")
    reload = status.get("last_reload")
    if reload:
        when = time.strftime("%H:%M:%S", time.localtime(float(reload["at"])))
        state = "ok" if reload["ok"] else f"FAILED: {reload['error']}"
        lines.append(f"reload     {status.get('reloads')} so far, last at {when}: {state}")
    if status.get("restart_required"):
        lines.append("restart    needed for " + ", ".join(status["restart_required"]))
    if calls.get("available") and calls.get("list"):
        lines += ["", calls_table(calls["list"])]
        lines += moves_text(calls["list"])
    return "\n".join(lines)


def moves_text(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """The move history of each call with its measured gaps (roams and transfers)."""
    lines = []
    for call in calls:
        for move in call.get("moves") or []:
            gap = move.get("gap_ms")
            gap_text = f"gap {gap:.1f} ms" if isinstance(gap, int | float) else "gap -"
            lines.append(f"  {call.get('id')}  {move.get('kind', 'move'):<8} "
                         f"{_cell(move.get('from'))} -> {_cell(move.get('to'))}  {gap_text}")
    return ["", "moves:", *lines] if lines else []


def event_line(event: str, data: Mapping[str, Any], at: float) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"
    fields = " ".join(f"{k}={_cell(v)}" for k, v in data.items())
    return f"{stamp}  {event:<20} {fields}".rstrip()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return str(len(value)) if value and isinstance(value[0], dict) else ",".join(
            str(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
