"""Networking through the real docker CLI: bridges, user-defined networks with DNS, isolation, published
ports, and the host left exactly as it was. Traffic goes only to loopback and the tests' own containers."""

import itertools
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, RunningDaemon

pytestmark = [pytest.mark.root, pytest.mark.integration]

_subnets = itertools.count(10)


@pytest.fixture(scope="module")
def udpecho(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static UDP echo (busybox's nc has no UDP), bind-mounted into containers."""
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the UDP probe (make install brings it)"
    out = tmp_path_factory.mktemp("udpecho") / "udpecho"
    src = REPO / "tests" / "probes" / "udpecho.c"
    subprocess.run([gcc, "-static", "-O1", "-o", str(out), str(src)], check=True, capture_output=True)
    return out


def ok(p: subprocess.CompletedProcess[bytes]) -> str:
    assert p.returncode == 0, (p.args, p.stdout, p.stderr)
    return p.stdout.decode().strip()


@pytest.fixture
def networks(daemon: RunningDaemon) -> Iterator[Callable[..., tuple[str, str]]]:
    """make(*flags) -> (name, subnet): a network of the test's own on a subnet of its daemon's slot."""
    made: list[str] = []

    def make(*flags: str) -> tuple[str, str]:
        assert daemon.net is not None
        name, subnet = f"tn-{uuid.uuid4().hex[:8]}", daemon.net.subnet(next(_subnets))
        ok(daemon.docker("network", "create", "--subnet", subnet, *flags, name))
        made.append(name)
        return name, subnet

    yield make
    for name in made:
        daemon.docker("network", "rm", name)


def run(d: RunningDaemon, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return d.docker("run", "--rm", *args, timeout=timeout)


def ip_of(d: RunningDaemon, container: str, network: str) -> str:
    fmt = '{{(index .NetworkSettings.Networks "' + network + '").IPAddress}}'
    return ok(d.docker("inspect", "-f", fmt, container))


def daemon_links(d: RunningDaemon) -> set[str]:
    """The bridges of d's networks and the links enslaved to them (other tests' daemons run alongside)."""
    ids = ok(d.docker("network", "ls", "-q", "--no-trunc", "--filter", "driver=bridge")).split()
    bridges = set()
    for info in json.loads(ok(d.docker("network", "inspect", *ids))):
        bridges.add(info["Options"].get("com.docker.network.bridge.name") or f"br-{info['Id'][:12]}")
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return {
        link["ifname"]
        for link in json.loads(out)
        if link["ifname"] in bridges or link.get("master") in bridges
    }


def our_rules(d: RunningDaemon) -> list[str]:
    """Our daemon's iptables rules (its chains are named after its bridge), with counters dropped."""
    assert d.net is not None
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    tag = f"PYD-{d.net.bridge}"
    return sorted(line.split(" [")[0] for line in out.splitlines() if tag in line)


def http_get(port: int, host: str = "127.0.0.1") -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def wait_http(port: int, want: str = "hello from a container", tries: int = 50) -> str:
    last = ""
    for _ in range(tries):
        try:
            last = http_get(port)
            if want in last:
                return last
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise AssertionError(f"no answer on 127.0.0.1:{port}: {last}")


HTTPD = "mkdir -p /www && echo 'hello from a container' > /www/index.html && exec httpd -f -p 80 -h /www"


# --- the default bridge ----------------------------------------------------------------------------


def test_default_bridge_gives_an_address_a_route_and_no_names(
    daemon: RunningDaemon, names: list[str]
) -> None:
    assert daemon.net is not None
    prefix = f"10.{100 + daemon.net.n}.0."
    out = ok(run(daemon, "busybox", "sh", "-c", "ip -4 -o addr show eth0; ip route"))
    assert f"inet {prefix}" in out and f"default via {prefix}1 dev eth0" in out, out
    name = f"nb-{uuid.uuid4().hex[:6]}"
    names.append(name)
    ok(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60"))
    settings = json.loads(ok(daemon.docker("inspect", "-f", "{{json .NetworkSettings}}", name)))
    bridge = settings["Networks"]["bridge"]
    assert bridge["IPAddress"].startswith(prefix) and bridge["Gateway"] == prefix + "1"
    assert bridge["IPPrefixLen"] == 24 and bridge["MacAddress"].startswith("02:42:")
    assert settings["IPAddress"] == bridge["IPAddress"], "the default bridge repeats its endpoint at the top"
    assert bridge["DNSNames"] is None
    # Docker's default bridge answers no container names
    p = run(daemon, "busybox", "nslookup", name)
    assert bridge["IPAddress"] not in p.stdout.decode()


# --- user-defined networks -------------------------------------------------------------------------


def test_names_resolve_over_tcp_and_udp_and_networks_are_isolated(
    daemon: RunningDaemon, names: list[str], networks: Callable[..., tuple[str, str]], udpecho: Path
) -> None:
    net_a, _ = networks()
    net_b, _ = networks()
    srv = f"srv-{uuid.uuid4().hex[:6]}"
    names.append(srv)
    script = f"{udpecho.name} serve 9999 & {HTTPD}"
    mount = ("-v", f"{udpecho}:/bin/{udpecho.name}:ro")
    ok(daemon.docker("run", "-d", "--name", srv, "--network", net_a, "--network-alias", "api", *mount,
                     "busybox", "sh", "-c", script))  # fmt: skip
    got = ok(run(daemon, "--network", net_a, "busybox", "wget", "-qO-", f"http://{srv}/index.html"))
    assert got == "hello from a container"
    assert ok(run(daemon, "--network", net_a, "busybox", "wget", "-qO-", "http://api/index.html")) == got
    echo = ok(
        run(daemon, "--network", net_a, *mount, "busybox", udpecho.name, "send", srv, "9999", "ping-udp")
    )
    assert echo == "ping-udp"
    srv_ip = ip_of(daemon, srv, net_a)
    probe = f"wget -T 2 -qO- http://{srv_ip}/index.html >/dev/null 2>&1 && echo reachable || echo unreachable"
    assert ok(run(daemon, "--network", net_b, "busybox", "sh", "-c", probe)) == "unreachable"
    p = run(daemon, "--network", net_b, "busybox", "nslookup", srv)
    assert srv_ip not in p.stdout.decode(), "a name of another network must not resolve"
    # and the other way: a network created earlier reaches no later one either
    srv_b = f"sb-{uuid.uuid4().hex[:6]}"
    names.append(srv_b)
    ok(daemon.docker("run", "-d", "--name", srv_b, "--network", net_b, "busybox", "sh", "-c", HTTPD))
    probe_b = probe.replace(srv_ip, ip_of(daemon, srv_b, net_b))
    assert ok(run(daemon, "--network", net_a, "busybox", "sh", "-c", probe_b)) == "unreachable"


def test_internal_network_has_no_way_out(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]], names: list[str]
) -> None:
    inner, _ = networks("--internal")
    _, outer_subnet = networks()
    peer = f"in-{uuid.uuid4().hex[:6]}"
    names.append(peer)
    ok(daemon.docker("run", "-d", "--name", peer, "--network", inner, "busybox", "sleep", "60"))
    routes = ok(run(daemon, "--network", inner, "busybox", "ip", "route"))
    assert "default" not in routes, routes
    # its neighbours it reaches, the gateway of another network (a host address) it does not
    assert ok(run(daemon, "--network", inner, "busybox", "ping", "-c1", "-W2", peer)).count(
        "1 packets received"
    )
    other_gw = outer_subnet.rsplit(".", 1)[0] + ".1"
    p = run(daemon, "--network", inner, "busybox", "ping", "-c1", "-W1", other_gw)
    assert p.returncode != 0


def test_connect_and_disconnect_a_running_container(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]], names: list[str]
) -> None:
    net_a, _ = networks()
    net_b, _ = networks()
    srv, cli = f"cs-{uuid.uuid4().hex[:6]}", f"cc-{uuid.uuid4().hex[:6]}"
    names.extend([srv, cli])
    ok(daemon.docker("run", "-d", "--name", srv, "--network", net_a, "busybox", "sh", "-c", HTTPD))
    ok(daemon.docker("run", "-d", "--name", cli, "--network", net_b, "busybox", "sleep", "120"))
    ok(daemon.docker("network", "connect", "--alias", "second", net_a, cli))
    got = ok(daemon.docker("exec", cli, "wget", "-qO-", f"http://{srv}/index.html"))
    assert got == "hello from a container"
    assert "eth1" in ok(daemon.docker("exec", cli, "ls", "/sys/class/net"))
    inspect = json.loads(ok(daemon.docker("network", "inspect", net_a)))[0]
    assert {c["Name"] for c in inspect["Containers"].values()} == {srv, cli}
    ok(daemon.docker("network", "disconnect", net_a, cli))
    assert "eth1" not in ok(daemon.docker("exec", cli, "ls", "/sys/class/net"))
    p = daemon.docker("exec", cli, "wget", "-T", "2", "-qO-", f"http://{srv}/index.html")
    assert p.returncode != 0


def test_static_address_mac_alias_and_inspect_fields(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]], names: list[str]
) -> None:
    net, subnet = networks()
    base = subnet.rsplit(".", 1)[0]
    name = f"st-{uuid.uuid4().hex[:6]}"
    names.append(name)
    ok(daemon.docker("run", "-d", "--name", name, "--network", net, "--ip", f"{base}.50",
                     "--mac-address", "02:42:aa:bb:cc:dd", "--network-alias", "db", "--hostname", "box",
                     "busybox", "sleep", "60"))  # fmt: skip
    out = ok(
        daemon.docker("exec", name, "sh", "-c", "ip -4 -o addr show eth0; cat /sys/class/net/eth0/address")
    )
    assert f"inet {base}.50/24" in out and "02:42:aa:bb:cc:dd" in out
    ep = json.loads(ok(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", name)))[net]
    cid = ok(daemon.docker("inspect", "-f", "{{.Id}}", name))
    assert ep["IPAddress"] == f"{base}.50" and ep["Gateway"] == f"{base}.1" and ep["IPPrefixLen"] == 24
    assert ep["MacAddress"] == "02:42:aa:bb:cc:dd" and ep["Aliases"] == ["db"]
    assert ep["DNSNames"] == [name, "db", cid[:12], "box"]
    assert len(ep["EndpointID"]) == 64 and ep["NetworkID"] == ok(
        daemon.docker("network", "inspect", "-f", "{{.Id}}", net)
    )
    taken = daemon.docker("run", "--rm", "--network", net, "--ip", f"{base}.50", "busybox", "true")
    assert taken.returncode != 0 and b"Address already in use" in taken.stderr


SHOW_ETC = "cat /etc/hosts; echo ---; cat /etc/resolv.conf"


def test_etc_files_dns_options_and_extra_hosts(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]]
) -> None:
    assert daemon.net is not None
    gw = f"10.{100 + daemon.net.n}.0.1"
    out = ok(run(daemon, "--add-host", "db.local:10.1.2.3", "--add-host", "gw:host-gateway",
                 "--dns", "10.9.8.7", "--dns-search", "example.test", "--dns-option", "ndots:3",
                 "--hostname", "web", "busybox", "sh", "-c", SHOW_ETC))  # fmt: skip
    hosts, resolv = out.split("---")
    assert "10.1.2.3\tdb.local" in hosts and f"{gw}\tgw" in hosts and "\tweb" in hosts
    assert "nameserver 10.9.8.7" in resolv and "search example.test" in resolv and "ndots:3" in resolv
    net, _ = networks()
    resolv = ok(run(daemon, "--network", net, "busybox", "cat", "/etc/resolv.conf"))
    assert "nameserver 127.0.0.11" in resolv, resolv


def test_container_and_host_network_modes(daemon: RunningDaemon, names: list[str]) -> None:
    owner = f"own-{uuid.uuid4().hex[:6]}"
    names.append(owner)
    ok(daemon.docker("run", "-d", "--name", owner, "busybox", "sleep", "60"))
    mine = ok(daemon.docker("exec", owner, "ip", "-4", "-o", "addr", "show", "eth0")).split()[3]
    shared = ok(
        run(daemon, "--network", f"container:{owner}", "busybox", "ip", "-4", "-o", "addr", "show", "eth0")
    )
    assert shared.split()[3] == mine
    host_links = ok(run(daemon, "--network", "host", "busybox", "ls", "/sys/class/net")).split()
    assert daemon.net is not None and {"lo", daemon.net.bridge} <= set(host_links), "the host's own links"
    p = daemon.docker("run", "--rm", "--network", f"container:{owner}", "-p", "80", "busybox", "true")
    assert p.returncode != 0 and b"conflicting options" in p.stderr


# --- networks through the API ----------------------------------------------------------------------


def test_network_create_inspect_list_remove_prune_and_events(daemon: RunningDaemon, names: list[str]) -> None:
    assert daemon.net is not None
    since = str(int(time.time()) - 1)
    name, subnet = f"tn-{uuid.uuid4().hex[:8]}", daemon.net.subnet(next(_subnets))
    base = subnet.rsplit(".", 1)[0]
    nid = ok(daemon.docker("network", "create", "--subnet", subnet, "--gateway", f"{base}.254",
                           "--ip-range", f"{base}.128/25", "--label", "team=net", "-o",
                           "com.docker.network.bridge.enable_icc=false", name))  # fmt: skip
    try:
        info = json.loads(ok(daemon.docker("network", "inspect", name)))[0]
        assert info["Id"] == nid and info["Driver"] == "bridge" and info["Scope"] == "local"
        assert info["IPAM"]["Config"] == [
            {"Subnet": subnet, "Gateway": f"{base}.254", "IPRange": f"{base}.128/25"}
        ]
        assert info["Labels"] == {"team": "net"} and info["Containers"] == {}
        assert name in ok(
            daemon.docker("network", "ls", "--filter", "label=team=net", "--format", "{{.Name}}")
        )
        builtin = ok(
            daemon.docker("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}")
        ).split()
        assert sorted(builtin) == ["bridge", "host", "none"]
        user = f"nu-{uuid.uuid4().hex[:6]}"
        names.append(user)
        ok(daemon.docker("run", "-d", "--name", user, "--network", name, "busybox", "sleep", "60"))
        assert ip_of(daemon, user, name) == f"{base}.128", "dynamic addresses come from the ip-range"
        busy = daemon.docker("network", "rm", name)
        assert busy.returncode != 0 and b"has active endpoints" in busy.stderr
        assert daemon.docker("network", "rm", "bridge").stderr.count(b"pre-defined network")
        dup = daemon.docker("network", "create", name)
        assert dup.returncode != 0 and b"already exists" in dup.stderr
        overlay = daemon.docker("network", "create", "-d", "overlay", f"{name}-o")
        assert overlay.returncode != 0 and name + "-o" not in ok(daemon.docker("network", "ls"))
        ok(daemon.docker("rm", "-f", user))
        pruned = ok(daemon.docker("network", "prune", "-f", "--filter", "label=team=net"))
        assert name in pruned and "bridge" not in pruned
    finally:
        daemon.docker("network", "rm", name)
    until = str(int(time.time()) + 1)
    events = ok(daemon.docker("events", "--since", since, "--until", until, "--filter", "type=network",
                              "--filter", f"network={nid}", "--format", "{{.Action}}"))  # fmt: skip
    assert events.split() == ["create", "connect", "disconnect", "destroy"]


# --- published ports -------------------------------------------------------------------------------


def test_published_ports_ps_port_and_publish_all(daemon: RunningDaemon, names: list[str]) -> None:
    name = f"pp-{uuid.uuid4().hex[:6]}"
    names.append(name)
    ok(daemon.docker("run", "-d", "--name", name, "-p", "127.0.0.1::80", "--expose", "81", "-P",
                     "busybox", "sh", "-c", HTTPD))  # fmt: skip
    mapping = ok(daemon.docker("port", name, "80/tcp"))
    host_ip, _, port = mapping.partition(":")
    assert host_ip == "127.0.0.1" and port.isdigit()
    assert "hello from a container" in wait_http(int(port))
    assert "81/tcp -> 0.0.0.0:" in ok(daemon.docker("port", name)), "-P publishes the exposed port"
    ps = ok(daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Ports}}"))
    assert f"127.0.0.1:{port}->80/tcp" in ps


def test_a_taken_port_is_a_clear_error_and_leaves_nothing(daemon: RunningDaemon, names: list[str]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        before_links, before_rules = daemon_links(daemon), our_rules(daemon)
        name = f"pt-{uuid.uuid4().hex[:6]}"
        names.append(name)
        p = daemon.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30")
        assert p.returncode == 125 and b"address already in use" in p.stderr, p.stderr
        assert ok(daemon.docker("inspect", "-f", "{{.State.Running}}", name)) == "false"
        assert daemon_links(daemon) == before_links and our_rules(daemon) == before_rules
    finally:
        holder.close()


def test_published_port_survives_a_daemon_sigkill(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    ok(d.docker("run", "-d", "--name", "web", "-p", "127.0.0.1:18080:80", "busybox", "sh", "-c", HTTPD))
    wait_http(18080)
    d.kill(9)
    assert "hello from a container" in http_get(18080), "the kernel's rules serve on while the daemon is gone"
    d.start()
    assert "hello from a container" in wait_http(18080)
    assert ok(d.docker("port", "web", "80")) == "127.0.0.1:18080"
    rules = our_rules(d)
    assert any("18080" in r for r in rules)
    ok(d.docker("rm", "-f", "web"))
    assert not any("18080" in r for r in our_rules(d)), "the port's rules go with the container"
    with pytest.raises(OSError):
        http_get(18080)


def test_a_hundred_runs_and_a_restart_leave_the_host_as_before(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    assert d.net is not None
    net = "churn"
    ok(d.docker("network", "create", "--subnet", d.net.subnet(1), net))
    first = ok(d.docker("run", "--rm", "--network", net, "busybox", "ip", "-4", "-o", "addr", "show", "eth0"))
    before = (daemon_links(d), our_rules(d))
    for i in range(100):
        p = d.docker("run", "--rm", "--network", net, "-p", "127.0.0.1::80", "busybox", "true")
        assert p.returncode == 0, (i, p.stderr)
    d.kill()
    d.start()
    assert (daemon_links(d), our_rules(d)) == before
    again = ok(d.docker("run", "--rm", "--network", net, "busybox", "ip", "-4", "-o", "addr", "show", "eth0"))
    assert again.split()[3] == first.split()[3], "every address went back to the pool"


# --- names that are not the containers' ------------------------------------------------------------


@pytest.fixture
def loopback_resolver() -> Iterator[str]:
    """A DNS server of the test's own on a loopback address: outside.test is 10.9.9.9, nothing else is."""
    import threading

    import dns.message
    import dns.rcode
    import dns.rrset

    address = f"127.53.{uuid.uuid4().int % 250 + 1}.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    sock.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            q = query.question[0]
            if q.name.to_text() == "outside.test." and q.rdtype == 1:
                reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "10.9.9.9"))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_other_names_go_to_the_daemons_resolver(loopback_resolver: str) -> None:
    from tests.conftest import daemon_in_new_dir

    with daemon_in_new_dir("pyd-dns-", extra_args=("--dns", loopback_resolver)) as d:
        assert d.net is not None
        ok(d.docker("network", "create", "--subnet", d.net.subnet(1), "fwd"))
        out = run(d, "--network", "fwd", "busybox", "nslookup", "outside.test").stdout.decode()
        assert "10.9.9.9" in out, out
        missing = run(d, "--network", "fwd", "busybox", "nslookup", "nowhere.test")
        assert missing.returncode != 0 and "10.9.9.9" not in missing.stdout.decode()


def test_names_follow_rename_and_stop_and_links_write_hosts(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]], names: list[str]
) -> None:
    net, _ = networks()
    old, new = f"ro-{uuid.uuid4().hex[:6]}", f"rn-{uuid.uuid4().hex[:6]}"
    names.extend([old, new])
    ok(daemon.docker("run", "-d", "--name", old, "--network", net, "busybox", "sleep", "120"))
    ip = ip_of(daemon, old, net)
    assert ip in ok(run(daemon, "--network", net, "busybox", "nslookup", old))
    ok(daemon.docker("rename", old, new))
    assert ip in ok(run(daemon, "--network", net, "busybox", "nslookup", new))
    assert ip not in run(daemon, "--network", net, "busybox", "nslookup", old).stdout.decode()
    # a legacy link on the default bridge is a line in /etc/hosts
    linked = f"lk-{uuid.uuid4().hex[:6]}"
    names.append(linked)
    ok(daemon.docker("run", "-d", "--name", linked, "busybox", "sleep", "120"))
    hosts = ok(run(daemon, "--link", f"{linked}:db", "busybox", "cat", "/etc/hosts"))
    assert f"{ip_of(daemon, linked, 'bridge')}\tdb {linked}" in hosts
    ok(daemon.docker("stop", "-t", "0", new))
    assert ip not in run(daemon, "--network", net, "busybox", "nslookup", new).stdout.decode()


def test_an_ipv6_network_gives_both_families(
    daemon: RunningDaemon, networks: Callable[..., tuple[str, str]], names: list[str]
) -> None:
    assert daemon.net is not None
    v6 = f"fd00:{100 + daemon.net.n}:{next(_subnets)}::/64"
    net, _ = networks("--ipv6", "--subnet", v6)
    peer = f"v6-{uuid.uuid4().hex[:6]}"
    names.append(peer)
    ok(daemon.docker("run", "-d", "--name", peer, "--network", net, "busybox", "sleep", "60"))
    ep = json.loads(ok(daemon.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", peer)))[net]
    prefix = v6.split("::")[0]
    assert ep["GlobalIPv6Address"].startswith(prefix) and ep["IPv6Gateway"] == f"{prefix}::1"
    out = ok(run(daemon, "--network", net, "busybox", "ping", "-6", "-c1", "-W2", ep["GlobalIPv6Address"]))
    assert "1 packets received" in out
