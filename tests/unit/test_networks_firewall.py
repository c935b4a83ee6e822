"""IptablesFirewall: the rules it writes, and (root) what they do in private network namespaces.

The root tests run iptables in the namespace of an `unshare -n sleep` process (command prefix nsenter),
so the host's tables are never touched; chains are named PKT-.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from daemon.networks.firewall import IptablesFirewall, NetworkRules, PortRule, _rules
from daemon.networks.netlink import in_netns

root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

NETS = [
    NetworkRules("pkbr1", "10.241.1.0/24", internal=False, icc=True),
    NetworkRules("pkbr2", "10.241.2.0/24", internal=True, icc=False, subnet6="fd00:241:2::/64"),
]
PORTS = [
    PortRule("tcp", "0.0.0.0", 8080, "10.241.1.2", 80, "pkbr1"),
    PortRule("udp", "127.0.0.1", 5353, "10.241.1.3", 53, "pkbr1"),
]


def test_rules_follow_the_network_options() -> None:
    r = _rules("PKT-", 4, NETS, PORTS)
    assert r["nat"] == [
        "-A PKT-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.241.1.2:80",
        "-A PKT-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.241.1.3:53",
        "-A PKT-POSTROUTING -s 10.241.1.0/24 ! -o pkbr1 -j MASQUERADE",
        "-A PKT-POSTROUTING -o pkbr1 -m addrtype --src-type LOCAL -j MASQUERADE",
        "-A PKT-POSTROUTING -o pkbr2 -m addrtype --src-type LOCAL -j MASQUERADE",
        "-A PKT-POSTROUTING -s 10.241.1.2/32 -d 10.241.1.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
        "-A PKT-POSTROUTING -s 10.241.1.3/32 -d 10.241.1.3/32 -p udp -m udp --dport 53 -j MASQUERADE",
    ]
    # every network's DROP of what enters it comes before any network's ACCEPT of what leaves it:
    # pkbr1 (created first) must not reach pkbr2 any more than pkbr2 reaches pkbr1
    assert r["filter"] == [
        "-A PKT-FORWARD -i pkbr2 ! -o pkbr2 -j DROP",
        "-A PKT-FORWARD ! -i pkbr2 -o pkbr2 -j DROP",
        "-A PKT-FORWARD -o pkbr1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A PKT-FORWARD -d 10.241.1.2/32 -o pkbr1 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT"
        " -j ACCEPT",
        "-A PKT-FORWARD -d 10.241.1.3/32 -o pkbr1 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT"
        " -j ACCEPT",
        "-A PKT-FORWARD -i pkbr1 -o pkbr1 -j ACCEPT",
        "-A PKT-FORWARD -o pkbr2 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A PKT-FORWARD -i pkbr2 -o pkbr2 -j DROP",
        "-A PKT-FORWARD -o pkbr1 -j DROP",
        "-A PKT-FORWARD -o pkbr2 -j DROP",
        "-A PKT-FORWARD -i pkbr1 ! -o pkbr1 -j ACCEPT",
    ]


def test_ipv6_rules_cover_only_ipv6_networks_and_ports() -> None:
    port6 = PortRule("tcp", "::", 8443, "fd00:241:2::2", 443, "pkbr2")
    r = _rules("PKT-", 6, NETS, [*PORTS, port6])
    dnat = "-A PKT-DNAT -p tcp -m tcp --dport 8443 -j DNAT --to-destination [fd00:241:2::2]:443"
    assert r["nat"][0] == dnat
    assert not any("pkbr1" in rule or "10.241" in rule for rule in r["nat"] + r["filter"])
    with pytest.raises(ValueError, match="differ"):
        _rules("PKT-", 4, NETS, [PortRule("tcp", "::1", 1, "10.241.1.2", 1, "pkbr1")])


def test_no_masquerade_option_drops_only_the_outbound_masquerade() -> None:
    net = NetworkRules("pkbr1", "10.241.1.0/24", internal=False, icc=True, masquerade=False)
    assert not any("! -o pkbr1 -j MASQUERADE" in rule for rule in _rules("PKT-", 4, [net], [])["nat"])


class Netns:
    """The network namespace of an `unshare -n sleep` process, and commands run in it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self.proc.pid}/ns/net") != own:
                    break
            time.sleep(0.005)
        self.prefix = ("nsenter", "-t", str(self.proc.pid), "-n")

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, check=check)
        return done.stdout

    def save(self, iptables: str = "iptables") -> str:
        """iptables-save without its timestamped comments."""
        lines = self.run(f"{iptables}-save").splitlines(True)
        return "".join(line for line in lines if not line.startswith("#"))

    def ours(self, iptables: str = "iptables") -> list[str]:
        """The rules in our chains, in order."""
        return [line for line in self.save(iptables).splitlines() if line.startswith("-A PKT-")]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def netns() -> Iterator[Netns]:
    ns = Netns()
    try:
        yield ns
    finally:
        ns.close()


@root
def test_apply_makes_the_chains_exactly_the_state(netns: Netns) -> None:
    fw = IptablesFirewall("PKT-", netns.prefix)
    fw.apply(NETS, PORTS)
    saved = netns.save()
    wanted = _rules("PKT-", 4, NETS, PORTS)
    assert netns.ours() == wanted["filter"] + wanted["nat"]  # iptables-save lists filter first
    wanted6 = _rules("PKT-", 6, NETS, PORTS)
    assert netns.ours("ip6tables") == wanted6["filter"] + wanted6["nat"]
    assert saved.count("-A PREROUTING -m addrtype --dst-type LOCAL -j PKT-DNAT") == 1
    assert saved.count("-A OUTPUT -m addrtype --dst-type LOCAL -j PKT-DNAT") == 1
    assert saved.count("-A POSTROUTING -j PKT-POSTROUTING") == 1
    assert netns.run("iptables", "-S", "FORWARD").splitlines()[1] == "-A FORWARD -j PKT-FORWARD"

    fw.apply(NETS, PORTS)
    assert netns.save() == saved  # idempotent: nothing doubled
    again = IptablesFirewall("PKT-", netns.prefix)  # a restarted daemon finds its jumps in place
    again.apply(NETS, PORTS)
    assert netns.save() == saved

    again.apply([NETS[0]], [])  # a network and the ports went: their rules go
    assert "pkbr2" not in netns.save() and "8080" not in netns.save()
    assert "pkbr2" not in netns.save("ip6tables")  # the IPv6 chains are emptied too

    fw.apply([], [])
    assert netns.ours() == netns.ours("ip6tables") == []


@root
def test_a_rejected_state_changes_nothing_and_says_why(netns: Netns) -> None:
    fw = IptablesFirewall("PKT-", netns.prefix)
    fw.apply(NETS, PORTS)
    saved = netns.save()
    with pytest.raises(OSError, match="bogus"):
        fw.apply(NETS, [PortRule("bogus", "0.0.0.0", 1, "10.241.1.9", 1, "pkbr1")])
    assert netns.save() == saved


@root
def test_remove_all_leaves_no_trace(netns: Netns) -> None:
    fw = IptablesFirewall("PKT-", netns.prefix)
    fw.apply(NETS, PORTS)
    fw.remove_all()
    assert "PKT-" not in netns.save() + netns.save("ip6tables")


@root
def test_ensure_forwarding_turns_routing_on_behind_a_drop_policy(netns: Netns) -> None:
    fw = IptablesFirewall("PKT-", netns.prefix)

    def in_ns() -> bool:
        with in_netns(netns.proc.pid):
            return fw.ensure_forwarding()

    # a new namespace starts with the host's ip_forward (devconf_inherit_init_net), which a daemon
    # may have turned on: start from off
    netns.run("sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(in_ns).result() is True
        assert netns.run("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
        assert "-P FORWARD DROP" in netns.run("iptables", "-S", "FORWARD")
        assert pool.submit(in_ns).result() is False


_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen()
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(("hello " + peer[0]).encode())
    c.close()
"""
_CLIENT = "import socket, sys; print(socket.create_connection((sys.argv[1], 8080), 5).recv(99).decode())"


@root
def test_a_published_port_reaches_the_container_from_loopback_and_from_itself(netns: Netns) -> None:
    """A host (netns) with a bridge and a container (another netns) on it, the port published on all
    addresses: 127.0.0.1:8080 on the host and the gateway's :8080 from the container (hairpin) both
    reach the container's server, with the source masqueraded to the gateway."""
    container = Netns()
    server: subprocess.Popen[str] | None = None
    try:
        h = netns.run
        h("ip", "link", "set", "lo", "up")
        h("ip", "link", "add", "pkbrf", "type", "bridge")
        h("ip", "addr", "add", "10.241.200.1/24", "dev", "pkbrf")
        h("ip", "link", "set", "pkbrf", "up")
        peer = ("peer", "name", "eth0", "netns", f"{container.proc.pid}")
        h("ip", "link", "add", "pkvf", "type", "veth", *peer)
        h("ip", "link", "set", "pkvf", "master", "pkbrf", "up")
        # as KernelNetLink sets it: br_netfilter DNATs the hairpin back out of the port it came in on
        h("ip", "link", "set", "pkvf", "type", "bridge_slave", "hairpin", "on")
        h("sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/pkbrf/route_localnet")
        c = container.run
        c("ip", "link", "set", "lo", "up")
        c("ip", "addr", "add", "10.241.200.2/24", "dev", "eth0")
        c("ip", "link", "set", "eth0", "up")
        c("ip", "route", "add", "default", "via", "10.241.200.1")
        fw = IptablesFirewall("PKT-", netns.prefix)
        with in_netns(netns.proc.pid):
            fw.ensure_forwarding()
        fw.apply(
            [NetworkRules("pkbrf", "10.241.200.0/24", internal=False, icc=True)],
            [PortRule("tcp", "0.0.0.0", 8080, "10.241.200.2", 80, "pkbrf")],
        )
        server = subprocess.Popen(
            [*container.prefix, sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        assert netns.run(sys.executable, "-c", _CLIENT, "127.0.0.1").strip() == "hello 10.241.200.1"
        assert container.run(sys.executable, "-c", _CLIENT, "10.241.200.1").strip() == "hello 10.241.200.1"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        container.close()
