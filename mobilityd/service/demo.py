"""``mobilityd demo``: the project's main job, end to end, in under a minute.

Builds the world of :mod:`.demo_world` (network namespaces), starts the three daemons of
``agents/`` (:mod:`.demo_agents`), and drives them only through their control sockets:

1. the laptop calls Alice (secure: MIKEY PSK in the INVITE, RFC 4567 §3.1 / RFC 3830
   §3.1; SRTP, RFC 3711), Alice answers; both send a tone;
2. the laptop roams from Wi-Fi A to Wi-Fi B and back: the demo only changes addresses
   in the laptop's namespace; the laptop's daemon notices (rtnetlink), rebinds and
   re-INVITEs with the RFC 3830 §4.5 update, Alice verifies it and media follows
   (back on Wi-Fi A, the PDA reaches the laptop at its configured address again);
3. the call moves to the PDA and back (``move`` / ``pull``);
4. the laptop hangs up.

It prints a timeline (each step, its measured gap, the SRTP counters that prove the
context never changed: same SSRCs, packet index running on, zero authentication
failures and replays), writes ``summary.txt`` and ``timeline.png`` (packets received per
20 ms on each device, moves and gaps marked) into ``--out``, and exits 1 if any check
fails, naming it. Without root it re-executes itself in an unprivileged user namespace
(``unshare -Urnm``, :mod:`.demo_userns`) and builds the same world there; if the kernel
refuses one, it says which setting refuses and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mobilityd.service.demo_agents import DemoAgents, DemoError
from mobilityd.service.demo_kamailio import (
    DOMAINS,
    MISSING_KAMAILIO,
    DemoKamailio,
    KamailioError,
    kamailio_binary,
    proxy_failures,
    registered_contact,
    wait_registered,
)
from mobilityd.service.demo_report import DemoReport
from mobilityd.service.demo_userns import (
    INSIDE_ENV,
    enter_private_mount_namespace,
    inside_user_namespace,
    prepare_inside,
    reexec_argv,
    resolve_names,
    userns_refusal,
)
from mobilityd.service.demo_world import (
    LAPTOP_WIFI_A,
    LAPTOP_WIFI_B,
    PROXY_IP,
    DemoWorld,
    WorldError,
)
from mobilityd.service.errors import ControlError
from mobilityd.service.protocol import Op

__all__ = ["established_call", "main", "place_and_answer", "roam_laptop", "run_demo",
           "wait_until"]

EXIT_OK, EXIT_CHECK_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
TALK = 2.0  # seconds of audio between steps
STEP_TIMEOUT = 15.0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mobilityd demo",
        description="Secure call, Wi-Fi roaming and a move between devices, between "
                    "three mobilityd daemons in network namespaces (as root, or in an "
                    "unprivileged user namespace where the kernel allows one).")
    parser.add_argument("--out", type=Path, default=Path("demo-out"),
                        help="output directory for summary.txt, timeline.png and the "
                             "daemon logs (default ./demo-out)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"),
                        help="log level of the three daemons (their logs go to --out)")
    parser.add_argument("--kamailio", action="store_true",
                        help="route everything through Kamailio (Debian package kamailio) "
                             "as registrar and Record-Route proxy in a fourth namespace: "
                             "the daemons register (GRUU), the roam re-registers, the "
                             "transfer targets the PDA's GRUU")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary key/config directory")
    return parser.parse_args(argv)


def wait_until(what: str, condition: Callable[[], object],
               timeout: float = STEP_TIMEOUT) -> None:
    """Poll ``condition()`` until true; a timeout is a :class:`DemoError` naming it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise DemoError(f"{what}: not done after {timeout:.0f} s")


def established_call(agents: DemoAgents, role: str) -> str | None:
    for call in agents.calls(role):
        if call.get("state") == "established":
            return str(call["id"])
    return None


def ringing_call(agents: DemoAgents, role: str) -> str | None:
    for call in agents.calls(role):
        if call.get("state") == "ringing":
            return str(call["id"])
    return None


def place_and_answer(agents: DemoAgents) -> str:
    """The laptop calls Alice (peer ``alice``), Alice answers; the laptop's call id."""
    placed = agents.request("laptop", Op.PLACE, uri="sip:alice@example.net", peer="alice")
    wait_until("alice sees the call ringing", lambda: ringing_call(agents, "correspondent"))
    ringing = ringing_call(agents, "correspondent")
    assert ringing is not None
    agents.request("correspondent", Op.ANSWER, call=ringing)
    wait_until("call established on both sides",
               lambda: established_call(agents, "laptop")
               and established_call(agents, "correspondent"))
    return str(placed["id"])


def roam_laptop(agents: DemoAgents, world: DemoWorld, *, back: bool = False) -> None:
    """Wi-Fi A -> B (or back) in the laptop's namespace; wait until its daemon measured
    the move (and, with a registrar, re-registered from the new address, RFC 3261
    §10.2.2)."""
    done_before = sum(1 for call in agents.calls("laptop") for m in call.get("moves", [])
                      if m.get("gap_ms") is not None)
    world.roam_laptop(back=back)

    def moved() -> bool:
        return sum(1 for call in agents.calls("laptop") for m in call.get("moves", [])
                   if m.get("gap_ms") is not None) > done_before
    wait_until(f"the laptop's call moved to Wi-Fi {'A' if back else 'B'}", moved)
    if agents.registrar:
        ip = LAPTOP_WIFI_A if back else LAPTOP_WIFI_B
        wait_until(f"the laptop re-registered from {ip}",
                   lambda: f"@{ip}:" in (registered_contact(agents, "laptop") or ""))


def transfer(agents: DemoAgents, op: Op) -> None:
    """Move the call to the PDA (``move``) or pull it back (``pull``), from the laptop."""
    holder = "laptop" if op is Op.MOVE else "pda"
    call_id = established_call(agents, holder)
    if call_id is None:
        raise DemoError(f"no established call on the {holder} to transfer")
    if op is Op.MOVE:
        agents.request("laptop", Op.MOVE, call=call_id, device="pda")
        wait_until("the call is up on the PDA", lambda: established_call(agents, "pda"))
    else:
        agents.request("laptop", Op.PULL, call=call_id)
        wait_until("the call is back on the laptop", lambda: established_call(agents, "laptop"))


def run_demo(agents: DemoAgents, world: DemoWorld, report: DemoReport) -> None:
    """The steps (module docstring); each records itself in ``report``."""
    with report.step("place a secure call laptop -> alice, alice answers"):
        report.call_id = place_and_answer(agents)
    report.snapshot(agents, "after set-up", talk=TALK)

    with report.step("roam the laptop: Wi-Fi A (10.2.0.2) -> Wi-Fi B (10.3.0.2)"):
        report.mark("ROAM WI-FI A > B")
        roam_laptop(agents, world)
    report.snapshot(agents, "after roaming to Wi-Fi B", talk=TALK)

    with report.step("roam the laptop back: Wi-Fi B (10.3.0.2) -> Wi-Fi A (10.2.0.2)"):
        report.mark("ROAM B > A")
        roam_laptop(agents, world, back=True)
    report.snapshot(agents, "after roaming back to Wi-Fi A", talk=TALK)

    try:
        for op, label in ((Op.MOVE, "MOVE TO PDA"), (Op.PULL, "PULL BACK")):
            title = ("move the call to the PDA" if op is Op.MOVE
                     else "pull it back to the laptop")
            report.capture(agents, f"before {label.lower()}")
            with report.step(title):
                report.mark(label)
                transfer(agents, op)
            report.snapshot(agents, f"after {label.lower()}", talk=TALK)
    except (DemoError, ControlError) as exc:  # still hang up, then report the failure
        report.failed_step(f"transfer between Bob's devices: {exc}")

    with report.step("hang up"):
        report.mark("HANG UP")
        holder = "laptop" if established_call(agents, "laptop") else "pda"
        call_id = established_call(agents, holder)
        if call_id is None:
            raise DemoError("no established call to hang up")
        report.final_calls = {role: agents.calls(role)
                              for role in ("correspondent", "laptop", "pda")}
        agents.request(holder, Op.HANGUP, call=call_id)
        wait_until("the call ended on alice's side", lambda: not agents.calls("correspondent"))


def run_unprivileged(argv: Sequence[str]) -> int:
    """Not root: re-execute the demo in an unprivileged user namespace
    (:mod:`.demo_userns`), or say clearly why this kernel does not allow it (exit 2)."""
    if os.environ.get(INSIDE_ENV) == "1":  # unshare ran us but we are not its root
        print("mobilityd demo: inside the user namespace but not mapped to root "
              f"(uid {os.geteuid()}); cannot build the test network", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if not os.access(sys.executable, os.X_OK):
        print(f"mobilityd demo: not root, and this Python ({sys.executable}) cannot be "
              f"executed again by uid {os.geteuid()} (is it under a directory other users "
              "cannot enter?); run the demo with a Python this user may execute, or as "
              "root (sudo)", file=sys.stderr)
        return EXIT_CANNOT_RUN
    refusal = userns_refusal()
    if refusal is not None:
        print(f"mobilityd demo: not root, and {refusal}; run the demo as root (sudo), "
              "which builds the network namespaces directly", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print("mobilityd demo: not root: building the test network in an unprivileged user "
          "namespace (unshare -Urnm)", flush=True)
    command = reexec_argv(argv)
    try:
        os.execvpe(command[0], command, {**os.environ, INSIDE_ENV: "1"})
    except OSError as exc:
        print(f"mobilityd demo: cannot run {command[0]}: {exc}", file=sys.stderr)
    return EXIT_CANNOT_RUN


def prepare_namespaces(with_kamailio: bool) -> str | None:
    """Root of the user namespace: a private ``/run`` for ``ip netns``; with Kamailio,
    as plain root, a mount namespace of our own for the demo's ``/etc/hosts``. Why it
    failed, or None."""
    if inside_user_namespace():
        return prepare_inside()
    return enter_private_mount_namespace() if with_kamailio else None


def start_kamailio(world: DemoWorld, base: Path, out: Path) -> DemoKamailio:
    """Make the agents' domains resolve to the proxy (as DNS would), start Kamailio
    there; raises :class:`KamailioError`."""
    problem = resolve_names({domain: PROXY_IP for domain in DOMAINS}, base)
    if problem is not None:
        raise KamailioError(problem)
    kamailio = DemoKamailio(world, base, out)
    kamailio.start()
    return kamailio


def with_system_path(path: str) -> str:
    """``path`` plus ``/usr/sbin`` and ``/sbin``, where ``ip``, ``sysctl`` and
    ``kamailio`` live but which an ordinary user's PATH lacks on Debian."""
    parts = [p for p in path.split(os.pathsep) if p]
    return os.pathsep.join([*parts, *(d for d in ("/usr/sbin", "/sbin") if d not in parts)])


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    out: Path = args.out
    os.environ["PATH"] = with_system_path(os.environ.get("PATH", "/usr/bin:/bin"))
    if os.geteuid() != 0:
        return run_unprivileged(argv)
    if args.kamailio and kamailio_binary() is None:
        print(f"mobilityd demo: {MISSING_KAMAILIO}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    problem = prepare_namespaces(args.kamailio)
    if problem is not None:
        print(f"mobilityd demo: {problem}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"mobilityd demo: cannot create the output directory {out}: {exc}",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    world = DemoWorld(with_proxy=args.kamailio)
    base = Path(tempfile.mkdtemp(prefix="mobilityd-demo-"))
    report = DemoReport(out)
    agents = DemoAgents(world, base, out, log_level=args.log_level, registrar=args.kamailio)
    kamailio: DemoKamailio | None = None
    try:
        try:
            world.build()
            if args.kamailio:
                kamailio = start_kamailio(world, base, out)
        except (WorldError, KamailioError) as exc:
            print(f"mobilityd demo: cannot build the test network: {exc}", file=sys.stderr)
            return EXIT_CANNOT_RUN
        try:
            with report.step("start three daemons (correspondent, laptop, pda)"):
                agents.start()
            if kamailio is not None:
                with report.step("register the three daemons at Kamailio (GRUU)"):
                    for role, found in wait_registered(agents).items():
                        report.say(f"           {role:<13} {found['contact']}  "
                                   f"GRUU {found.get('gruu') or '-'}")
            run_demo(agents, world, report)
        except (DemoError, ControlError, KamailioError) as exc:
            report.failed_step(str(exc))
        finally:
            if not report.final_calls:
                with contextlib.suppress(Exception):  # a daemon may be gone: report it
                    report.final_calls = {role: agents.calls(role)
                                          for role in ("correspondent", "laptop", "pda")}
            report.exit_codes = agents.stop() if agents.processes else {}
    finally:
        if kamailio is not None:
            kamailio.stop()
            report.failures += proxy_failures(kamailio.log)
        world.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    ok = report.finish()
    return EXIT_OK if ok else EXIT_CHECK_FAILED
