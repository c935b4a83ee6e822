"""Parsing of option values the way the docker CLI reads them (references, env, volumes, ports)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_DOMAIN = "docker.io"


def split_reference(ref: str) -> tuple[str, str, str]:
    """`name[:tag][@digest]` -> (name, tag, digest); a `:` before the last `/` is a registry port."""
    name, _, digest = ref.partition("@")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def normalize_name(name: str) -> str:
    """`busybox` -> `docker.io/library/busybox` (reference.ParseNormalizedNamed)."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return name
    if not sep:
        return f"{DEFAULT_DOMAIN}/library/{name}"
    return f"{DEFAULT_DOMAIN}/{name}"


def familiar_name(name: str) -> str:
    """The short form docker shows: `docker.io/library/busybox` -> `busybox`."""
    prefix = f"{DEFAULT_DOMAIN}/"
    if not name.startswith(prefix):
        return name
    rest = name[len(prefix) :]
    if rest.startswith("library/") and rest.count("/") == 1:
        return rest[len("library/") :]
    return rest


def familiar_reference(ref: str) -> str:
    """`busybox` -> `busybox:latest` (FamiliarString(TagNameOnly(ref)))."""
    name, tag, digest = split_reference(ref)
    name = familiar_name(normalize_name(name))
    if digest:
        return f"{name}{':' + tag if tag else ''}@{digest}"
    return f"{name}:{tag or 'latest'}"


def pull_query(ref: str) -> dict[str, str]:
    """Query of `POST /images/create` for a pull, as the docker CLI sends it."""
    name, tag, digest = split_reference(ref)
    return {"fromImage": normalize_name(name), "tag": digest or tag or "latest"}


def parse_env(values: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """`-e A=1` as is; `-e A` takes A from our environment and is dropped when unset."""
    env = os.environ if environ is None else environ
    out = []
    for value in values:
        if "=" in value:
            if value.startswith("="):
                raise ValueError(f"invalid environment variable: {value}")
            out.append(value)
        elif value in env:
            out.append(f"{value}={env[value]}")
    return out


def parse_key_values(values: Iterable[str]) -> dict[str, str]:
    """Repeatable `k=v` flags (--label, --opt, --aux-address, --driver-opt); a bare key gets ""."""
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def parse_volumes(values: Iterable[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """-v specs -> (HostConfig.Binds, Config.Volumes). A lone container path is an anonymous volume."""
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in values:
        parts = spec.split(":")
        if len(parts) == 1:
            volumes[spec] = {}
            continue
        if len(parts) > 3:
            raise ValueError(f"invalid spec: {spec}: too many colons")
        if not parts[0] or not parts[1]:
            raise ValueError(f"invalid spec: {spec}")
        if parts[0].startswith("."):
            # docker resolves relative bind sources against the client's working directory
            parts[0] = os.path.abspath(parts[0])
        binds.append(":".join(parts))
    return binds, volumes


def parse_ports(values: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """-p specs -> (ExposedPorts, PortBindings); the rules live in ports.py with `pyd port`'s."""
    from .ports import parse_publish

    return parse_publish(values)


def parse_restart(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise ValueError(f"invalid restart policy {name!r}")
    if count and name != "on-failure":
        raise ValueError(f"maximum retry count cannot be used with restart policy '{name}'")
    return {"Name": name, "MaximumRetryCount": int(count) if count else 0}


def normalize_capability(cap: str) -> str:
    """`net_admin` -> `CAP_NET_ADMIN`; `ALL` stays `ALL` (as the docker CLI sends them)."""
    upper = cap.upper()
    if upper == "ALL" or upper.startswith("CAP_"):
        return upper
    return "CAP_" + upper
