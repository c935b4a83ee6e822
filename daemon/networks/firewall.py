"""The firewall of bridge networks, with iptables: NAT out, published ports in, isolation between networks.

Declarative: `apply` gets the complete desired state and makes our own chains exactly that, in one
iptables-restore --noflush transaction per table (declaring a user chain in a --noflush restore empties
it; verified on iptables 1.8 nft and legacy), so the built-in chains and other tools' chains are never
touched and a daemon killed at any point is repaired by the next `apply`. The jumps from the built-in
chains to ours are added once, when `-C` finds them missing.

Chains (prefix P, "PYD-" by default):
  nat    P+DNAT        from PREROUTING and OUTPUT (-m addrtype --dst-type LOCAL): published ports
  nat    P+POSTROUTING from POSTROUTING: masquerade out, loopback-published and hairpin sources
  filter P+FORWARD     from FORWARD (first rule): what may enter and leave each bridge
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

_TABLES = ("nat", "filter")


NO_IPTABLES = "WARNING: No iptables binary found: published ports and network isolation are off"


@dataclass(frozen=True)
class NetworkRules:
    bridge: str
    subnet: str  # IPv4 CIDR of the network ("10.231.0.0/24")
    internal: bool  # no traffic in or out of the bridge except among its containers
    icc: bool  # com.docker.network.bridge.enable_icc: containers of the bridge reach each other
    masquerade: bool = True  # com.docker.network.bridge.enable_ip_masquerade
    subnet6: str = ""  # IPv6 CIDR when the network has IPv6 (ip6tables, same rules) else ""


@dataclass(frozen=True)
class PortRule:
    proto: str  # "tcp" | "udp" | "sctp"
    host_ip: str  # "0.0.0.0" / "::" (all) or a host address, 127.0.0.1 included
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


class Firewall(Protocol):
    def available(self) -> bool:
        """Whether the host has the tools (a daemon without them runs with its firewall off)."""
        ...

    def warnings(self) -> list[str]:
        """What `docker info` should warn about."""

    def apply(self, networks: list[NetworkRules], ports: list[PortRule]) -> None:
        """Make our chains exactly this state (and the jumps to them, once)."""

    def remove_all(self) -> None:
        """Remove our chains and jumps (for tests and uninstall)."""


def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


def _port_family(port: PortRule) -> int:
    """4 or 6: the family of the container address; a host address of the other family is an error."""
    family = _version(port.container_ip)
    host = ipaddress.ip_address(port.host_ip)
    if host.version != family and not host.is_unspecified:
        raise ValueError(f"host address {port.host_ip} and container address {port.container_ip} differ")
    return family


def _to_destination(port: PortRule) -> str:
    if _version(port.container_ip) == 6:
        return f"[{port.container_ip}]:{port.container_port}"
    return f"{port.container_ip}:{port.container_port}"


def _host(address: str) -> str:
    return f"{address}/{128 if _version(address) == 6 else 32}"


def _proto(proto: str) -> str:
    return f"-p {proto} -m {proto}"


def _rules(p: str, family: int, networks: list[NetworkRules], ports: list[PortRule]) -> dict[str, list[str]]:
    """The rules of our chains for one family, by table, as iptables-save prints them back."""
    nets = [(n, n.subnet if family == 4 else n.subnet6) for n in networks]
    nets = [(n, subnet) for n, subnet in nets if subnet]
    mine = [pt for pt in ports if _port_family(pt) == family]
    dnat, post, fwd = f"{p}DNAT", f"{p}POSTROUTING", f"{p}FORWARD"
    nat: list[str] = []
    for pt in mine:
        # no `! -i bridge`: without a userland proxy, a container reaches its own published port through
        # the host only by this DNAT (and the hairpin MASQUERADE below)
        dst = "" if ipaddress.ip_address(pt.host_ip).is_unspecified else f" -d {_host(pt.host_ip)}"
        to = _to_destination(pt)
        nat.append(f"-A {dnat}{dst} {_proto(pt.proto)} --dport {pt.host_port} -j DNAT --to-destination {to}")
    for n, subnet in nets:
        if n.masquerade and not n.internal:
            nat.append(f"-A {post} -s {subnet} ! -o {n.bridge} -j MASQUERADE")
        # ports published on 127.0.0.1: a loopback source would be a martian on the bridge
        nat.append(f"-A {post} -o {n.bridge} -m addrtype --src-type LOCAL -j MASQUERADE")
    for pt in mine:  # hairpin: the container reached its own port through the host
        cip, port = _host(pt.container_ip), f"{_proto(pt.proto)} --dport {pt.container_port}"
        nat.append(f"-A {post} -s {cip} -d {cip} {port} -j MASQUERADE")

    # In passes over all networks, so that no network's "out" ACCEPT comes before another's DROP: every
    # internal network's walls, replies and published ports, traffic within a bridge, then what enters a
    # bridge from elsewhere (dropped: isolation both ways), and only then what leaves a bridge.
    filt: list[str] = []
    for n, _ in nets:
        if n.internal:
            filt += [
                f"-A {fwd} -i {n.bridge} ! -o {n.bridge} -j DROP",
                f"-A {fwd} ! -i {n.bridge} -o {n.bridge} -j DROP",
            ]
    for n, _ in nets:
        br = n.bridge
        filt.append(f"-A {fwd} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        for pt in mine:
            if pt.bridge == br:
                # only connections DNATed to the port: other bridges cannot dial the container directly
                cip, port = _host(pt.container_ip), f"{_proto(pt.proto)} --dport {pt.container_port}"
                filt.append(f"-A {fwd} -d {cip} -o {br} {port} -m conntrack --ctstate DNAT -j ACCEPT")
        filt.append(f"-A {fwd} -i {br} -o {br} -j {'ACCEPT' if n.icc else 'DROP'}")
    filt += [f"-A {fwd} -o {n.bridge} -j DROP" for n, _ in nets]
    filt += [f"-A {fwd} -i {n.bridge} ! -o {n.bridge} -j ACCEPT" for n, _ in nets if not n.internal]
    return {"nat": nat, "filter": filt}


class IptablesFirewall:
    """`Firewall` with iptables/ip6tables. `command_prefix` runs them elsewhere, e.g. in a test's network
    namespace: ("nsenter", "-t", "1234", "-n")."""

    def __init__(self, chain_prefix: str = "PYD-", command_prefix: Sequence[str] = ()) -> None:
        self.prefix = chain_prefix
        self.command_prefix = tuple(command_prefix)
        self._chains = {
            "nat": (f"{chain_prefix}DNAT", f"{chain_prefix}POSTROUTING"),
            "filter": (f"{chain_prefix}FORWARD",),
        }
        self._jumps_ok: set[int] = set()  # families whose jumps were found or added
        self._v6_chains: bool | None = None  # whether our IPv6 chains may hold rules (None: not looked yet)

    def _jumps(self) -> list[tuple[str, str, list[str]]]:
        """(table, built-in chain, rule spec) of every jump to our chains; FORWARD's goes first."""
        p = self.prefix
        local = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", f"{p}DNAT"]
        return [
            ("nat", "PREROUTING", local),
            ("nat", "OUTPUT", local),
            ("nat", "POSTROUTING", ["-j", f"{p}POSTROUTING"]),
            ("filter", "FORWARD", ["-j", f"{p}FORWARD"]),
        ]

    def _run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> bool:
        try:
            done = subprocess.run(
                [*self.command_prefix, *argv], input=stdin, capture_output=True, text=True, check=False
            )
        except FileNotFoundError as e:
            raise OSError(e.errno, f"{argv[0]}: not found") from None
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            why = " ".join(message[:2]) or f"exit status {done.returncode}"
            raise OSError(f"{' '.join(argv[:2])}: {why}")
        return done.returncode == 0

    def available(self) -> bool:
        return shutil.which("iptables-restore") is not None

    def warnings(self) -> list[str]:
        found: list[str] = []
        if shutil.which("iptables") is None:
            found.append(NO_IPTABLES)
        for name in ("iptables", "ip6tables"):
            try:
                with open(f"/proc/sys/net/bridge/bridge-nf-call-{name}", encoding="ascii") as f:
                    enabled = f.read().strip() == "1"
            except OSError:
                enabled = False  # br_netfilter not loaded
            if not enabled:
                found.append(f"WARNING: bridge-nf-call-{name} is disabled")
        return found

    def apply(self, networks: list[NetworkRules], ports: list[PortRule]) -> None:
        self._restore(4, _rules(self.prefix, 4, networks, ports))
        v6 = any(n.subnet6 for n in networks) or any(_version(pt.container_ip) == 6 for pt in ports)
        if self._v6_chains is None:
            self._v6_chains = self._v6_chains_exist()  # left by an earlier run: empty them
        if v6 or self._v6_chains:
            self._restore(6, _rules(self.prefix, 6, networks, ports))
        self._v6_chains = v6

    def _restore(self, family: int, rules: dict[str, list[str]]) -> None:
        iptables = "iptables" if family == 4 else "ip6tables"
        missing = [] if family in self._jumps_ok else [j for j in self._jumps() if not self._has(iptables, j)]
        lines: list[str] = []
        for table in _TABLES:
            lines.append(f"*{table}")
            for chain in self._chains[table]:
                lines += [f":{chain} - [0:0]", f"-F {chain}"]
            lines += rules[table]
            for t, builtin, spec in missing:
                if t == table:
                    where = "-I FORWARD 1" if builtin == "FORWARD" else f"-A {builtin}"
                    lines.append(f"{where} {' '.join(spec)}")
            lines.append("COMMIT")
        self._run([f"{iptables}-restore", "-w", "--noflush"], stdin="\n".join(lines) + "\n")
        self._jumps_ok.add(family)

    def _has(self, iptables: str, jump: tuple[str, str, list[str]]) -> bool:
        table, builtin, spec = jump
        return self._run([iptables, "-w", "-t", table, "-C", builtin, *spec], check=False)

    def _v6_chains_exist(self) -> bool:
        if shutil.which("ip6tables") is None:
            return False
        chain = f"{self.prefix}FORWARD"
        return self._run(["ip6tables", "-w", "-t", "filter", "-n", "-L", chain], check=False)

    def remove_all(self) -> None:
        for iptables in ("iptables", "ip6tables"):
            if shutil.which(iptables) is None:
                continue
            for jump in self._jumps():
                table, builtin, spec = jump
                while self._run([iptables, "-w", "-t", table, "-D", builtin, *spec], check=False):
                    pass
            for table in _TABLES:
                for chain in self._chains[table]:
                    if self._run([iptables, "-w", "-t", table, "-F", chain], check=False):
                        self._run([iptables, "-w", "-t", table, "-X", chain])
        self._jumps_ok.clear()
        self._v6_chains = False

    def ensure_forwarding(self, ipv6: bool = False) -> bool:
        """IPv4 (and with `ipv6`, IPv6) forwarding on, in the calling thread's network namespace. Where it
        was off, the FORWARD policy becomes DROP first, as Docker does, so turning routing on opens nothing
        but what our chain accepts. Whether anything changed."""
        changed = False
        paths = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
        for family in (4, 6) if ipv6 else (4,):
            path = paths[family]
            with open(path, encoding="ascii") as f:
                if f.read().strip() == "1":
                    continue
            self._run(["iptables" if family == 4 else "ip6tables", "-w", "-P", "FORWARD", "DROP"])
            with open(path, "w", encoding="ascii") as f:
                f.write("1")
            changed = True
        return changed


if TYPE_CHECKING:  # mypy checks the class against its Protocol
    _: Firewall = IptablesFirewall()
