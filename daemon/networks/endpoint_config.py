"""What a container asks of networks at create and connect: Docker's checks of NetworkMode, the endpoint
settings (aliases, static addresses, MAC), DNS options, extra hosts and links, and the endpoint record
they become in the container's NetworkSettings.Networks."""

import ipaddress
import re
from typing import Any

from daemon.containers.networking import DESIRED_MAC
from daemon.errors import InvalidParameter, NotImplementedYet

_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")
HOST_GATEWAY = "host-gateway"


def empty_endpoint() -> dict[str, Any]:
    """Docker's EndpointSettings with nothing filled in (a container that is not running)."""
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "MacAddress": "",
        "DriverOpts": None,
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


RUNTIME_FIELDS = ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address")


def clear_runtime_fields(ep: dict[str, Any]) -> None:
    """What a stopped container's endpoint forgets (Docker keeps the network, aliases and static IPs)."""
    for key in RUNTIME_FIELDS:
        ep[key] = 0 if key == "IPPrefixLen" else ""
    ep["GlobalIPv6PrefixLen"] = 0
    ep["DNSNames"] = None
    ep["MacAddress"] = ep.get(DESIRED_MAC) or ""


def endpoint_from_request(raw: Any, network_id: str, user_defined: bool, network_name: str) -> dict[str, Any]:
    """An EndpointConfig of a create body or a connect body, checked, as the endpoint record to keep."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid endpoint settings: expected an object")
    ep = empty_endpoint()
    ep["NetworkID"] = network_id
    ipam = raw.get("IPAMConfig") or {}
    if not isinstance(ipam, dict):
        raise InvalidParameter("invalid IPAMConfig: expected an object")
    wanted = {k: str(ipam[k]) for k in ("IPv4Address", "IPv6Address") if ipam.get(k)}
    for key, value in wanted.items():
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise InvalidParameter(f"invalid IP address: {value}") from None
        if (addr.version == 4) != (key == "IPv4Address"):
            raise InvalidParameter(f"invalid {key}: {value}")
    if ipam.get("LinkLocalIPs"):
        raise NotImplementedYet("link-local addresses (--link-local-ip) are not implemented yet")
    aliases = [str(a) for a in (raw.get("Aliases") or [])]
    if not user_defined:
        if wanted:
            raise InvalidParameter("user specified IP address is supported on user defined networks only")
        if aliases:
            raise InvalidParameter(
                "network-scoped alias is supported only for containers in user defined networks"
            )
    mac = str(raw.get("MacAddress") or "")
    if mac and not _MAC.match(mac):
        raise InvalidParameter(f"invalid MAC address: {mac}")
    if raw.get("DriverOpts"):
        raise NotImplementedYet("endpoint driver options are not implemented yet")
    links = [str(x) for x in (raw.get("Links") or [])]
    ep["IPAMConfig"] = wanted or None
    ep["Aliases"] = aliases or None
    ep["Links"] = links or None
    ep["MacAddress"] = mac
    if mac:
        ep[DESIRED_MAC] = mac
    return ep


def check_dns(hc: dict[str, Any]) -> None:
    for server in hc.get("Dns") or []:
        try:
            ipaddress.ip_address(str(server))
        except ValueError:
            raise InvalidParameter(f"{server} is not an ip address") from None
    for option in hc.get("DnsOptions") or []:
        if not str(option).strip():
            raise InvalidParameter("invalid DNS option: empty")


def parse_extra_hosts(values: list[Any] | None) -> list[tuple[str, str]]:
    """--add-host name:ip (and name=ip) -> [(name, ip or "host-gateway")], with Docker's words."""
    out = []
    for value in values or []:
        text = str(value)
        sep = "=" if "=" in text else ":"
        name, found, ip = text.partition(sep)
        if not found or not name or not _HOSTNAME.match(name):
            raise InvalidParameter(f"invalid extra host: {text}")
        ip = ip.strip("[]")
        if ip != HOST_GATEWAY:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None
        out.append((name, ip))
    return out


def parse_links(values: list[Any] | None) -> list[tuple[str, str]]:
    """--link name[:alias] as the API carries it ("name:alias" or "/name:/self/alias") -> [(name, alias)]."""
    out = []
    for value in values or []:
        name, _, alias = str(value).partition(":")
        name = name.lstrip("/")
        alias = alias.rsplit("/", 1)[-1] if alias else name
        if not name:
            raise InvalidParameter(f"invalid link: {value}")
        out.append((name, alias))
    return out


def check_container_mode(hc: dict[str, Any], config: dict[str, Any]) -> None:
    """`--network container:X` shares X's network: the options that would change it are refused, in
    Docker's words (moby runconfig/hostconfig_unix.go)."""
    if config.get("Hostname"):
        raise InvalidParameter("conflicting options: hostname and the network mode")
    if hc.get("Links"):
        raise InvalidParameter(
            "conflicting options: container type network can't be used with links. "
            "This would result in undefined behavior"
        )
    if hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions"):
        raise InvalidParameter("conflicting options: dns and the network mode")
    if hc.get("ExtraHosts"):
        raise InvalidParameter("conflicting options: custom host-to-IP mapping and the network mode")
    if hc.get("PortBindings") or hc.get("PublishAllPorts"):
        raise InvalidParameter("conflicting options: port publishing and the container type network mode")
    if config.get("ExposedPorts"):
        raise InvalidParameter("conflicting options: port exposing and the container type network mode")
    if config.get("MacAddress"):
        raise InvalidParameter("conflicting options: mac-address and the network mode")
