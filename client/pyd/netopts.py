"""Networking option values read the docker CLI way: --dns, --add-host, --link, endpoint
settings for `run --network`/`network connect`, and the IPAM config of `network create`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .ports import is_ip

HOST_GATEWAY = "host-gateway"
# Networks docker treats as built-in modes, not user-defined networks.
_BUILTIN_MODES = ("default", "bridge", "host", "none")
# A domain: labels of letters, digits and inner hyphens; the last one starts with a letter.
_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"({_LABEL}\.)*[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?")
_MAC_SEPARATED = re.compile(r"[0-9a-fA-F]{2}(?P<sep>[:-])[0-9a-fA-F]{2}(?:(?P=sep)[0-9a-fA-F]{2})*")
_MAC_DOTTED = re.compile(r"[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4})*")


class FlagError(ValueError):
    """A bad value for one flag, worded like docker's pflag errors."""

    def __init__(self, value: str, flag: str, reason: str) -> None:
        super().__init__(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def is_user_defined(network: str) -> bool:
    return network not in _BUILTIN_MODES and not network.startswith("container:")


def canonical_ip(text: str) -> str:
    """Go's net.IP.String(): `0:0::1` -> `::1`, IPv4-mapped addresses as IPv4."""
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parse_dns(values: Iterable[str]) -> list[str]:
    servers = []
    for value in values:
        if not is_ip(value):
            raise FlagError(value, "--dns", f"IP address is not correctly formatted: {value}")
        servers.append(canonical_ip(value))
    return servers


def loopback_dns(servers: Iterable[str]) -> str | None:
    """The first loopback server, which docker warns about: in the container it is the container."""
    return next((s for s in servers if ipaddress.ip_address(s).is_loopback), None)


def parse_dns_search(values: Iterable[str]) -> list[str]:
    domains = []
    for value in values:
        if value == ".":  # "no search domains"
            domains.append(value)
            continue
        domain = value.removesuffix(".")
        if not _DOMAIN.fullmatch(domain) or len(domain) > 255:
            raise FlagError(value, "--dns-search", f"{value} is not a valid domain")
        domains.append(domain)
    return domains


def parse_extra_hosts(values: Iterable[str]) -> list[str]:
    """`host:ip`, `host=ip`, `host:[v6]` or `host:host-gateway` -> `host:ip` as the API wants it."""
    hosts = []
    for value in values:
        name, sep, addr = value.partition("=")
        if not sep:
            name, sep, addr = value.partition(":")
        if not sep or not name or ":" in name:
            raise FlagError(value, "--add-host", f'bad format for add-host: "{value}"')
        if addr != HOST_GATEWAY:
            if len(addr) > 2 and addr.startswith("[") and addr.endswith("]"):
                addr = addr[1:-1]
            if not is_ip(addr):
                raise FlagError(value, "--add-host", f'invalid IP address in add-host: "{addr}"')
        hosts.append(f"{name}:{addr}")
    return hosts


def check_links(values: Iterable[str]) -> list[str]:
    links = list(values)
    for link in links:
        if link.count(":") > 1:
            raise FlagError(link, "--link", f"bad format for links: {link}")
    return links


def is_mac(text: str) -> bool:
    """Go's net.ParseMAC: 6, 8 or 20 bytes as `aa:bb:..`, `aa-bb-..` or `aabb.ccdd...`."""
    if _MAC_SEPARATED.fullmatch(text):
        return (len(text) + 1) // 3 in (6, 8, 20)
    if _MAC_DOTTED.fullmatch(text):
        return (len(text) + 1) // 5 * 2 in (6, 8, 20)
    return False


def endpoint_settings(
    *,
    aliases: Sequence[str] = (),
    links: Sequence[str] = (),
    ipv4: str = "",
    ipv6: str = "",
    mac: str = "",
    driver_opts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A whole EndpointSettings object, every field present, as the docker CLI serializes it."""
    if mac and not is_mac(mac):
        raise ValueError(f"{mac} is not a valid mac address")
    ipam: dict[str, str] | None = None
    if ipv4 or ipv6:
        ipam = {}
        if ipv4:
            ipam["IPv4Address"] = ipv4
        if ipv6:
            ipam["IPv6Address"] = ipv6
    return {
        "IPAMConfig": ipam,
        "Links": list(links) or None,
        "Aliases": list(aliases) or None,
        "MacAddress": mac,
        "DriverOpts": driver_opts,
        "GwPriority": 0,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


_EMPTY_ENDPOINT = endpoint_settings()


def run_endpoints(
    networks: Sequence[str], aliases: Sequence[str], links: Sequence[str], ipv4: str, ipv6: str, mac: str
) -> dict[str, Any]:
    """NetworkingConfig.EndpointsConfig of run/create (docker's parseNetworkOpts): without
    --network a "default" endpoint carries the options; otherwise the first network does, and a
    single network with nothing to say about its endpoint is left out."""
    targets = list(networks) or ["default"]
    endpoints: dict[str, Any] = {}
    for i, target in enumerate(targets):
        settings: dict[str, Any] = {}
        if i == 0:
            user_defined = is_user_defined(target)
            if aliases and not user_defined:
                raise ValueError("network-scoped aliases are only supported for user-defined networks")
            settings = {
                "aliases": aliases,
                "links": links if user_defined else (),  # on the default bridge a link is a legacy link
                "ipv4": ipv4,
                "ipv6": ipv6,
                "mac": mac,
            }
        endpoint = endpoint_settings(**settings)
        if target in endpoints:
            raise ValueError(f'network "{target}" is specified multiple times')
        if networks and len(networks) == 1 and endpoint == _EMPTY_ENDPOINT:
            continue
        endpoints[target] = endpoint
    kinds = {is_user_defined(n) for n in networks}
    if len(kinds) > 1:
        raise ValueError(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
        )
    return endpoints


def _contains(subnet: str, data: str) -> bool:
    """Whether `data` (an address or a CIDR's address) lies in `subnet` (Go's subnetMatches)."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    text = data.partition("/")[0] if "/" in data else data
    try:
        return ipaddress.ip_address(text) in net
    except ValueError:
        return False


def ipam_config(
    subnets: Sequence[str], ip_ranges: Sequence[str], gateways: Sequence[str], aux: dict[str, str]
) -> list[dict[str, Any]]:
    """IPAM.Config of `network create`: each --ip-range, --gateway and --aux-address goes to the
    --subnet containing it (docker's consolidation and its errors)."""
    if len(subnets) < len(ip_ranges) or len(subnets) < len(gateways):
        raise ValueError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for subnet in subnets:
        for other in configs:
            if _contains(subnet, other) or _contains(other, subnet):
                raise ValueError("multiple overlapping subnet configuration is not supported")
        configs[subnet] = {"Subnet": subnet}
    for key, values, what in (("IPRange", ip_ranges, "range"), ("Gateway", gateways, "gateway")):
        for value in values:
            matched = False
            for subnet in subnets:
                if not _contains(subnet, value):
                    continue
                if configs[subnet].get(key):
                    plural = "ranges" if what == "range" else "gateways"
                    where = "on the same subnet" if what == "range" else "for the same subnet"
                    old = configs[subnet][key]
                    raise ValueError(
                        f"cannot configure multiple {plural} ({value}, {old}) {where} ({subnet})"
                    )
                configs[subnet][key] = value
                matched = True
            if not matched:
                raise ValueError(f"no matching subnet for {what} {value}")
    for name, addr in aux.items():
        matched = False
        for subnet in subnets:
            if _contains(subnet, addr):
                configs[subnet].setdefault("AuxiliaryAddresses", {})[name] = addr
                matched = True
        if not matched:
            raise ValueError(f"no matching subnet for aux-address {addr}")
    return list(configs.values())
