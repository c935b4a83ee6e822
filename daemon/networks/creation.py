"""`docker network create`: a create body checked and turned into a network record, and the predefined
networks (bridge, host, none) every daemon has."""

import ipaddress
import re
import secrets
from typing import Any

from daemon.errors import Conflict, Forbidden, InvalidParameter, NotFound, NotImplementedYet
from daemon.gojson import check_bool, check_list, check_map, check_str, type_error, value_error
from daemon.networks.ipam import SubnetChooser, check_ipam_config, check_no_overlap
from daemon.networks.store import (
    BRIDGE_NAME,
    DEFAULT_BRIDGE,
    HOST_BINDING,
    ICC,
    MASQUERADE,
    MTU,
    NetworkStore,
)
from daemon.timefmt import now_rfc3339

Route = ipaddress.IPv4Network | ipaddress.IPv6Network

OPTIONS = (BRIDGE_NAME, ICC, MASQUERADE, MTU, HOST_BINDING)  # the bridge driver options we honour
DRIVERS_WE_LACK = ("overlay", "macvlan", "ipvlan")
_IFNAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,15}$")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def _record(
    name: str, driver: str, ipam_config: list[dict[str, Any]], options: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": secrets.token_hex(32),
        "Created": now_rfc3339(),
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": bool(extra.get("EnableIPv6")),
        "IPAM": {"Driver": "default", "Options": extra.get("IPAMOptions"), "Config": ipam_config},
        "Internal": bool(extra.get("Internal")),
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Options": options,
        "Labels": extra.get("Labels") or {},
    }


def check_types(body: Any) -> None:
    """The create body's JSON types, refused in Go's words as dockerd's decoder refuses them."""
    if not isinstance(body, dict):
        raise value_error(body, "network.CreateRequest")
    at = ("CreateRequest", "")
    for key in ("Name", "Driver", "Scope"):
        check_str(body, key, at=at)
    for key in ("CheckDuplicate", "Internal", "Attachable", "Ingress", "ConfigOnly", "EnableIPv6"):
        check_bool(body, key, at=at)
    for key in ("Labels", "Options"):
        _string_map(body, key, at)
    check_str(
        check_map(body, "ConfigFrom", "network.ConfigReference", at=at),
        "Network",
        at=("ConfigReference", "ConfigFrom."),
    )
    ipam = check_map(body, "IPAM", "network.IPAM", at=at)
    in_ipam = ("IPAM", "IPAM.")
    check_str(ipam, "Driver", at=in_ipam)
    _string_map(ipam, "Options", in_ipam)
    for entry in check_list(ipam, "Config", "[]network.IPAMConfig", at=in_ipam):
        if not isinstance(entry, dict):
            raise type_error(entry, "IPAM", "IPAM.Config", "network.IPAMConfig")
        in_config = ("IPAMConfig", "IPAM.Config.")
        for key in ("Subnet", "IPRange", "Gateway"):
            check_str(entry, key, at=in_config)
        _string_map(entry, "AuxiliaryAddresses", in_config)


def _string_map(body: dict[str, Any], key: str, at: tuple[str, str]) -> None:
    for value in check_map(body, key, "map[string]string", at=at).values():
        if not isinstance(value, str):
            raise type_error(value, at[0], at[1] + key, "string")


def network_record(
    body: Any, store: NetworkStore, chooser: SubnetChooser, routes: list[Route]
) -> dict[str, Any]:
    check_types(body)
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidParameter("network name is required")
    if not _NAME.match(name):
        raise InvalidParameter(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if store.by_name(name) is not None:
        raise Conflict(f"network with name {name} already exists")
    driver = body.get("Driver") or "bridge"
    if driver in ("host", "null"):
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver in DRIVERS_WE_LACK:
        raise NotImplementedYet(
            f"network driver {driver} is not supported by pydockerd: only bridge networks"
        )
    if driver != "bridge":
        raise NotFound(f'plugin "{driver}" not found')
    for key in ("Attachable", "Ingress", "ConfigOnly"):
        if body.get(key):
            raise NotImplementedYet(f"{key} networks are not supported by pydockerd (they belong to swarm)")
    if (body.get("ConfigFrom") or {}).get("Network"):
        raise NotImplementedYet("networks made from a config-only network are not supported by pydockerd")
    if body.get("Scope") not in (None, "", "local"):
        raise NotImplementedYet(f"scope {body['Scope']} is not supported: networks of pydockerd are local")
    options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise NotImplementedYet(f"network option {unknown[0]} is not supported by pydockerd")
    bridge = options.get(BRIDGE_NAME, "")
    if bridge:
        if not _IFNAME.match(bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}")
        if any(n.bridge == bridge for n in store):
            raise Conflict(f"bridge name {bridge} is already in use by another network")
    if MTU in options and not options[MTU].isdigit():
        raise InvalidParameter(f"invalid MTU {options[MTU]!r}")
    ipam = body.get("IPAM") or {}
    if ipam.get("Driver") not in (None, "", "default"):
        raise NotImplementedYet(f"IPAM driver {ipam['Driver']} is not supported by pydockerd: only default")
    if ipam.get("Options"):
        raise NotImplementedYet("IPAM driver options are not supported by pydockerd")
    configs = check_ipam_config(list(ipam.get("Config") or []))
    in_use = [cfg_subnet for n in store for cfg_subnet in _subnets(n.ipam_config)]
    check_no_overlap(configs, in_use)
    if not any(cfg.subnet.version == 4 for cfg in configs):
        subnet = chooser.choose(in_use, routes)
        configs = check_ipam_config([{"Subnet": str(subnet)}]) + configs
    ipv6 = bool(body.get("EnableIPv6"))
    if ipv6 and not any(cfg.subnet.version == 6 for cfg in configs):
        raise InvalidParameter(
            "could not find an available, non-overlapping IPv6 address pool among the defaults "
            "to assign to the network (give one with --subnet)"
        )
    if not ipv6 and any(cfg.subnet.version == 6 for cfg in configs):
        raise InvalidParameter("an IPv6 subnet needs EnableIPv6 (docker network create --ipv6)")
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise InvalidParameter("invalid Labels: expected an object")
    return _record(
        name,
        "bridge",
        [cfg.as_json() for cfg in configs],
        options,
        EnableIPv6=ipv6,
        Internal=bool(body.get("Internal")),
        Labels={str(k): str(v) for k, v in labels.items()},
        IPAMOptions={},
    )


def _subnets(entries: list[dict[str, Any]]) -> list[Route]:
    out: list[Route] = []
    for entry in entries:
        if entry.get("Subnet"):
            out.append(ipaddress.ip_network(entry["Subnet"], strict=False))
    return out


def default_networks(
    store: NetworkStore, chooser: SubnetChooser, routes: list[Route], bridge: str, bip: str, mtu: int
) -> list[dict[str, Any]]:
    """The predefined networks missing from the store, and the default bridge again when --bip or
    --bridge changed it."""
    out = []
    for name, driver in (("host", "host"), ("none", "null")):
        if store.by_name(name) is None:
            out.append(_record(name, driver, [], {}))
    if bridge == "none":
        return out
    current = store.by_name("bridge")
    if bip:
        iface = ipaddress.ip_interface(bip)
        config = [{"Subnet": str(iface.network), "Gateway": str(iface.ip)}]
    elif current is not None and current.ipam_config:
        config = current.ipam_config
    else:
        mine = current.ipam_config if current else []
        in_use = [s for n in store if n.name != "bridge" for s in _subnets(n.ipam_config) if s.version == 4]
        ours = [ipaddress.ip_network(e["Subnet"]) for e in mine]
        subnet = chooser.choose(in_use, [r for r in routes if r not in ours])
        config = [{"Subnet": str(subnet), "Gateway": str(next(subnet.hosts()))}]
    options = {
        DEFAULT_BRIDGE: "true",
        ICC: "true",
        MASQUERADE: "true",
        HOST_BINDING: "0.0.0.0",
        BRIDGE_NAME: bridge,
        MTU: str(mtu),
    }
    if current is None:
        out.append(_record("bridge", "bridge", config, options, IPAMOptions=None))
    elif current.ipam_config != config or current.options != options:
        out.append(
            {**current.record, "IPAM": {**current.record["IPAM"], "Config": config}, "Options": options}
        )
    return out
