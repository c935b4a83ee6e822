"""Port specifications the way the docker CLI reads and shows them (-p, --expose, `pyd port`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")

Exposed = dict[str, dict[str, Any]]
Bindings = dict[str, list[dict[str, str]]]


def go_uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16), failing with Go's words (docker shows them to the user)."""
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    value = int(text)
    if value > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def port_range(text: str) -> tuple[int, int]:
    """`80` or `8000-8002` -> (first, last), like go-connections' nat.ParsePortRange."""
    if not text:
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        port = go_uint16(text)
        return port, port
    parts = text.split("-")
    first, last = go_uint16(parts[0]), go_uint16(parts[1])
    if last < first:
        raise ValueError(f"invalid range specified for port: {text}")
    return first, last


def split_proto_port(raw: str) -> tuple[str, str]:
    """`80/udp` -> ("udp", "80"); no protocol means tcp; an empty port gives ("", "")."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def is_ip(text: str) -> bool:
    """Go's net.ParseIP: IPv4 or IPv6, no zone (`%eth0`), no leading zeros."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _split_spec(raw: str) -> tuple[str, str, str]:
    """`ip:host:container` with an IPv6 ip holding colons of its own: everything before the
    last two fields is the address."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_publish(specs: Iterable[str]) -> tuple[Exposed, Bindings]:
    """-p `[ip:][hostPort:]containerPort[/proto]` -> (ExposedPorts, PortBindings), with docker's
    errors. A host range for one container port stays a range ("8000-8002"): the daemon picks
    a free port in it."""
    exposed: Exposed = {}
    bindings: Bindings = {}
    for raw in specs:
        ip, host, container = _split_spec(raw)
        proto, container = split_proto_port(container)
        if ip.startswith("["):
            if not ip.endswith("]"):  # Go's net.SplitHostPort(ip + ":") failing
                raise ValueError(f"invalid IP address {ip}: address {ip}:: missing ']' in address")
            ip = ip[1:-1]
        if ip and not is_ip(ip):
            raise ValueError(f"invalid IP address: {ip}")
        if not container:
            raise ValueError(f"no port specified: {raw}<empty>")
        try:
            first, last = port_range(container)
        except ValueError:
            raise ValueError(f"invalid containerPort: {container}") from None
        host_first = host_last = 0
        if host:
            try:
                host_first, host_last = port_range(host)
            except ValueError:
                raise ValueError(f"invalid hostPort: {host}") from None
            if last - first != host_last - host_first and last != first:
                raise ValueError(
                    f"invalid ranges specified for container and host Ports: {container} and {host}"
                )
        if proto.lower() not in PROTOCOLS:
            raise ValueError(f"invalid proto: {proto}")
        for i in range(last - first + 1):
            host_port = str(host_first + i) if host else ""
            if first == last and host_first != host_last:
                host_port = f"{host_port}-{host_last}"
            key = f"{first + i}/{proto.lower()}"
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host_port})
    return exposed, bindings


def parse_expose(specs: Iterable[str], exposed: Exposed) -> None:
    """--expose `port[/proto]` or `first-last[/proto]`, added to `exposed` (the protocol is
    taken as typed, as docker does)."""
    for raw in specs:
        if ":" in raw:
            raise ValueError(f"invalid port format for --expose: {raw}")
        proto, port = split_proto_port(raw)
        try:
            first, last = port_range(port)
        except ValueError as e:
            raise ValueError(f"invalid range format for --expose: {raw}, error: {e}") from None
        for number in range(first, last + 1):
            exposed.setdefault(f"{number}/{proto}", {})


def join_host_port(host: str, port: str) -> str:
    """Go's net.JoinHostPort: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """A sort key in the spirit of sortorder.NaturalLess: digit runs compare as numbers and
    sort before other characters, which compare one by one."""
    key: list[tuple[int, int, str]] = []
    for run in re.findall(r"[0-9]+|[^0-9]", text):
        if run.isdigit():
            digits = run.lstrip("0")
            key.append((0, len(digits), digits))
        else:
            key.append((1, ord(run), ""))
    return key


def port_lines(ports: Mapping[str, Any], private: str | None, container: str) -> list[str]:
    """`pyd port` output from inspect's NetworkSettings.Ports: every mapping as
    `80/tcp -> 0.0.0.0:32768`, or the host addresses of one private port."""
    if private is None:
        lines = [
            f"{key} -> {join_host_port(b.get('HostIp') or '', b.get('HostPort') or '')}"
            for key, frontends in ports.items()
            for b in frontends or []
        ]
    else:
        port, _, proto = private.partition("/")
        try:
            go_uint16(port)
        except ValueError as e:
            raise ValueError(f"Error: invalid port ({port}): {e}") from None
        frontends = ports.get(f"{port}/{proto or 'tcp'}") or []
        if not frontends:
            raise ValueError(f"Error: No public port '{private}' published for {container}")
        lines = [join_host_port(b.get("HostIp") or "", b.get("HostPort") or "") for b in frontends]
    return sorted(lines, key=natural_key)
