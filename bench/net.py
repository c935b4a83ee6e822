"""The networking part of the bench: what dockerd changes on the host, and TCP through a published port.

dockerd runs on its default bridge with iptables on, so it creates `docker0` (and `br-*` bridges for
networks of its own), DOCKER* chains and the jumps to them, sets the FORWARD policy to DROP and turns
IPv4 forwarding on; none of it is undone when it stops. `save_host_state` writes what was there before
dockerd starts into the work directory, and `restore_host_state` (from `bench.py cleanup`, even after a
kill) puts it back. pydockerd's own bridge (`pyd0`) and chains (`PYD-*`) are never touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import re
import shlex
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STATE_FILE = "hostnet.json"
FORWARD = "/proc/sys/net/ipv4/ip_forward"
# br_netfilter's switches: libnetwork sets them to 1 when it creates a bridge.
BRIDGE_NF = ("/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables")
DOCKER_CHAIN = re.compile(r"^DOCKER(-|$)")
PORT_IN_CONTAINER = 80
CONNECT_TIMEOUT = 30.0  # the server in the container may not listen yet when the port is published
IO_TIMEOUT = 10.0
CHUNK = 1 << 20

Docker = Callable[..., str]  # bench.Docker: runs the CLI against one daemon, raises on failure


# ---------------------------------------------------------------- host state


def _out(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else ""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def links() -> list[str]:
    """Names of the host's network links (`ip -br link`, without the `@peer` of a veth)."""
    return links_on("")


def forward_policy(save: str) -> str | None:
    """The FORWARD policy of the filter table in `iptables-save` output, None without a filter table."""
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(":FORWARD "):
            return line.split()[1]
    return None


def snapshot() -> dict[str, Any]:
    save = _out("iptables-save")
    return {
        "links": links(),
        "iptables_save": save,
        "ip6tables_save": _out("ip6tables-save"),
        "forward_policy": forward_policy(save),
        "forward_policy6": forward_policy(_out("ip6tables-save")),
        "ip_forward": _read(FORWARD),
        "bridge_nf": {path: _read(path) for path in BRIDGE_NF},
    }


def save_host_state(workdir: Path) -> None:
    """Record the host's network state before dockerd first starts (kept if already recorded)."""
    path = workdir / STATE_FILE
    if not path.exists():
        path.write_text(json.dumps(snapshot(), indent=1) + "\n")


def _dockerd_bridges(before: list[str]) -> list[str]:
    return [n for n in links() if n not in before and (n == "docker0" or n.startswith("br-"))]


def _networks(bridges: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for bridge in bridges:
        for line in _out("ip", "-o", "addr", "show", "dev", bridge).splitlines():
            parts = line.split()
            if "inet" in parts or "inet6" in parts:
                addr = parts[parts.index("inet6" if "inet6" in parts else "inet") + 1]
                net = ipaddress.ip_network(addr, strict=False)
                if not net.is_link_local:
                    nets.append(net)
    return nets


def _rules(save: str) -> Iterator[tuple[str, str, list[str]]]:
    """(table, chain, the rule's words after `-A`) for every rule in `iptables-save` output."""
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            words = shlex.split(line)
            yield table, words[1], words[2:]


def _chains(save: str) -> Iterator[tuple[str, str]]:
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            yield table, line[1:].split()[0]


def _is_dockerds(words: list[str], bridges: list[str], nets: list[Any]) -> bool:
    """A rule of dockerd's: it jumps to a DOCKER* chain, names one of its bridges, or matches addresses
    of its bridges' subnets (the MASQUERADE rules in nat POSTROUTING do the last two)."""
    for flag, value in itertools.pairwise(words):
        if flag in ("-j", "-g") and DOCKER_CHAIN.match(value):
            return True
        if flag in ("-i", "-o") and value in bridges:
            return True
        if flag in ("-s", "-d"):
            with contextlib.suppress(ValueError):
                addr = ipaddress.ip_network(value, strict=False)
                if any(addr.version == n.version and addr.subnet_of(n) for n in nets):
                    return True
    return False


def _remove_rules(cmd: str, save: str, bridges: list[str], nets: list[Any]) -> list[str]:
    done: list[str] = []
    for table, chain, words in _rules(save):
        if DOCKER_CHAIN.match(chain) or not _is_dockerds(words, bridges, nets):
            continue  # the DOCKER* chains are flushed as a whole below
        if subprocess.run([cmd, "-w", "-t", table, "-D", chain, *words], check=False).returncode == 0:
            done.append(f"{cmd} -t {table} -D {chain} {shlex.join(words)}")
    chains = [(t, c) for t, c in _chains(save) if DOCKER_CHAIN.match(c)]
    for flag in ("-F", "-X"):  # all flushed first: DOCKER-ISOLATION-STAGE-1 jumps to -STAGE-2
        for table, chain in chains:
            subprocess.run([cmd, "-w", "-t", table, flag, chain], check=False)
    done.extend(f"{cmd} -t {t} -X {c}" for t, c in chains)
    return done


def _write(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(path, "w", encoding="ascii") as f:
        f.write(value + "\n")


def restore_host_state(workdir: Path) -> list[str]:
    """Undo what dockerd did to the host's network since `save_host_state`; returns what it did.

    Call it once dockerd is stopped (a running dockerd would put its chains back)."""
    path = workdir / STATE_FILE
    if not path.exists():
        return []  # dockerd never started
    before = json.loads(path.read_text())
    bridges = _dockerd_bridges(before["links"])
    nets = _networks(bridges)
    done: list[str] = []
    for cmd, policy in (("iptables", "forward_policy"), ("ip6tables", "forward_policy6")):
        done += _remove_rules(cmd, _out(f"{cmd}-save"), bridges, nets)
        now = forward_policy(_out(f"{cmd}-save"))
        if now is not None and now != (before[policy] or "ACCEPT"):
            subprocess.run([cmd, "-w", "-P", "FORWARD", before[policy] or "ACCEPT"], check=False)
            done.append(f"{cmd} -P FORWARD {before[policy] or 'ACCEPT'}")
    for bridge in bridges:
        # veths left on the bridge by a killed dockerd: their peers' namespaces are gone with the containers,
        # which removes most; any still there go with it.
        for veth in links_on(bridge):
            if veth not in before["links"]:
                subprocess.run(["ip", "link", "delete", veth], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        done.append(f"ip link delete {bridge}")
    for file, value in [(FORWARD, before["ip_forward"]), *before["bridge_nf"].items()]:
        if value is not None and _read(file) not in (None, value):
            _write(file, value)
            done.append(f"{file} = {value}")
    return done


def links_on(bridge: str) -> list[str]:
    """The links enslaved to `bridge`; all the host's links for ''."""
    listing = _out("ip", "-br", "link", "show", *(["master", bridge] if bridge else []))
    return [line.split()[0].split("@")[0] for line in listing.splitlines() if line.strip()]


# ---------------------------------------------------------------- throughput through a published port


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def download(port: int, nbytes: int, wait: float) -> float:
    """Read `nbytes` from 127.0.0.1:`port`; seconds from the first byte to the last.

    A connection that ends before its first byte is retried until `deadline`: dockerd's proxy accepts
    as soon as the port is published, before the server in the container listens."""
    buf = bytearray(CHUNK)
    deadline = time.monotonic() + wait
    while True:
        got, first = 0, 0.0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
                while got < nbytes:
                    n = s.recv_into(buf, min(CHUNK, nbytes - got))
                    if n == 0:
                        break
                    if got == 0:
                        first = time.perf_counter()
                    got += n
        except ConnectionError:
            got = 0
        if got >= nbytes:
            return time.perf_counter() - first
        if got > 0:
            raise OSError(f"connection closed after {got} of {nbytes} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} sent nothing within {wait:.0f}s")
        time.sleep(0.1)


def throughput(docker: Docker, image: str, run_args: list[str], nbytes: int, reps: int) -> dict[str, Any]:
    """MB/s (10**6 bytes) of `reps` downloads of `nbytes` each from a container through a published port.

    The container streams /dev/zero to every connection (busybox `nc -ll -e cat /dev/zero`): nothing is
    written to disk, and the host only reads; the first read of each connection starts the clock."""
    port = free_port()
    cid = docker(
        "run", "-d", *run_args, "-p", f"127.0.0.1:{port}:{PORT_IN_CONTAINER}", image,
        "nc", "-ll", "-p", str(PORT_IN_CONTAINER), "-e", "cat", "/dev/zero",
    )  # fmt: skip
    try:
        download(port, CHUNK, CONNECT_TIMEOUT)  # warm-up: also waits for the server to listen
        rates = [nbytes / download(port, nbytes, IO_TIMEOUT) / 1e6 for _ in range(reps)]
    finally:
        with contextlib.suppress(Exception):
            docker("rm", "-f", cid)
    return {
        "port": port,
        "bytes": nbytes,
        "mb_per_s": rates,
        "median": statistics.median(rates),
        "mean": statistics.fmean(rates),
        "min": min(rates),
        "max": max(rates),
    }
