"""``python -m mobilityd.bench setup [--json] [--quick]``: call-setup delays (issue 4).

Measured as the thesis's Appendix B defines them (Definitions 1 and 2):

* **calling delay**: Alice dials (``CallAgent.place``) until the 180 Ringing reaches
  her SIP endpoint -- measured in the caller's process;
* **answering delay**: Bob picks up (``CallAgent.answer``) until the ACK reaches his
  SIP endpoint -- measured in the callee's process.

Both ends are :class:`~mobilityd.call.agent.CallAgent` s in their own process, each in its
own network namespace joined by a veth pair (root), or on two loopback addresses
(without root; the JSON says which in ``"hosts"``). ``--proxy`` puts each side's
Kamailio on the SIP path as in the thesis's testbed (Alice -> her proxy -> Bob's proxy
-> Bob, record-routed; ``"sip_path"`` says which). Modes: ``none`` (policy off),
``psk`` (RFC 3830 §3.1), ``dh`` (DH-SIGN §3.3, every key pair generated during the
call), ``dh-precomputed`` (DH-SIGN with the pools refilled between calls, so
``dh_pool_misses`` must stay 0), ``pke`` (§3.2). The time stamps are taken where the
SIP engine hands its event over (``SipEndpoint.event_received``, the documented hook),
with ``time.perf_counter``. The first calls of each mode are warm-up and not counted.
The modes are interleaved call by call (one agent per mode on each side), so that the
load of a shared machine falls on all of them alike and the secure/none ratios of the
headline compare like with like. ``phases_cpu_ms_median`` says where a mode's added
time goes: the CPU cost of each offer/answer step (:func:`phase_costs`).
``--realtime`` runs both workers under SCHED_FIFO (``chrt``, root): what is measured
is the same, but on a machine shared with other busy processes their scheduling delays
no longer land on our delays (a secure mode, using more CPU per call, was delayed more
by CFS than ``none``); the JSON's ``"scheduling"`` says which; the default run is the
plain one.

Output: ``{"rows": [{"mode", "calling_ms_median", "calling_ms_p95",
"answering_ms_median", "answering_ms_p95", "calls", ...}], "thesis": ..., "headline":
..., "phases_cpu_ms_median": ..., "cpu_added_ms": ...}``; ``headline`` holds the
secure/none ratios (medians) of this run and the wall-clock targets, ``cpu_added_ms`` the
CPU each mode adds on each delay's path with the same targets checked on it (on a
machine without idle CPU, wall-clock figures carry the scheduler's delays; the CPU ones
do not). ``--loopback`` forces the no-root set-up. Nothing here asserts on time.
Workers: ``python -m mobilityd.bench.setup --worker {caller,callee} SPEC.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilityd.call import events as ce
from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import Answerer, CallSecurity, Offerer
from mobilityd.call.sdpmedia import MediaPort
from mobilityd.media.keying import sessions_for_call
from mobilityd.mikey.certs import issue_certificate
from mobilityd.mikey.dh import DhKeyPool
from mobilityd.mikey.session import PkCredentials
from mobilityd.sip import events as ev
from mobilityd.sip.message import Request

MODES = ("none", "psk", "dh", "dh-precomputed", "pke")
ALICE, BOB = "sip:alice@bench.example", "sip:bob@bench.example"
PSK = bytes(range(32))
WARMUP = 2
CALL_TIMEOUT = 10.0
# Thesis Appendix B, Tables 1 and 2 (minisip, 2003): totals in ms.
THESIS: dict[str, dict[str, int | str]] = {
    "none": {"calling_ms": 48, "answering_ms": 20},
    "psk": {"calling_ms": 90, "answering_ms": 25},
    "dh": {"calling_ms": 175, "answering_ms": "160-310"},
}
TARGETS: dict[str, float] = {"psk_added_ms_max": 2.0, "dh_precomputed_added_ms_max": 15.0}


@dataclass(frozen=True)
class WorkerSpec:
    """What one side runs (JSON for the worker process): one agent per mode, the agent
    of mode number i on ``base_port + i`` at both ends."""

    role: str
    modes: list[str]
    host: str
    peer_host: str
    base_port: int
    calls: int
    creds_dir: str
    gap_s: float
    proxy: tuple[str, int] | None = None


# ---------------------------------------------------------------- credentials


def write_credentials(directory: Path) -> None:
    """A CA and RSA keys + certificates with the SIP URI SANs (RFC 3830 §4.3.2)."""
    now = time.time()
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = issue_certificate(ca_key.public_key(), ca_key, "bench CA", not_before=now - 86400,
                           not_after=now + 86400 * 30, is_ca=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for serial, (name, uri) in enumerate((("alice", ALICE), ("bob", BOB)), start=2):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(key.public_key(), ca_key, uri, issuer=ca, sip_uri=uri,
                                 not_before=now - 86400, not_after=now + 86400 * 30,
                                 serial=serial)
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def _load(directory: Path, name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())


def keying_for(mode: str, me: str, peer: str, creds_dir: Path) -> KeyingConfig:
    """The MIKEY configuration of one side for ``mode`` (see the module docstring)."""
    peer_id = sip_identity(peer)
    if mode in ("none", "psk"):
        return KeyingConfig(peers={peer_id: PeerKeying(KeyMethod.PSK, PSK)})
    name, peer_name = ("alice", "bob") if me == ALICE else ("bob", "alice")
    key, cert = _load(creds_dir, name)
    ca = x509.load_pem_x509_certificate((creds_dir / "ca.pem").read_bytes())
    own = PkCredentials(key, cert, ca)
    if mode == "pke":
        peer_cert = _load(creds_dir, peer_name)[1]
        return KeyingConfig(peers={peer_id: PeerKeying(KeyMethod.PKE, certificate=peer_cert)},
                            own=own)
    pool = DhKeyPool(target_size=4 if mode == "dh-precomputed" else 0)
    return KeyingConfig(peers={peer_id: PeerKeying(KeyMethod.DH)}, own=own, dh_pool=pool)


# ---------------------------------------------------------------- workers


class SetupProbe:
    """Time stamps of the SIP events that end the thesis's delays, per call id."""

    def __init__(self) -> None:
        self.ringing: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self._ack_waiters: dict[str, asyncio.Future[float]] = {}

    def attach(self, agent: CallAgent) -> None:
        endpoint = agent.sip
        forward = endpoint.event_received

        def stamped(event: Any) -> None:
            now = time.perf_counter()
            if (isinstance(event, ev.ProvisionalResponseReceived)
                    and event.response.status == 180):
                self.ringing.setdefault(event.call_id, now)
            elif isinstance(event, ev.CallEstablished) and isinstance(event.message, Request):
                self.acked.setdefault(event.call_id, now)
                waiter = self._ack_waiters.pop(event.call_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
            forward(event)

        setattr(endpoint, "event_received", stamped)  # noqa: B010 - instance hook

    async def ack_time(self, call_id: str, timeout: float = 5.0) -> float:
        """When the ACK of ``call_id`` reached the callee (waits for it)."""
        if call_id in self.acked:
            return self.acked[call_id]
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._ack_waiters[call_id] = waiter
        async with asyncio.timeout(timeout):
            return await waiter


async def _next(agent: CallAgent, kinds: tuple[type[ce.CallEvent], ...],
                timeout: float = CALL_TIMEOUT) -> ce.CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kinds):
                return event


def _agent(spec: WorkerSpec, index: int) -> CallAgent:
    mode = spec.modes[index]
    me, peer = (ALICE, BOB) if spec.role == "caller" else (BOB, ALICE)
    keying = keying_for(mode, me, peer, Path(spec.creds_dir))
    keying.dh_pool.fill(os.urandom)
    security = CallSecurity.OFF if mode == "none" else CallSecurity.REQUIRED
    port = spec.base_port + index
    first_hop = (str(spec.proxy[0]), int(spec.proxy[1])) if spec.proxy else (spec.peer_host,
                                                                              port)
    return CallAgent(AgentConfig(
        me, spec.host, port, security=security, keying=keying,
        contacts={sip_identity(peer): first_hop}))


async def _start_agents(spec: WorkerSpec, probe: SetupProbe) -> dict[str, CallAgent]:
    agents = {mode: _agent(spec, index) for index, mode in enumerate(spec.modes)}
    for agent in agents.values():
        await agent.start()
        probe.attach(agent)
    return agents


async def _one_call(agent: CallAgent, probe: SetupProbe
                    ) -> tuple[str, tuple[float, float] | None, str]:
    """Dial, wait for the outcome, hang up: (call id, (calling delay ms, of which in
    ``place()``: offer + INVITE sent) or None, why)."""
    # Bob's identity with the port of this mode's callee agent: the port is no part of
    # the MIKEY identity (mobilityd.call.identity); the proxies route on it.
    target = f"{BOB}:{agent.config.port}"
    pool = agent.config.keying.dh_pool
    if pool.deficit:  # dh-precomputed: refilled between calls, off the measured path
        await asyncio.to_thread(pool.fill, os.urandom)
    dialled = time.perf_counter()
    call_id = await agent.place(target)
    placed = time.perf_counter()
    outcome = await _next(agent, (ce.CallConnected, ce.CallRefused))
    with contextlib.suppress(Exception):
        await agent.hangup(call_id)
    if isinstance(outcome, ce.CallRefused) or call_id not in probe.ringing:
        return call_id, None, str(outcome)
    return call_id, ((probe.ringing[call_id] - dialled) * 1000, (placed - dialled) * 1000), ""


async def run_caller(spec: WorkerSpec) -> dict[str, Any]:
    """``calls`` rounds; each round places one call per mode, the modes interleaved (in
    a rotating order) so that the machine's load falls on every mode alike."""
    probe = SetupProbe()
    agents = await _start_agents(spec, probe)
    delays: dict[str, list[tuple[str, float, float]]] = {mode: [] for mode in spec.modes}
    failures: dict[str, list[str]] = {mode: [] for mode in spec.modes}
    try:
        for round_no in range(spec.calls):
            shift = round_no % len(spec.modes)
            for mode in spec.modes[shift:] + spec.modes[:shift]:
                call_id, delay, why = await _one_call(agents[mode], probe)
                if delay is None:
                    failures[mode].append(f"{call_id}: {why}")
                else:
                    delays[mode].append((call_id, *delay))
                await asyncio.sleep(spec.gap_s)
        misses = {mode: agent.config.keying.dh_pool.misses for mode, agent in agents.items()}
    finally:
        for agent in agents.values():
            await agent.close()
    return {"calling_ms": delays, "failures": failures, "dh_pool_misses": misses}


async def _answer_calls(agent: CallAgent, probe: SetupProbe,
                        delays: dict[str, tuple[float, float]], failures: list[str]) -> None:
    while True:
        event = await agent.events.get()
        if isinstance(event, ce.CallRefused):
            failures.append(str(event))
        if not isinstance(event, ce.IncomingCallOffered):
            continue
        picked_up = time.perf_counter()
        await agent.answer(event.call_id)
        answered = time.perf_counter()  # media up, 200 OK sent
        try:
            acked = await probe.ack_time(event.call_id)
        except TimeoutError:
            failures.append(f"{event.call_id}: no ACK")
        else:
            delays[event.call_id] = ((acked - picked_up) * 1000, (answered - picked_up) * 1000)


async def run_callee(spec: WorkerSpec) -> dict[str, Any]:
    """Answer every call at once (after the 180); answering delay of each (ms).
    Prints ``ready`` when listening; stops at end of stdin."""
    probe = SetupProbe()
    agents = await _start_agents(spec, probe)
    delays: dict[str, dict[str, tuple[float, float]]] = {mode: {} for mode in spec.modes}
    failures: dict[str, list[str]] = {mode: [] for mode in spec.modes}
    loop = asyncio.get_running_loop()
    servers = [loop.create_task(_answer_calls(agent, probe, delays[mode], failures[mode]))
               for mode, agent in agents.items()]
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for server in servers:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    misses = {mode: agent.config.keying.dh_pool.misses for mode, agent in agents.items()}
    for agent in agents.values():
        await agent.close()
    return {"answering_ms": delays, "failures": failures, "dh_pool_misses": misses}


def worker_main(role: str, spec_path: str) -> int:
    spec = WorkerSpec(**json.loads(Path(spec_path).read_text()))
    runner = run_caller if role == "caller" else run_callee
    result = asyncio.run(runner(spec))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------- phase costs


def phase_costs(mode: str, creds_dir: Path, repeats: int) -> dict[str, float]:
    """Median CPU ms (thread time: immune to being descheduled on a busy machine) of
    each offer/answer step, in process, no network: where the added delay of a mode
    comes from. ``make_offer`` (caller) and ``screen_offer`` (callee: SDP and policy,
    before its 180) lie on the calling delay; ``complete_offer`` (the MIKEY Responder,
    run after the 180 is sent: :meth:`CallAgent._on_invite`) and ``srtp_sessions`` (the
    callee's two SRTP sessions keyed from the CryptoContext, ``prepare_srtp``) while
    the phone rings, on neither; ``build_answer`` on the answering delay;
    ``receive_answer`` (caller, after its ACK went out) on neither. ``receive_offer``
    is ``screen_offer`` + ``complete_offer``, the callee's whole step before the 180
    until the 180 was moved ahead of the Responder."""
    security = CallSecurity.OFF if mode == "none" else CallSecurity.REQUIRED
    alice_keys = keying_for(mode, ALICE, BOB, creds_dir)
    bob_keys = keying_for(mode, BOB, ALICE, creds_dir)
    answerer = Answerer(sip_identity(BOB), security, bob_keys)
    steps: dict[str, list[float]] = {"make_offer": [], "screen_offer": [],
                                     "complete_offer": [], "build_answer": [],
                                     "srtp_sessions": [], "receive_answer": []}
    for index in range(repeats):
        for pool in (alice_keys.dh_pool, bob_keys.dh_pool):
            pool.fill(os.urandom)
        offerer = Offerer(sip_identity(ALICE), sip_identity(BOB), security, alice_keys)
        now = time.time()
        stamps = [time.thread_time()]
        offer = offerer.make_offer([MediaPort("192.0.2.1", 40000, 40001)], now, os.urandom)
        stamps.append(time.thread_time())
        screened = answerer.screen_offer(offer)
        stamps.append(time.thread_time())
        plan = answerer.complete_offer(screened, sip_identity(ALICE), now, os.urandom)
        stamps.append(time.thread_time())
        answer = answerer.build_answer(plan, MediaPort("192.0.2.2", 50000, 50001), index)
        stamps.append(time.thread_time())
        media = plan.media
        if media.context is not None and media.remote_ssrc is not None:
            sessions_for_call(media.context, [media.local_ssrc], [media.remote_ssrc])
        stamps.append(time.thread_time())
        offerer.receive_answer(answer, now)
        stamps.append(time.thread_time())
        for name, start, end in zip(steps, stamps[:-1], stamps[1:], strict=True):
            steps[name].append((end - start) * 1000)
    costs = {name: round(statistics.median(values), 3) for name, values in steps.items()}
    costs["receive_offer"] = round(statistics.median(
        screen + complete for screen, complete in zip(
            steps["screen_offer"], steps["complete_offer"], strict=True)), 3)
    return costs


# ---------------------------------------------------------------- hosts


@dataclass
class Hosts:
    """Where the two sides run: ``prefix`` wraps the worker command (netns exec)."""

    kind: str
    caller_ip: str
    callee_ip: str
    caller_prefix: list[str]
    callee_prefix: list[str]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def bench_hosts(*, loopback: bool = False) -> Iterator[Hosts]:
    """Two namespaces joined by a veth pair (root), else two loopback addresses."""
    if loopback or os.geteuid() != 0:
        why = "asked for" if loopback else "no root"
        yield Hosts(f"loopback ({why}: 127.0.0.2 / 127.0.0.3)", "127.0.0.2", "127.0.0.3",
                    [], [])
        return
    tag = f"mdbs{os.getpid()}"
    names = (f"{tag}-alice", f"{tag}-bob")
    try:
        for ns in names:
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "a0", "netns", names[0], "type", "veth", "peer", "name", "b0",
            "netns", names[1])
        for ns, dev, addr in ((names[0], "a0", "10.99.0.1/24"), (names[1], "b0", "10.99.0.2/24")):
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        yield Hosts("network namespaces (veth, one hop)", "10.99.0.1", "10.99.0.2",
                    ["ip", "netns", "exec", names[0]], ["ip", "netns", "exec", names[1]])
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10,
                           check=False)


# ---------------------------------------------------------------- Kamailio proxies

KAMAILIO_CONFIG = """#!KAMAILIO
# Stateful proxy for the setup benchmark (each side's SIP server, thesis App. B Fig. 1).
debug=1
log_stderror=yes
children=1
disable_tcp=yes
dns=no
rev_dns=no
auto_aliases=no
listen=udp:{ip}:5060
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("rr", "enable_full_lr", 1)

request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (has_totag()) {{
		if (loose_route()) {{ t_relay(); exit; }}
		if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
	record_route();
	{next_hop}
	t_relay();
}}
"""


@contextlib.contextmanager
def kamailio_proxies(hosts: Hosts, work: Path) -> Iterator[tuple[str, int]]:
    """Alice's proxy on her host, Bob's on his (UDP 5060 each): Alice's proxy relays
    every new INVITE to Bob's, Bob's to Bob's agent on the Request-URI's port. Yields
    Alice's outbound proxy; both are killed (process group, by pid) at the end."""
    binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not Path(binary).exists():
        raise RuntimeError("--proxy needs kamailio (Debian package kamailio)")
    if not hosts.caller_prefix:
        raise RuntimeError("--proxy needs the namespace set-up (root)")
    sides = (
        ("alice", hosts.caller_prefix, hosts.caller_ip,
         f'$du = "sip:{hosts.callee_ip}:5060";'),
        ("bob", hosts.callee_prefix, hosts.callee_ip,
         f'$du = "sip:{hosts.callee_ip}:" + $rp;'),
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, prefix, ip, next_hop in sides:
            config = work / f"kamailio-{name}.cfg"
            config.write_text(KAMAILIO_CONFIG.format(ip=ip, next_hop=next_hop))
            check = subprocess.run([*prefix, binary, "-c", "-f", str(config)],
                                   capture_output=True, text=True, timeout=30, check=False)
            if check.returncode != 0:
                raise RuntimeError(f"kamailio -c rejected {config}: {check.stderr[-1500:]}")
            log = (work / f"kamailio-{name}.log").open("wb")
            processes.append(subprocess.Popen(
                [*prefix, binary, "-f", str(config), "-DD", "-E", "-m", "32", "-M", "8",
                 "-w", str(work), "-P", str(work / f"kamailio-{name}.pid")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            _wait_listening(prefix, 5060)
        yield hosts.caller_ip, 5060
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_listening(prefix: list[str], port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([*prefix, "ss", "-Hunl", f"sport = :{port}"],
                             capture_output=True, text=True, timeout=10, check=False)
        if out.stdout.strip():
            return
        time.sleep(0.1)
    raise RuntimeError(f"kamailio did not listen on UDP {port}")


# ---------------------------------------------------------------- orchestration


#: ``--realtime``: the workers run under SCHED_FIFO at this priority (chrt, root)
REALTIME_PRIORITY = 10


def _worker_cmd(prefix: list[str], role: str, spec_file: Path,
                realtime: bool = False) -> list[str]:
    scheduling = ["chrt", "-f", str(REALTIME_PRIORITY)] if realtime else []
    return [*prefix, *scheduling, sys.executable, "-m", "mobilityd.bench.setup", "--worker", role,
            str(spec_file)]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}:{path}" if path else root}


def run_modes(modes: tuple[str, ...], hosts: Hosts, calls: int, work: Path,
              *, base_port: int = 5070, proxy: tuple[str, int] | None = None,
              realtime: bool = False) -> dict[str, dict[str, Any]]:
    """Callee worker, then caller worker (all modes interleaved); raw delays per mode."""
    specs = {
        role: WorkerSpec(role, list(modes), host, peer, base_port, calls + WARMUP,
                         str(work), 0.03, proxy if role == "caller" else None)
        for role, host, peer in (("caller", hosts.caller_ip, hosts.callee_ip),
                                 ("callee", hosts.callee_ip, hosts.caller_ip))
    }
    files = {}
    for role, spec in specs.items():
        files[role] = work / f"{role}.json"
        files[role].write_text(json.dumps(asdict(spec)))
    callee = subprocess.Popen(_worker_cmd(hosts.callee_prefix, "callee", files["callee"],
                                          realtime),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert callee.stdout is not None and callee.stdin is not None
        if callee.stdout.readline().strip() != "ready":
            raise RuntimeError("callee worker did not start")
        caller = subprocess.run(_worker_cmd(hosts.caller_prefix, "caller", files["caller"],
                                            realtime),
                                capture_output=True, text=True, timeout=900, env=_env(),
                                check=False)
        if caller.returncode != 0:
            raise RuntimeError(f"caller worker failed: {caller.stderr[-1500:]}")
        out, _ = callee.communicate("stop\n", timeout=30)
    finally:
        if callee.poll() is None:
            callee.kill()
            callee.wait()
    sides = {"caller": json.loads(caller.stdout.strip().splitlines()[-1]),
             "callee": json.loads(out.strip().splitlines()[-1])}
    return {mode: {side: {key: value[mode] for key, value in result.items()}
                   for side, result in sides.items()}
            for mode in modes}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarise(mode: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Median and p95 of the counted calls (warm-up calls dropped at both ends).

    Raw entries: caller ``[call_id, calling_ms, place_ms]``, callee ``{call_id:
    [answering_ms, answer_ms]}``; ``*_local_ms_median`` is the part spent in our own
    ``place()`` / ``answer()`` (the rest is the peer's processing and the network)."""
    placed = raw["caller"]["calling_ms"]
    counted = {entry[0] for entry in placed[WARMUP:]}  # warm-up: the first rounds
    calling = [entry[1:] for entry in placed if entry[0] in counted]
    answering = [list(value) for call_id, value in raw["callee"]["answering_ms"].items()
                 if call_id in counted]
    row: dict[str, Any] = {"mode": mode, "calls": min(len(calling), len(answering))}
    for name, values in (("calling", calling), ("answering", answering)):
        totals = [value[0] for value in values]
        row[f"{name}_ms_median"] = round(statistics.median(totals), 3) if totals else None
        row[f"{name}_ms_p95"] = round(_p95(totals), 3) if totals else None
        local = [value[1] for value in values]
        row[f"{name}_local_ms_median"] = round(statistics.median(local), 3) if local else None
    row["failures"] = raw["caller"]["failures"] + raw["callee"]["failures"]
    row["dh_pool_misses"] = {"caller": raw["caller"]["dh_pool_misses"],
                             "callee": raw["callee"]["dh_pool_misses"]}
    return row


def headline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios secure/none and the added ms of this run; the targets checked."""
    by_mode = {row["mode"]: row for row in rows}
    base = by_mode.get("none")
    out: dict[str, Any] = {}
    if base is None or base["calling_ms_median"] is None:
        return out
    for mode, row in by_mode.items():
        if mode == "none" or row["calling_ms_median"] is None:
            continue
        for name in ("calling", "answering"):
            ours, none = row[f"{name}_ms_median"], base[f"{name}_ms_median"]
            out[f"{mode}_{name}_ratio"] = round(ours / none, 2) if none else None
            out[f"{mode}_{name}_added_ms"] = round(ours - none, 3)
    for mode, limit in (("psk", TARGETS["psk_added_ms_max"]),
                        ("dh-precomputed", TARGETS["dh_precomputed_added_ms_max"])):
        if f"{mode}_calling_added_ms" in out:
            out[f"{mode}_target_met"] = (out[f"{mode}_calling_added_ms"] < limit
                                         and out[f"{mode}_answering_added_ms"] < limit)
    return out


CALLING_PATH = ("make_offer", "screen_offer")
#: what lay on the calling path before the 180 went out ahead of the MIKEY Responder
CALLING_PATH_BEFORE_EARLY_180 = ("make_offer", "receive_offer")
ANSWERING_PATH = ("build_answer",)  # SRTP sessions are made while it rings


def cpu_added(phases: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The CPU each secure mode adds over ``none`` on each delay's path (the steps of
    :func:`phase_costs` that lie on it), with the issue's targets checked on it: the
    load-independent counterpart of the headline's wall-clock figures.
    ``*_calling_with_responder_cpu_added_ms`` also counts the callee's MIKEY Responder,
    as the calling path did when the 180 waited for it."""
    base = phases.get("none")
    out: dict[str, Any] = {}
    if base is None:
        return out
    for mode, steps in phases.items():
        if mode == "none":
            continue
        for name, path in (("calling", CALLING_PATH), ("answering", ANSWERING_PATH),
                           ("calling_with_responder", CALLING_PATH_BEFORE_EARLY_180)):
            if all(step in steps and step in base for step in path):
                out[f"{mode}_{name}_cpu_added_ms"] = round(
                    sum(steps[step] - base[step] for step in path), 3)
    for mode, limit in (("psk", TARGETS["psk_added_ms_max"]),
                        ("dh-precomputed", TARGETS["dh_precomputed_added_ms_max"])):
        if f"{mode}_calling_cpu_added_ms" in out:
            out[f"{mode}_cpu_target_met"] = (out[f"{mode}_calling_cpu_added_ms"] < limit
                                             and out[f"{mode}_answering_cpu_added_ms"] < limit)
    return out


def render_table(result: dict[str, Any]) -> str:
    """The thesis's shape: one row per test case, calling and answering totals."""
    lines = [f"Call-setup delays ({result['hosts']}; SIP {result.get('sip_path', 'direct')}),"
             " medians [p95] in ms",
             f"{'':18}{'calling':>20}{'answering':>20}{'thesis calling':>16}"
             f"{'thesis answ.':>14}{'calls':>7}"]
    for row in result["rows"]:
        thesis: dict[str, int | str] = THESIS.get(row["mode"].replace("-precomputed", ""), {})
        cells = [f"{row[f'{n}_ms_median']:.2f} [{row[f'{n}_ms_p95']:.2f}]"
                 if row[f"{n}_ms_median"] is not None else "-" for n in ("calling", "answering")]
        lines.append(f"{row['mode']:18}{cells[0]:>20}{cells[1]:>20}"
                     f"{thesis.get('calling_ms', '-')!s:>16}"
                     f"{thesis.get('answering_ms', '-')!s:>14}{row['calls']:>7}")
    lines.append("headline: " + json.dumps(result["headline"]))
    lines.append("offer/answer steps, CPU ms (median): "
                 + json.dumps(result["phases_cpu_ms_median"]))
    lines.append("CPU added on each path: " + json.dumps(result.get("cpu_added_ms", {})))
    return "\n".join(lines)


def run(calls: int, modes: tuple[str, ...] = MODES, *, loopback: bool = False,
        proxy: bool = False, realtime: bool = False) -> dict[str, Any]:
    with (tempfile.TemporaryDirectory(prefix="mdbench-setup-") as tmp,
          bench_hosts(loopback=loopback) as hosts, contextlib.ExitStack() as stack):
        work = Path(tmp)
        write_credentials(work)
        outbound = stack.enter_context(kamailio_proxies(hosts, work)) if proxy else None
        raw = run_modes(modes, hosts, calls, work, proxy=outbound, realtime=realtime)
        rows = [summarise(mode, raw[mode]) for mode in modes]
        phases = {mode: phase_costs(mode, work, max(10, calls // 2)) for mode in modes}
    return {"rows": rows, "hosts": hosts.kind, "warmup_calls": WARMUP,
            "sip_path": "via Kamailio: Alice -> her proxy -> Bob's proxy -> Bob" if proxy
            else "direct",
            "phases_cpu_ms_median": phases, "cpu_added_ms": cpu_added(phases),
            "load_average": os.getloadavg()[0],
            "thesis": THESIS, "targets": TARGETS, "headline": headline(rows),
            "transport": "udp",
            "scheduling": f"SCHED_FIFO {REALTIME_PRIORITY} (--realtime)" if realtime
            else "normal"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilityd.bench setup")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="few calls, < 60 s")
    parser.add_argument("--calls", type=int, default=None, help="counted calls per mode")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--proxy", action="store_true",
                        help="each side's Kamailio proxy on the path, as in the thesis")
    parser.add_argument("--realtime", action="store_true",
                        help="workers under SCHED_FIFO (root): other processes of a shared "
                             "machine cannot delay them - a quiet machine's figures")
    parser.add_argument("--loopback", action="store_true",
                        help="two loopback addresses instead of namespaces (what non-root gets)")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}: choose from {MODES}")
    calls = args.calls or (15 if args.quick else 100)
    if args.realtime and (os.geteuid() != 0 or shutil.which("chrt") is None):
        parser.error("--realtime needs root and chrt (util-linux)")
    result = run(calls, modes, loopback=args.loopback, proxy=args.proxy,
                 realtime=args.realtime)
    print(json.dumps(result, indent=2) if args.json else render_table(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        raise SystemExit(worker_main(sys.argv[2], sys.argv[3]))
    raise SystemExit(main(sys.argv[1:]))
