"""`pyd network ...`: create, ls, inspect, rm, connect, disconnect, prune (docker 28's requests
and output)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from . import format as fmt
from . import netopts, opts, template
from .cmd_query import filters_param
from .common import CLIError, path, print_inspected
from .http import APIError, Client
from .ports import natural_key

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}
PRUNE_WARNING = (
    "WARNING! This will remove all custom networks not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def go_time_string(text: str) -> str:
    """Go's time.Time.String() of an API timestamp, kept in its own zone like docker shows it:
    `2024-01-02 03:04:05.5 +0000 UTC`, `... +0200 +0200` for a zone without a name."""
    m = _RFC3339.fullmatch(text)
    if not m:
        return text
    date, clock, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    stamp = f"{date} {clock}" + (f".{frac}" if frac else "")
    if zone == "Z":
        return f"{stamp} +0000 UTC"
    offset = zone.replace(":", "")
    return f"{stamp} {offset} {offset}"


def _go_bool(value: Any) -> str:
    return "true" if value else "false"


def network_row(n: dict[str, Any], trunc: bool = True) -> dict[str, str]:
    """The fields `network ls --format` can use, formatted like docker's NetworkContext."""
    ident = n.get("Id") or ""
    return {
        "ID": fmt.truncate_id(ident) if trunc else ident,
        "Name": n.get("Name") or "",
        "Driver": n.get("Driver") or "",
        "Scope": n.get("Scope") or "",
        "IPv4": _go_bool(n.get("EnableIPv4")),
        "IPv6": _go_bool(n.get("EnableIPv6")),
        "Internal": _go_bool(n.get("Internal")),
        "Labels": ",".join(f"{k}={v}" for k, v in (n.get("Labels") or {}).items()),
        "CreatedAt": go_time_string(n.get("Created") or "0001-01-01T00:00:00Z"),
    }


def create_body(a: argparse.Namespace) -> dict[str, Any]:
    """The `POST /networks/create` body; EnableIPv6 only when --ipv6 is given, as docker sends it."""
    try:
        aux = opts.parse_key_values(a.aux_address)
        config = netopts.ipam_config(a.subnet, a.ip_range, a.gateway, aux)
    except ValueError as e:
        raise CLIError(str(e)) from e
    body: dict[str, Any] = {
        "Name": a.name,
        "Driver": a.driver,
        "Scope": "",
        "IPAM": {"Driver": a.ipam_driver, "Options": opts.parse_key_values(a.ipam_opt), "Config": config},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": opts.parse_key_values(a.opt),
        "Labels": opts.parse_key_values(a.label),
    }
    if a.ipv6:
        body["EnableIPv6"] = True
    return body


def cmd_network_create(client: Client, a: argparse.Namespace) -> int:
    created = client.post("/networks/create", None, create_body(a))
    print(created["Id"])
    return 0


def cmd_network_ls(client: Client, a: argparse.Namespace) -> int:
    networks = client.get("/networks", {"filters": filters_param(a.filter)})
    networks.sort(key=lambda n: natural_key(n.get("Name") or ""))
    rows = [network_row(n, not a.no_trunc) for n in networks]
    form = "{{.ID}}" if a.quiet else a.format or NETWORK_TABLE
    sys.stdout.write(fmt.render(form, rows, NETWORK_HEADERS))
    return 0


def cmd_network_inspect(client: Client, a: argparse.Namespace) -> int:
    tmpl = template.parse(a.format) if a.format else None
    query = {"verbose": "true"} if a.verbose else None
    results: list[Any] = []
    errors: list[str] = []
    for name in a.networks:
        try:
            results.append(client.get(path("/networks/{}", name), query))
        except APIError as e:
            errors.append(str(e))
    return print_inspected(results, errors, tmpl)


def cmd_network_rm(client: Client, a: argparse.Namespace) -> int:
    """Names on stdout, errors on stderr as they happen, then docker's closing `exit status 1`."""
    failed = False
    for name in a.networks:
        try:
            client.delete(path("/networks/{}", name))
        except APIError as e:
            if a.force and e.status == 404:
                continue
            print(e, file=sys.stderr, flush=True)
            failed = True
            continue
        print(name, flush=True)
    if failed:
        print("exit status 1", file=sys.stderr)
    return 1 if failed else 0


def cmd_network_connect(client: Client, a: argparse.Namespace) -> int:
    try:
        links = netopts.check_links(a.link)
    except netopts.FlagError as e:
        raise CLIError(f"{e}\nSee 'pyd network connect --help'.", 125) from e
    endpoint = netopts.endpoint_settings(links=links)
    # docker's connect always sends IPAMConfig, an Aliases list and a DriverOpts map
    ipam = {"IPv4Address": a.ip, "IPv6Address": a.ip6}
    endpoint["IPAMConfig"] = {k: v for k, v in ipam.items() if v}
    endpoint["Aliases"] = list(a.alias)
    endpoint["DriverOpts"] = opts.parse_key_values(a.driver_opt)
    body = {"Container": a.container, "EndpointConfig": endpoint}
    client.post(path("/networks/{}/connect", a.network), None, body)
    return 0


def cmd_network_disconnect(client: Client, a: argparse.Namespace) -> int:
    body = {"Container": a.container, "Force": a.force}
    client.post(path("/networks/{}/disconnect", a.network), None, body)
    return 0


def confirm(prompt: str) -> bool:
    """docker's prompt: only `y` (any case, spaces trimmed) is yes; end of input is no."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() == "y"


def cmd_network_prune(client: Client, a: argparse.Namespace) -> int:
    filters = filters_param(a.filter)
    if not a.force and not confirm(PRUNE_WARNING):
        return 0
    report = client.post("/networks/prune", {"filters": filters})
    deleted = (report or {}).get("NetworksDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted) + "\n")
    return 0
