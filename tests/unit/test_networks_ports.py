"""Published ports: parsing, the allocator holding real sockets (127.0.0.1 only), the API's views."""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.networking import ps_ports
from daemon.errors import InvalidParameter, SystemError_
from daemon.networks.ports import (
    DEFAULT_PORT_RANGE,
    MAX_BIND_FAILURES,
    PortAllocator,
    PortBinding,
    kernel_port_range,
    parse_exposed_ports,
    parse_port_bindings,
    parse_port_key,
    ports_view,
    publish_all,
)

LO = "127.0.0.1"
IN_USE = "address already in use"

# --- parsing -----------------------------------------------------------------------------------------


def test_parse_port_key() -> None:
    assert parse_port_key("80") == (80, "tcp")
    assert parse_port_key("53/UDP") == (53, "udp")
    assert parse_port_key("080/sctp") == (80, "sctp")
    for key, message in [
        ("", "invalid port: value is empty"),
        ("/tcp", "invalid port '': value is empty"),
        ("+80/tcp", "invalid port '+80': invalid syntax"),
        ("8000-8002/tcp", "invalid port '8000-8002': invalid syntax"),
        ("65536", "invalid port '65536': value out of range"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_port_key(key)
        assert str(info.value) == message


def test_parse_exposed_ports() -> None:
    assert parse_exposed_ports(None) == []
    raw: dict[str, Any] = {"80/tcp": {}, "53/udp": {}, "80": {}, "8000-8002/UDP": {}, "9/foo": {}}
    assert parse_exposed_ports(raw) == [
        (80, "tcp"),
        (53, "udp"),
        (8000, "udp"),
        (8001, "udp"),
        (8002, "udp"),
        (9, "foo"),
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"x/tcp": {}}, "invalid JSON: invalid port 'x': invalid syntax"),
        ({"9-8/tcp": {}}, "invalid JSON: invalid port range: 9-8"),
        ({"8-/tcp": {}}, "invalid JSON: invalid end port '': value is empty"),
        ({"-8/tcp": {}}, "invalid JSON: invalid start port '': value is empty"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidParameter) as info:
            parse_exposed_ports(bad)
        assert info.value.message == message


def test_parse_port_bindings() -> None:
    raw: dict[str, Any] = {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": ""}],
        "53/udp": [{"HostPort": "0"}],
        "443": [{"HostIp": "::0", "HostPort": "8000-8010"}],
        "22/tcp": [{"HostPort": "2222-2222"}, {"HostPort": "2223/tcp"}],
        "9/sctp": None,
        "10/tcp": [],
    }
    assert parse_port_bindings(raw) == [
        PortBinding(80, "tcp", "127.0.0.1", 8080),
        PortBinding(80, "tcp", "", 0),
        PortBinding(53, "udp", "", 0),
        PortBinding(443, "tcp", "::", 8000, 8010),
        PortBinding(22, "tcp", "", 2222),
        PortBinding(22, "tcp", "", 2223),
    ]
    assert parse_port_bindings(None) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"0/tcp": [{}]}, 'invalid port specification: "0/tcp"'),
        ({"x/tcp": [{}]}, "invalid JSON: invalid port 'x': invalid syntax"),
        ({"80/icmp": [{}]}, "invalid proto: icmp"),
        ({"80/tcp": [{"HostPort": "http"}]}, 'invalid port specification: "http"'),
        ({"80/tcp": [{"HostPort": "70000"}]}, 'invalid port specification: "70000"'),
        ({"80/tcp": [{"HostPort": "8010-8000"}]}, 'invalid port specification: "8010-8000"'),
        ({"80/tcp": [{"HostPort": "0-100"}]}, 'invalid port specification: "0-100"'),
        ({"80/tcp": [{"HostPort": "8000-"}]}, 'invalid port specification: "8000-"'),
        ({"80/tcp": [{"HostIp": "localhost"}]}, 'invalid JSON: ParseAddr("localhost"): unable to parse IP'),
        ({"80/tcp": [{"HostPort": 8080}]}, "invalid JSON: HostPort must be a string"),
        ({"80/tcp": {"HostPort": "8080"}}, "invalid JSON: the bindings of 80/tcp must be a list"),
    ],
)
def test_parse_port_bindings_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_port_bindings(raw)
    assert info.value.message == message


def test_publish_all() -> None:
    exposed = [(80, "tcp"), (443, "tcp"), (53, "udp"), (9, "foo")]
    fixed = [PortBinding(80, "tcp", "127.0.0.1", 8080)]
    assert publish_all(exposed, fixed) == [
        PortBinding(80, "tcp", "127.0.0.1", 8080),
        PortBinding(443, "tcp", "", 0),
        PortBinding(53, "udp", "", 0),
    ]


def test_views() -> None:
    exposed = [(80, "tcp"), (443, "tcp"), (53, "udp")]
    in_effect = [
        PortBinding(80, "tcp", "", 32768),
        PortBinding(80, "tcp", "::", 32768),
        PortBinding(53, "udp", "127.0.0.1", 5353),
        PortBinding(8080, "tcp", "", 8080),  # published without being in ExposedPorts
    ]
    view = ports_view(exposed, in_effect)
    assert list(view) == ["443/tcp", "53/udp", "80/tcp", "8080/tcp"]  # Go sorts map keys
    assert view == {
        "443/tcp": None,
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
        "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
    }
    assert ps_ports(view) == [  # the container list's entries, from what inspect shows
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 8080, "Type": "tcp"},
    ]
    assert ports_view([], []) == {} and ps_ports({}) == []


def test_kernel_port_range(tmp_path: Path) -> None:
    f = tmp_path / "range"
    f.write_text("20000\t20999\n")
    assert kernel_port_range(f) == (20000, 20999)
    f.write_text("garbage\n")
    assert kernel_port_range(f) == DEFAULT_PORT_RANGE
    assert kernel_port_range(tmp_path / "missing") == DEFAULT_PORT_RANGE


# --- the allocator, on real sockets --------------------------------------------------------------------


def _can_bind(port: int, kind: int = socket.SOCK_STREAM, ip: str = LO) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, kind) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
            return False
    return True


def _free_block(n: int) -> int:
    """The first of n consecutive ports free for tcp and udp on 127.0.0.1 (below the ephemeral range,
    so the kernel does not hand them out meanwhile)."""
    for _ in range(200):
        base = random.randint(20000, 32000 - n)
        if all(_can_bind(p) and _can_bind(p, socket.SOCK_DGRAM) for p in range(base, base + n)):
            return base
    raise AssertionError("no block of free ports")


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets the test opens to play "another process"; closed whatever happens."""
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for s in opened:
            s.close()


def _occupy(opened: list[socket.socket], port: int, kind: int = socket.SOCK_STREAM) -> None:
    s = socket.socket(socket.AF_INET, kind)
    opened.append(s)
    s.bind((LO, port))


@pytest.fixture
def allocator() -> Iterator[PortAllocator]:
    pa = PortAllocator(port_range=(20000, 20001))
    try:
        yield pa
    finally:
        for owner in list(pa.held()):
            pa.release(owner)


def test_fixed_port_is_held_and_released(allocator: PortAllocator) -> None:
    port = _free_block(1)
    assert allocator.allocate("c1", PortBinding(80, "tcp", LO, port)) == (LO, port)
    assert not _can_bind(port)  # really held against other processes
    assert _can_bind(port, socket.SOCK_DGRAM)  # tcp only
    assert allocator.held() == {"c1": [("tcp", LO, port)]}
    allocator.release("c1")
    allocator.release("c1")  # nothing held: harmless
    assert allocator.held() == {}
    assert _can_bind(port)


def test_udp_port_is_held(allocator: PortAllocator) -> None:
    port = _free_block(1)
    allocator.allocate("c1", PortBinding(53, "udp", LO, port))
    assert not _can_bind(port, socket.SOCK_DGRAM)
    allocator.release("c1")
    assert _can_bind(port, socket.SOCK_DGRAM)


def test_conflict_between_owners(allocator: PortAllocator) -> None:
    port = _free_block(1)
    allocator.allocate("c1", PortBinding(80, "tcp", LO, port))
    with pytest.raises(SystemError_) as info:
        allocator.allocate("c2", PortBinding(81, "tcp", LO, port))
    assert info.value.message == f"Bind for {LO}:{port} failed: port is already allocated"
    allocator.allocate("c2", PortBinding(81, "udp", LO, port))  # another protocol, another port space
    assert allocator.held() == {"c1": [("tcp", LO, port)], "c2": [("udp", LO, port)]}


def test_port_of_another_process_is_refused_with_the_bind_words(
    allocator: PortAllocator, sockets: list[socket.socket]
) -> None:
    port = _free_block(1)
    _occupy(sockets, port)
    with pytest.raises(SystemError_) as info:
        allocator.allocate("c1", PortBinding(80, "tcp", LO, port))
    assert info.value.message == f"failed to bind host port {LO}:{port}/tcp: address already in use"
    assert allocator.held() == {}


def test_random_ports_inside_the_range_skip_taken_ones(sockets: list[socket.socket]) -> None:
    base = _free_block(3)
    _occupy(sockets, base)
    _occupy(sockets, base + 1)
    pa = PortAllocator(port_range=(base, base + 2))
    try:
        # whatever the random start, the only free port of the range is the one handed out
        assert pa.allocate("c1", PortBinding(80, "tcp", LO, 0)) == (LO, base + 2)
        assert not _can_bind(base + 2)
        with pytest.raises(SystemError_) as info:
            pa.allocate("c2", PortBinding(80, "tcp", LO, 0))
        # both others refused by the kernel: the last refusal is reported (which one: the random start)
        refusals = {
            f"failed to bind host port {LO}:{p}/tcp: address already in use" for p in (base, base + 1)
        }
        assert info.value.message in refusals
        pa.release("c1")
        ports = {pa.allocate(f"r{i}", PortBinding(80, "udp", LO, 0))[1] for i in range(3)}
        assert ports == {base, base + 1, base + 2}  # udp ports are free: all three, no repeat
        with pytest.raises(SystemError_) as info:
            pa.allocate("r4", PortBinding(80, "udp", LO, 0))
        assert info.value.message == "all ports are allocated"
    finally:
        for owner in list(pa.held()):
            pa.release(owner)


def test_random_allocation_gives_up_after_bounded_bind_failures(sockets: list[socket.socket]) -> None:
    n = MAX_BIND_FAILURES + 2
    base = _free_block(n)
    for p in range(base, base + n - 1):
        _occupy(sockets, p)
    pa = PortAllocator(port_range=(base, base + n - 1))
    start = base  # random.randint patched below: the scan starts at the first port
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(random, "randint", lambda a, b: start)
        with pytest.raises(SystemError_) as info:
            pa.allocate("c1", PortBinding(80, "tcp", LO, 0))
    # the free last port is never reached: the scan stops after MAX_BIND_FAILURES refusals
    assert (
        info.value.message
        == f"failed to bind host port {LO}:{base + MAX_BIND_FAILURES - 1}/tcp: address already in use"
    )
    assert pa.held() == {}


def test_host_port_range(allocator: PortAllocator, sockets: list[socket.socket]) -> None:
    base = _free_block(4)
    _occupy(sockets, base)
    ask = PortBinding(80, "tcp", LO, base, base + 3)
    assert allocator.allocate("c1", ask) == (LO, base + 1)  # in order, past the taken one
    assert allocator.allocate("c2", ask) == (LO, base + 2)
    allocator.release("c1")
    assert allocator.allocate("c3", ask) == (LO, base + 1)


def test_reserve(allocator: PortAllocator, sockets: list[socket.socket]) -> None:
    base = _free_block(2)
    allocator.reserve("c1", "tcp", LO, base)
    allocator.reserve("c1", "tcp", LO, base)  # again for the same owner: no-op
    assert not _can_bind(base)
    with pytest.raises(SystemError_) as info:
        allocator.reserve("c2", "tcp", LO, base)
    assert info.value.message == f"Bind for {LO}:{base} failed: port is already allocated"
    _occupy(sockets, base + 1, socket.SOCK_DGRAM)
    with pytest.raises(SystemError_) as info:
        allocator.reserve("c2", "udp", LO, base + 1)
    assert info.value.message == f"failed to bind host port {LO}:{base + 1}/udp: address already in use"
    assert allocator.held() == {"c1": [("tcp", LO, base)]}


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_loopback(allocator: PortAllocator) -> None:
    port = _free_block(1)
    assert _can_bind(port, ip="::1")
    assert allocator.allocate("c1", PortBinding(80, "tcp", "::1", port)) == ("::1", port)
    assert not _can_bind(port, ip="::1")
    assert _can_bind(port)  # IPV6_V6ONLY: 127.0.0.1 stays free
    assert allocator.held() == {"c1": [("tcp", "::1", port)]}


def test_sctp_held_when_the_kernel_has_it(allocator: PortAllocator) -> None:
    port = _free_block(1)
    allocator.allocate("c1", PortBinding(80, "sctp", LO, port))
    assert allocator.held() == {"c1": [("sctp", LO, port)]}
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError:
        return  # no SCTP here: recorded only, as documented
    with probe, pytest.raises(OSError):
        probe.bind((LO, port))


def test_unknown_protocol(allocator: PortAllocator) -> None:
    with pytest.raises(InvalidParameter) as info:
        allocator.allocate("c1", PortBinding(80, "icmp", LO, 0))
    assert info.value.message == "unknown protocol"
