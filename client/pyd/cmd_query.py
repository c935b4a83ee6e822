"""Read-only container commands: ps, logs, top, port, inspect."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from . import format as fmt
from . import opts, ports, template
from .common import CLIError, path, print_inspected
from .http import APIError, Client
from .streams import copy_output

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
}


def filters_param(values: list[str]) -> str | None:
    """`--filter k=v` (repeatable) -> the API's JSON `{"k": {"v": true}}`."""
    filters: dict[str, dict[str, bool]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise CLIError(f"bad format of filter (expected name=value): {value}")
        filters.setdefault(key.strip(), {})[val.strip()] = True
    # sorted keys, as Go marshals a map
    return json.dumps(filters, separators=(",", ":"), sort_keys=True) if filters else None


def _image_column(c: dict[str, Any], trunc: bool) -> str:
    image = c.get("Image") or ""
    if not image:
        return "<no image>"
    if trunc:
        if fmt.truncate_id(c.get("ImageID") or "") == fmt.truncate_id(image):
            return fmt.truncate_id(image)
        name, tag, digest = opts.split_reference(image)
        if digest:  # show the tag rather than a long digest
            return name + (f":{tag}" if tag else "")
    return image


def _names_column(names: list[str], trunc: bool) -> str:
    names = [n.removeprefix("/") for n in names]
    if trunc:
        # Legacy link names look like `other/alias`; show the container's own name only.
        own = [n for n in names if "/" not in n]
        names = own[:1] or names
    return ",".join(names)


def container_row(c: dict[str, Any], trunc: bool = True, now: float | None = None) -> dict[str, str]:
    """The fields `--format` can use, formatted like docker's ContainerContext."""
    created = c.get("Created") or 0
    command = c.get("Command") or ""
    size = ""
    if c.get("SizeRw") is not None or c.get("SizeRootFs") is not None:
        size = fmt.human_size(c.get("SizeRw") or 0)
        if c.get("SizeRootFs"):
            size += f" (virtual {fmt.human_size(c['SizeRootFs'])})"
    networks = ((c.get("NetworkSettings") or {}).get("Networks")) or {}
    mounts = [m.get("Name") or fmt.ellipsis(m.get("Source") or "", 15) for m in c.get("Mounts") or []]
    return {
        "ID": fmt.truncate_id(c.get("Id") or "") if trunc else c.get("Id") or "",
        "Image": _image_column(c, trunc),
        "Command": fmt.go_quote(fmt.ellipsis(command, 20) if trunc else command),
        "CreatedAt": fmt.go_time(created),
        "RunningFor": fmt.since(created, now),
        "Ports": fmt.display_ports(c.get("Ports") or []),
        "State": c.get("State") or "",
        "Status": c.get("Status") or "",
        "Size": size,
        "Names": _names_column(c.get("Names") or [], trunc),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()),
        "Mounts": ",".join(mounts),
        "Networks": ",".join(networks),
    }


def cmd_ps(client: Client, a: argparse.Namespace) -> int:
    limit = 1 if a.latest else a.last
    query = {
        "all": a.all or limit > 0,  # -n/-l include stopped containers, as docker documents
        "limit": limit if limit > 0 else None,
        "size": a.size,
        "filters": filters_param(a.filter),
    }
    containers = client.get("/containers/json", query)
    default = PS_TABLE + "\t{{.Size}}" if a.size else PS_TABLE
    form = "{{.ID}}" if a.quiet else a.format or default
    now = time.time()
    rows = [container_row(c, not a.no_trunc, now) for c in containers]
    sys.stdout.write(fmt.render(form, rows, PS_HEADERS))
    return 0


def cmd_logs(client: Client, a: argparse.Namespace) -> int:
    info = client.get(path("/containers/{}/json", a.container))
    tty = bool((info.get("Config") or {}).get("Tty"))
    try:
        since = fmt.api_timestamp(a.since) if a.since else None
        until = fmt.api_timestamp(a.until) if a.until else None
    except ValueError as e:
        raise CLIError(str(e)) from e
    query = {
        "stdout": True,
        "stderr": True,
        "since": since,
        "until": until,
        "timestamps": a.timestamps,
        "follow": a.follow,
        "tail": a.tail,
    }
    with client.request("GET", f"/containers/{info['Id']}/logs", query) as resp:
        copy_output(resp.read1, tty, sys.stdout.buffer, sys.stderr.buffer)
    return 0


def cmd_top(client: Client, a: argparse.Namespace) -> int:
    query = {"ps_args": " ".join(a.ps_args)} if a.ps_args else None
    result = client.get(path("/containers/{}/top", a.container), query)
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(proc) for proc in result.get("Processes") or []]
    sys.stdout.write(fmt.tabwrite(lines, minwidth=20, padding=3))
    return 0


def cmd_port(client: Client, a: argparse.Namespace) -> int:
    info = client.get(path("/containers/{}/json", a.container))
    mapped = (info.get("NetworkSettings") or {}).get("Ports") or {}
    try:
        lines = ports.port_lines(mapped, a.private_port, a.container)
    except ValueError as e:
        raise CLIError(str(e)) from e
    for line in lines:
        print(line)
    return 0


_INSPECT_PATHS = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}


def _inspect_one(client: Client, name: str, kind: str | None, size: bool) -> Any:
    if kind is not None:
        query = {"size": size} if kind == "container" else None
        return client.get(path(_INSPECT_PATHS[kind], name), query)
    for each, template_path in _INSPECT_PATHS.items():
        try:
            return client.get(path(template_path, name), {"size": size} if each == "container" else None)
        except APIError as e:
            if e.status not in (400, 404, 501):  # 501: a kind of object the daemon has no routes for yet
                raise
    raise CLIError(f"Error: No such object: {name}")


def cmd_inspect(client: Client, a: argparse.Namespace) -> int:
    tmpl = template.parse(a.format) if a.format else None
    results: list[Any] = []
    errors: list[str] = []
    for name in a.names:
        try:
            results.append(_inspect_one(client, name, a.type, a.size))
        except (APIError, CLIError) as e:
            errors.append(str(e))
    return print_inspected(results, errors, tmpl)
