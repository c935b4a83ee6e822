"""Published ports: parsing ExposedPorts and PortBindings, holding host ports, the API's views of them.

Words from moby (api/types/network ParsePort/ParsePortRange, daemon validatePortBindings) and its
libnetwork portallocator. State is in memory only: the daemon holds ports again at start (reserve).
"""

from __future__ import annotations

import errno
import os
import random
import socket
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from daemon.errors import InvalidParameter, SystemError_

PROTOCOLS = ("tcp", "udp", "sctp")
PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_PORT_RANGE = (49153, 65535)  # moby's fallback when the kernel's range cannot be read
# Ports tried for one random (or ranged) allocation that another process turned out to hold; moby
# retries 10 times too (maxAllocateAttempts).
MAX_BIND_FAILURES = 10


@dataclass(frozen=True)
class PortBinding:
    """One host port asked for a container port (or, in the views, one in effect)."""

    container_port: int
    proto: str  # tcp udp sctp
    host_ip: str  # "" means all addresses ("0.0.0.0")
    host_port: int  # 0: one from the ephemeral range
    host_port_end: int = 0  # "8000-8010" for one container port: any free one inside


def _port_number(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 16), as moby's parsePortNumber: ValueError with its reason."""
    if text == "":
        raise ValueError("value is empty")
    if not text.isascii() or not text.isdigit():
        raise ValueError("invalid syntax")
    if int(text) > 65535:
        raise ValueError("value out of range")
    return int(text)


def parse_port_key(key: str) -> tuple[int, str]:
    """ "80", "80/TCP", "53/udp" -> (80, "tcp"), (53, "udp"): moby's ParsePort, which Docker's JSON
    decoder applies to the keys of ExposedPorts and PortBindings. ValueError with its words."""
    if key == "":
        raise ValueError("invalid port: value is empty")
    number, _, proto = key.partition("/")
    try:
        port = _port_number(number)
    except ValueError as e:
        raise ValueError(f"invalid port '{number}': {e}") from None
    return port, proto.lower() or "tcp"


def _port_range(text: str) -> tuple[int, int]:
    """moby's ParsePortRange ("8000-8010", "8080", "8080/tcp": the protocol is ignored)."""
    span = text.partition("/")[0]
    start_text, dash, end_text = span.partition("-")
    try:
        start = _port_number(start_text)
    except ValueError as e:
        raise ValueError(f"invalid start port '{start_text}': {e}") from None
    if not dash or start_text == end_text:
        return start, start
    try:
        end = _port_number(end_text)
    except ValueError as e:
        raise ValueError(f"invalid end port '{end_text}': {e}") from None
    if end < start:
        raise ValueError(f"invalid port range: {text}")
    return start, end


def parse_exposed_ports(raw: dict[str, Any] | None) -> list[tuple[int, str]]:
    """Config.ExposedPorts {"80/tcp": {}, "53/udp": {}} -> [(80, "tcp"), (53, "udp")], in order, once each.

    A range key ("8000-8002/udp", which some image builders write) is expanded; protocols are not
    judged here (Docker lists what it cannot publish), publish_all skips them.
    """
    out: list[tuple[int, str]] = []
    for key in raw or {}:
        number, _, proto = key.partition("/")
        try:
            if "-" in number:
                start, end = _port_range(number)
                found = [(p, proto.lower() or "tcp") for p in range(start, end + 1)]
            else:
                found = [parse_port_key(key)]
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None
        out += [p for p in found if p not in out]
    return out


def _host_ip(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidParameter("invalid JSON: HostIp must be a string")
    try:
        return str(ip_address(value))
    except ValueError:
        raise InvalidParameter(f'invalid JSON: ParseAddr("{value}"): unable to parse IP') from None


def parse_port_bindings(raw: dict[str, Any] | None) -> list[PortBinding]:
    """HostConfig.PortBindings {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]} as the docker
    CLI sends them (one key per container port; HostPort "" or "0": a random port, "8000-8010": any
    free one of those). Checked with Docker's words; HostIp must be an IPv4 or IPv6 address or ""."""
    out: list[PortBinding] = []
    for key, entries in (raw or {}).items():
        try:
            port, proto = parse_port_key(key)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None
        if port == 0:
            raise InvalidParameter(f'invalid port specification: "{port}/{proto}"')
        if proto not in PROTOCOLS:
            raise InvalidParameter(f"invalid proto: {proto}")
        if entries is not None and not isinstance(entries, list):
            raise InvalidParameter(f"invalid JSON: the bindings of {key} must be a list")
        for entry in entries or []:
            if not isinstance(entry, dict):
                raise InvalidParameter(f"invalid JSON: the bindings of {key} must be objects")
            host_ip = _host_ip(entry.get("HostIp"))
            host_port = entry.get("HostPort") or ""
            if not isinstance(host_port, str):
                raise InvalidParameter("invalid JSON: HostPort must be a string")
            start = end = 0
            if host_port:
                try:
                    start, end = _port_range(host_port)
                except ValueError:
                    start, end = -1, -1
                if start < 0 or (start == 0 and end != 0):  # "0-100": moby fails it at start
                    raise InvalidParameter(f'invalid port specification: "{host_port}"')
            out.append(PortBinding(port, proto, host_ip, start, end if end != start else 0))
    return out


def publish_all(exposed: list[tuple[int, str]], bindings: list[PortBinding]) -> list[PortBinding]:
    """-P: the bindings, plus a random host port on all addresses for every exposed port without one
    (ports of a protocol that cannot be published are left alone)."""
    bound = {(b.container_port, b.proto) for b in bindings}
    extra = [
        PortBinding(p, proto, "", 0) for p, proto in exposed if proto in PROTOCOLS and (p, proto) not in bound
    ]
    return [*bindings, *extra]


def _key(port: int, proto: str) -> str:
    return f"{port}/{proto}"


def ports_view(
    exposed: list[tuple[int, str]], in_effect: list[PortBinding]
) -> dict[str, list[dict[str, str]] | None]:
    """NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "443/tcp": None}.

    in_effect: the bindings held, with the host address and port they got (allocate's answer); an
    exposed port without any maps to None. Keys sorted as Go's encoding/json sorts a map's.
    """
    view: dict[str, list[dict[str, str]] | None] = {_key(p, proto): None for p, proto in exposed}
    for b in in_effect:
        entries = view.get(_key(b.container_port, b.proto)) or []
        entries.append({"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)})
        view[_key(b.container_port, b.proto)] = entries
    return dict(sorted(view.items()))


def kernel_port_range(path: Path = PORT_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, moby's default when it cannot be read."""
    try:
        low, high = (int(f) for f in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_PORT_RANGE
    return (low, high) if 0 < low <= high <= 65535 else DEFAULT_PORT_RANGE


def _addr_port(ip: str, port: int) -> str:
    """Go's netip.AddrPort text: 127.0.0.1:80, [::]:80."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _go_errno(err: OSError) -> str:
    """Go's text for an errno ("address already in use"): the C text, first letter lowered."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


class _BindError(SystemError_):
    """A failed bind, its errno kept: EADDRINUSE lets a random allocation try the next port."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = code


def _bind(proto: str, ip: str, port: int) -> socket.socket | None:
    """A socket holding ip:port for proto, so no other process can take it while a container runs.

    Bound, not listening (nothing is accepted on it; traffic goes to the container by NAT), without
    SO_REUSEADDR: on Linux two sockets with it may share a port while neither listens. None for
    sctp on a kernel without SCTP: the port is then only recorded, not held.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kinds = {
        "tcp": (socket.SOCK_STREAM, 0),
        "udp": (socket.SOCK_DGRAM, 0),
        "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP),
    }
    kind, number = kinds[proto]
    try:
        sock = socket.socket(family, kind, number)
    except OSError as e:
        if proto == "sctp" and e.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            return None
        raise SystemError_(
            f"failed to create socket for {_addr_port(ip, port)}/{proto}: {_go_errno(e)}"
        ) from None
    try:
        if family == socket.AF_INET6:
            # "::" holds the IPv6 side only; "0.0.0.0" is a binding of its own, as in Docker.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
    except OSError as e:
        sock.close()
        raise _BindError(
            e.errno, f"failed to bind host port {_addr_port(ip, port)}/{proto}: {_go_errno(e)}"
        ) from None
    return sock


HeldKey = tuple[str, str, int]  # (proto, host ip, host port)


def _held_ip(host_ip: str) -> str:
    """The address as a key and as shown: "" is "0.0.0.0", IPv6 in its short form."""
    try:
        return str(ip_address(host_ip or "0.0.0.0"))
    except ValueError:
        raise InvalidParameter(f'ParseAddr("{host_ip}"): unable to parse IP') from None


class PortAllocator:
    """Host ports handed to containers, each held by a bound socket until released.

    Keyed like moby's allocator by (proto, ip, port): 0.0.0.0:80 and 127.0.0.1:80 are different
    keys, and the kernel refuses the second bind with the bind words. Not thread-safe: the daemon
    calls it from its event loop.
    """

    def __init__(self, port_range: tuple[int, int] | None = None) -> None:
        self.port_range = port_range or kernel_port_range()
        self._held: dict[HeldKey, tuple[str, socket.socket | None]] = {}

    def allocate(self, owner: str, b: PortBinding) -> tuple[str, int]:
        """Hold a host port for b: exactly b.host_port, any free one of b.host_port..b.host_port_end
        (in order), or one of the ephemeral range tried in order from a random start. Returns the
        (host ip, host port) held, the ip "0.0.0.0" for all addresses."""
        if b.proto not in PROTOCOLS:
            raise InvalidParameter("unknown protocol")
        ip = _held_ip(b.host_ip)
        if b.host_port and b.host_port_end in (0, b.host_port):
            self.reserve(owner, b.proto, ip, b.host_port)
            return ip, b.host_port
        if b.host_port:
            low, high = b.host_port, b.host_port_end
            candidates = list(range(low, high + 1))
        else:
            low, high = self.port_range
            first = random.randint(low, high)
            candidates = [*range(first, high + 1), *range(low, first)]
        failures: list[_BindError] = []
        for port in candidates:
            if (b.proto, ip, port) in self._held:
                continue
            try:
                self._hold(owner, b.proto, ip, port)
            except _BindError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                failures.append(e)
                if len(failures) >= MAX_BIND_FAILURES:
                    raise failures[-1] from None
                continue
            return ip, port
        if failures:
            raise failures[-1]
        raise SystemError_("all ports are allocated")

    def reserve(self, owner: str, proto: str, host_ip: str, host_port: int) -> None:
        """Hold exactly this port (a binding with a fixed port, or again at daemon start for a running
        container); holding what owner already holds is a no-op."""
        ip = _held_ip(host_ip)
        held = self._held.get((proto, ip, host_port))
        if held is not None:
            if held[0] == owner:
                return
            raise SystemError_(f"Bind for {ip}:{host_port} failed: port is already allocated")
        self._hold(owner, proto, ip, host_port)

    def _hold(self, owner: str, proto: str, ip: str, port: int) -> None:
        self._held[(proto, ip, port)] = (owner, _bind(proto, ip, port))

    def release(self, owner: str) -> None:
        """Close and forget everything owner holds; an owner holding nothing is fine."""
        for key in [k for k, (o, _) in self._held.items() if o == owner]:
            sock = self._held.pop(key)[1]
            if sock is not None:
                sock.close()

    def held(self) -> dict[str, list[HeldKey]]:
        """owner -> [(proto, host ip, host port)], sorted."""
        out: dict[str, list[HeldKey]] = {}
        for key, (owner, _) in sorted(self._held.items()):
            out.setdefault(owner, []).append(key)
        return out
