"""KernelNetLink against the real kernel: bridges, veth pairs into namespaces, sockets inside them.

Needs root. Everything made here is named pk... (links) and numbered in 10.241.0.0/16, and removed in
fixtures even on failure. Namespaces are those of `unshare -n sleep` processes the tests start.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from daemon.networks.netlink import Endpoint, KernelNetLink, in_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

_octets = itertools.count()


def _subnet() -> int:
    """A third octet of 10.241.x.0/24 no other test of this run uses (xdist workers get their own 50)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    return 1 + worker * 50 + next(_octets) % 50


def ip_json(*args: str, pid: int | None = None) -> Any:
    prefix = ["nsenter", "-t", str(pid), "-n"] if pid else []
    out = subprocess.run([*prefix, "ip", "-j", "-d", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


class Namespaces:
    """Network namespaces of `unshare -n sleep` processes, killed at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def new(self) -> int:
        p = subprocess.Popen(["unshare", "-n", "sleep", "60"])
        self.procs.append(p)
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{p.pid}/ns/net") != own:
                    return p.pid
            time.sleep(0.005)
        raise AssertionError("unshare -n did not make a namespace")


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    ns = Namespaces()
    try:
        yield ns
    finally:
        for p in ns.procs:
            p.kill()
            p.wait()


@pytest.fixture
def names() -> Iterator[Callable[[str], str]]:
    """Unique link names (pk<kind><hex>), each deleted at the end if it still exists."""
    made: list[str] = []

    def make(kind: str) -> str:
        name = f"pk{kind}{secrets.token_hex(4)}"
        made.append(name)
        return name

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.fixture
def nl() -> KernelNetLink:
    return KernelNetLink()


def _bridge(nl: KernelNetLink, names: Callable[[str], str]) -> tuple[str, int]:
    br, x = names("br"), _subnet()
    nl.ensure_bridge(br, (f"10.241.{x}.1/24",), 1500)
    return br, x


def _endpoint(names: Callable[[str], str], br: str, x: int, host: int, **kw: Any) -> Endpoint:
    fields: dict[str, Any] = {
        "host_ifname": names("v"),
        "ifname": "eth0",
        "bridge": br,
        "mac": f"02:42:0a:f1:{x:02x}:{host:02x}",
        "addresses": (f"10.241.{x}.{host}/24",),
        "gateway": f"10.241.{x}.1",
        "gateway6": None,
    }
    fields.update(kw)
    return Endpoint(**fields)


def ping(pid: int, address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "busybox", "ping", "-c1", "-W2", address],
        capture_output=True,
        text=True,
    )


def test_bridge_is_created_adopted_and_deleted(nl: KernelNetLink, names: Callable[[str], str]) -> None:
    br, x, y = names("br"), _subnet(), _subnet()
    nl.ensure_bridge(br, (f"10.241.{x}.1/24",), 1400)
    [link] = ip_json("link", "show", br)
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert link["mtu"] == 1400
    assert "UP" in link["flags"]
    assert Path(f"/proc/sys/net/ipv4/conf/{br}/route_localnet").read_text().strip() == "1"
    assert socket.if_nametoindex(br) == link["ifindex"]
    assert ipaddress.ip_network(f"10.241.{x}.0/24") in nl.host_routes()

    # adopted: a stray address goes, the wanted ones stay or come, the MTU follows
    subprocess.run(["ip", "addr", "add", f"10.241.{x}.9/24", "dev", br], check=True)
    nl.ensure_bridge(br, (f"10.241.{x}.1/24", f"10.241.{y}.1/24"), 1500)
    nl.ensure_bridge(br, (f"10.241.{x}.1/24", f"10.241.{y}.1/24"), 1500)  # idempotent
    [addrs] = ip_json("-4", "addr", "show", br)
    assert {f"{a['local']}/{a['prefixlen']}" for a in addrs["addr_info"]} == {
        f"10.241.{x}.1/24",
        f"10.241.{y}.1/24",
    }
    assert addrs["mtu"] == 1500

    nl.delete_bridge(br)
    assert not link_exists(br)
    nl.delete_bridge(br)  # a missing one is fine


def test_bridge_gets_ipv6_addresses(nl: KernelNetLink, names: Callable[[str], str]) -> None:
    br, x = names("br"), _subnet()
    nl.ensure_bridge(br, (f"10.241.{x}.1/24", f"fd00:241:{x}::1/64"), 1500)
    [addrs] = ip_json("-6", "addr", "show", br)
    assert f"fd00:241:{x}::1" in {a["local"] for a in addrs["addr_info"]}
    assert ipaddress.ip_network(f"fd00:241:{x}::/64") in nl.host_routes()


def test_ensure_bridge_refuses_a_link_that_is_not_a_bridge(
    nl: KernelNetLink, names: Callable[[str], str]
) -> None:
    name = names("d")
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True)
    with pytest.raises(OSError, match="is not a bridge"):
        nl.ensure_bridge(name, ("10.241.250.1/24",), 1500)


def test_endpoint_is_plumbed_into_the_namespace(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = _bridge(nl, names)
    pid = namespaces.new()
    ep = _endpoint(names, br, x, 2, mtu=1450)
    own = os.readlink("/proc/thread-self/ns/net")
    nl.add_endpoint(pid, ep)
    assert os.readlink("/proc/thread-self/ns/net") == own

    [eth0] = ip_json("addr", "show", "eth0", pid=pid)
    assert eth0["address"] == ep.mac
    assert eth0["mtu"] == 1450
    assert "UP" in eth0["flags"]
    assert f"10.241.{x}.2" in {a["local"] for a in eth0["addr_info"]}
    [lo] = ip_json("link", "show", "lo", pid=pid)
    assert "UP" in lo["flags"]
    routes = ip_json("route", "show", "default", pid=pid)
    assert [(r["gateway"], r["dev"]) for r in routes] == [(f"10.241.{x}.1", "eth0")]

    [host] = ip_json("link", "show", ep.host_ifname)
    assert host["master"] == br
    assert host["mtu"] == 1450
    assert "UP" in host["flags"]
    assert host["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert "eth0" not in {link["ifname"] for link in ip_json("link", "show", "master", br)}

    assert ping(pid, f"10.241.{x}.1").returncode == 0


def test_ipv6_endpoint_gets_its_address_and_default_route(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = names("br"), _subnet()
    nl.ensure_bridge(br, (f"10.241.{x}.1/24", f"fd00:241:{x}::1/64"), 1500)
    pid = namespaces.new()
    ep = _endpoint(
        names, br, x, 2, addresses=(f"10.241.{x}.2/24", f"fd00:241:{x}::2/64"), gateway6=f"fd00:241:{x}::1"
    )
    nl.add_endpoint(pid, ep)
    [eth0] = ip_json("-6", "addr", "show", "eth0", pid=pid)
    [mine] = [a for a in eth0["addr_info"] if a["local"] == f"fd00:241:{x}::2"]
    assert not mine.get("tentative")  # no duplicate address detection to wait for
    routes = ip_json("-6", "route", "show", "default", pid=pid)
    assert [r["gateway"] for r in routes] == [f"fd00:241:{x}::1"]
    assert ping(pid, f"fd00:241:{x}::1").returncode == 0


def test_two_endpoints_on_one_bridge_reach_each_other(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = _bridge(nl, names)
    a, b = namespaces.new(), namespaces.new()
    # from two threads at once, as two containers starting together would
    eps = [(a, _endpoint(names, br, x, 2)), (b, _endpoint(names, br, x, 3))]
    errors: list[BaseException] = []

    def add(pid: int, ep: Endpoint) -> None:
        try:
            nl.add_endpoint(pid, ep)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=pe) for pe in eps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # a daemon (ours, Docker's) may have set the host's FORWARD policy to DROP, and with br_netfilter
    # bridged frames pass that chain too: let this bridge's through while the test pings
    accept = ["FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"]
    subprocess.run(["iptables", "-w", "-I", *accept], check=True)
    try:
        result = ping(a, f"10.241.{x}.3")
        assert result.returncode == 0, result.stdout + result.stderr
        assert ping(b, f"10.241.{x}.2").returncode == 0
    finally:
        subprocess.run(["iptables", "-w", "-D", *accept], check=False)


def test_remove_endpoint_removes_both_ends(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = _bridge(nl, names)
    pid = namespaces.new()
    ep = _endpoint(names, br, x, 2)
    nl.add_endpoint(pid, ep)
    nl.remove_endpoint(ep.host_ifname)
    assert not link_exists(ep.host_ifname)
    assert [link["ifname"] for link in ip_json("link", "show", pid=pid)] == ["lo"]
    nl.remove_endpoint(ep.host_ifname)  # a missing one is fine


def test_add_endpoint_to_a_missing_bridge_leaves_nothing(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    pid = namespaces.new()
    ep = _endpoint(names, names("br"), 7, 2)
    with pytest.raises(OSError, match="not found"):
        nl.add_endpoint(pid, ep)
    assert not link_exists(ep.host_ifname)
    assert [link["ifname"] for link in ip_json("link", "show", pid=pid)] == ["lo"]


def test_add_endpoint_failing_half_way_removes_the_veth(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = _bridge(nl, names)
    pid = namespaces.new()
    ep = _endpoint(names, br, x, 2, gateway="10.241.255.1")  # not on the link: the route cannot be added
    with pytest.raises(OSError, match=r"default route via 10\.241\.255\.1"):
        nl.add_endpoint(pid, ep)
    assert not link_exists(ep.host_ifname)
    assert [link["ifname"] for link in ip_json("link", "show", pid=pid)] == ["lo"]


def test_add_endpoint_does_not_delete_a_link_it_did_not_make(
    nl: KernelNetLink, names: Callable[[str], str], namespaces: Namespaces
) -> None:
    br, x = _bridge(nl, names)
    pid = namespaces.new()
    ep = _endpoint(names, br, x, 2)
    subprocess.run(["ip", "link", "add", ep.host_ifname, "type", "bridge"], check=True)
    with pytest.raises(OSError, match="File exists"):
        nl.add_endpoint(pid, ep)
    assert link_exists(ep.host_ifname)


def test_a_socket_made_inside_lists_the_namespace_links_only(namespaces: Namespaces) -> None:
    pid = namespaces.new()
    with in_netns(pid):
        ipr = IPRoute()
    with ipr:
        assert [m.get("ifname") for m in ipr.link("dump")] == ["lo"]
    with IPRoute() as host:  # and the thread is back on the host
        assert len(host.link("dump")) > 1


def test_socket_in_serves_udp_on_127_0_0_11_inside(nl: KernelNetLink, namespaces: Namespaces) -> None:
    pid = namespaces.new()
    subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up"], check=True)
    with nl.socket_in(pid, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert sock.getblocking() is False
        assert not sock.get_inheritable()
        sock.bind(("127.0.0.11", 53))
        client = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5);"
            "s.sendto(b'ping', ('127.0.0.11', 53)); print(s.recvfrom(100)[0].decode())"
        )
        proc = subprocess.Popen(
            ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", client], stdout=subprocess.PIPE, text=True
        )
        try:
            assert select.select([sock], [], [], 5)[0], "no datagram reached the socket"
            data, peer = sock.recvfrom(100)
            assert data == b"ping"
            sock.sendto(b"pong", peer)
            out, _ = proc.communicate(timeout=5)
        finally:
            proc.kill()
            proc.wait()
    assert out.strip() == "pong"


def test_socket_in_a_missing_namespace_is_an_oserror(nl: KernelNetLink) -> None:
    with pytest.raises(OSError, match="network namespace of process"):
        nl.socket_in(2**22 + 1, socket.AF_INET, socket.SOCK_DGRAM)
