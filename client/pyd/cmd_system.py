"""System commands: version, info, events."""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

from . import format as fmt
from . import template
from .cmd_query import filters_param
from .common import CLIError
from .http import CLIENT_VERSION, Client

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def client_info(client: Client) -> dict[str, Any]:
    machine = platform.machine()
    return {
        "Version": CLIENT_VERSION,
        "ApiVersion": client.version,
        "PythonVersion": platform.python_version(),
        "Os": sys.platform,
        "Arch": _ARCH.get(machine, machine),
    }


def _client_lines(info: dict[str, Any]) -> list[str]:
    return [
        "Client:",
        f" Version:\t{info['Version']}",
        f" API version:\t{info['ApiVersion']}",
        f" Python version:\t{info['PythonVersion']}",
        f" OS/Arch:\t{info['Os']}/{info['Arch']}",
    ]


def _server_lines(server: dict[str, Any]) -> list[str]:
    name = (server.get("Platform") or {}).get("Name") or ""
    lines = [f"Server: {name}".rstrip()]
    components = server.get("Components") or [{"Name": "Engine"}]
    for comp in components:
        if comp.get("Name") == "Engine":
            # docker's template prints the engine from the top-level fields
            lines += [
                " Engine:",
                f"  Version:\t{server.get('Version', '')}",
                f"  API version:\t{server.get('ApiVersion', '')}"
                f" (minimum version {server.get('MinAPIVersion', '')})",
                f"  Go version:\t{server.get('GoVersion', '')}",
                f"  Git commit:\t{server.get('GitCommit', '')}",
                f"  Built:\t{fmt.ansic(server.get('BuildTime', ''))}",
                f"  OS/Arch:\t{server.get('Os', '')}/{server.get('Arch', '')}",
                f"  Experimental:\t{template.go_str(bool(server.get('Experimental')))}",
            ]
            continue
        lines += [f" {comp.get('Name')}:", f"  Version:\t{comp.get('Version', '')}"]
        details = comp.get("Details") or {}
        lines += [f"  {key}:\t{template.go_str(details[key])}" for key in sorted(details)]
    return lines


def cmd_version(client: Client, a: argparse.Namespace) -> int:
    info = client_info(client)
    if a.format:
        server = client.get("/version")
        print(template.render(a.format, {"Client": info, "Server": server}))
        return 0
    sys.stdout.write(fmt.tabwrite([*_client_lines(info), ""], minwidth=20, padding=1))
    sys.stdout.flush()
    server = client.get("/version")  # an error here comes after the client part, as in docker
    sys.stdout.write(fmt.tabwrite(_server_lines(server), minwidth=20, padding=1))
    return 0


def _security_lines(options: list[str]) -> list[str]:
    lines = []
    for option in options:
        fields = dict(kv.partition("=")[::2] for kv in option.split(","))
        lines.append(f"  {fields.pop('name', option)}")
        lines += [f"   {key.capitalize()}: {value}" for key, value in fields.items()]
    return lines


def info_lines(info: dict[str, Any]) -> list[str]:
    """docker info's server section (the parts a single-host engine has)."""

    def get(key: str) -> str:
        return template.go_str(info.get(key, ""))

    lines = [
        "Server:",
        f" Containers: {get('Containers')}",
        f"  Running: {get('ContainersRunning')}",
        f"  Paused: {get('ContainersPaused')}",
        f"  Stopped: {get('ContainersStopped')}",
        f" Images: {get('Images')}",
        f" Server Version: {get('ServerVersion')}",
        f" Storage Driver: {get('Driver')}",
    ]
    lines += [f"  {k}: {v}" for k, v in info.get("DriverStatus") or []]
    lines += [
        f" Logging Driver: {get('LoggingDriver')}",
        f" Cgroup Driver: {get('CgroupDriver')}",
        f" Cgroup Version: {get('CgroupVersion')}",
        " Plugins:",
    ]
    for kind, names in (info.get("Plugins") or {}).items():
        if names:
            lines.append(f"  {kind}: {' '.join(names)}")
    swarm = (info.get("Swarm") or {}).get("LocalNodeState") or "inactive"
    lines += [
        f" Swarm: {swarm}",
        f" Runtimes: {' '.join(sorted(info.get('Runtimes') or {}))}",
        f" Default Runtime: {get('DefaultRuntime')}",
    ]
    if info.get("InitBinary"):
        lines.append(f" Init Binary: {get('InitBinary')}")
    if info.get("SecurityOptions"):
        lines += [" Security Options:", *_security_lines(info["SecurityOptions"])]
    lines += [
        f" Kernel Version: {get('KernelVersion')}",
        f" Operating System: {get('OperatingSystem')}",
        f" OSType: {get('OSType')}",
        f" Architecture: {get('Architecture')}",
        f" CPUs: {get('NCPU')}",
        f" Total Memory: {fmt.bytes_size(info.get('MemTotal') or 0)}",
        f" Name: {get('Name')}",
        f" ID: {get('ID')}",
        f" Docker Root Dir: {get('DockerRootDir')}",
        f" Debug Mode: {template.go_str(bool(info.get('Debug')))}",
        f" Experimental: {template.go_str(bool(info.get('ExperimentalBuild')))}",
    ]
    if info.get("Labels"):
        lines += [" Labels:", *(f"  {label}" for label in info["Labels"])]
    registry = info.get("RegistryConfig") or {}
    insecure = list(registry.get("InsecureRegistryCIDRs") or [])
    insecure += [name for name, idx in (registry.get("IndexConfigs") or {}).items() if not idx.get("Secure")]
    if insecure:
        lines += [" Insecure Registries:", *(f"  {name}" for name in insecure)]
    if registry.get("Mirrors"):
        lines += [" Registry Mirrors:", *(f"  {m}" for m in registry["Mirrors"])]
    lines.append(f" Live Restore Enabled: {template.go_str(bool(info.get('LiveRestoreEnabled')))}")
    return lines


def cmd_info(client: Client, a: argparse.Namespace) -> int:
    info = client.get("/info")
    if a.format:
        print(template.render("{{json .}}" if a.format == "json" else a.format, info))
        return 0
    print(f"Client:\n Version:    {CLIENT_VERSION}\n Debug Mode: false\n")
    print("\n".join(info_lines(info)))
    for warning in info.get("Warnings") or []:
        print(warning, file=sys.stderr)
    return 0


def event_line(event: dict[str, Any]) -> str:
    """docker's default events line: `<time> <type> <action> <id> (k=v, ...)`."""
    nanos = event.get("timeNano") or (event.get("time") or 0) * 1_000_000_000
    actor = event.get("Actor") or {}
    line = f"{fmt.rfc3339_nano(int(nanos))} " if nanos else ""
    line += f"{event.get('Type', '')} {event.get('Action') or event.get('status', '')} "
    line += str(actor.get("ID") or event.get("id") or "")
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{key}={attrs[key]}" for key in sorted(attrs)) + ")"
    return line


def cmd_events(client: Client, a: argparse.Namespace) -> int:
    try:
        query = {
            "since": fmt.api_timestamp(a.since) if a.since else None,
            "until": fmt.api_timestamp(a.until) if a.until else None,
            "filters": filters_param(a.filter),
        }
    except ValueError as e:
        raise CLIError(str(e)) from e
    tmpl = template.parse("{{json .}}" if a.format == "json" else a.format) if a.format else None
    with client.request("GET", "/events", query) as resp:
        for event in resp.iter_json():
            print(tmpl.render(event) if tmpl else event_line(event), flush=True)
    return 0
