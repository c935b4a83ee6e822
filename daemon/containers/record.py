"""A container's persistent record: the JSON `docker inspect` shows, built from the create body and image."""

from pathlib import Path
from typing import Any

from daemon.containers.model import CreateBody, HealthcheckBody
from daemon.containers.state import Status
from daemon.containers.validate import clean_path, parse_exposed_port
from daemon.timefmt import ZERO_TIME, now_rfc3339

# the HostConfig keys `docker update` may change; the numeric ones default to 0
NUMERIC_RESOURCE_KEYS = (
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
)
RESOURCE_KEYS = (*NUMERIC_RESOURCE_KEYS, "CpusetCpus", "CpusetMems", "PidsLimit")


def as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    """Image ENV first, the user's -e values override by key (Docker's order)."""
    merged: dict[str, str] = {}
    for entry in [*image_env, *user_env]:
        key = entry.split("=", 1)[0]
        merged.pop(key, None)
        merged[key] = entry
    return list(merged.values())


def effective_command(body: CreateBody, image_config: dict[str, Any]) -> tuple[list[str], list[str] | None]:
    """(Cmd, Entrypoint) after image defaults: a user entrypoint drops the image's Cmd."""
    entrypoint = as_list(body.Entrypoint)
    cmd = as_list(body.Cmd)
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint")
        if not cmd:
            cmd = image_config.get("Cmd") or []
    elif not cmd:
        cmd = []
    if entrypoint == [""]:  # `--entrypoint ""` clears it
        entrypoint = None
    return list(cmd or []), list(entrypoint) if entrypoint else None


HEALTH_FIELDS = ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def merge_healthcheck(user: HealthcheckBody | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's merge: what the user left empty or zero comes from the image. Zero values are left out
    of the result, as Docker's JSON does (omitempty). Stored only: healthchecks are not run yet."""
    if user is None:
        return dict(image) if image else None
    merged: dict[str, Any] = {"Test": list(user.Test or []) or list((image or {}).get("Test") or [])}
    for key in HEALTH_FIELDS:
        merged[key] = getattr(user, key) or (image or {}).get(key) or 0
    return {k: v for k, v in merged.items() if v}


def merge_exposed_ports(user: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The image's exposed ports plus the user's, the user's written "<port>/<proto>" (checked at create)."""
    ports: dict[str, Any] = {parse_exposed_port(p): {} for p in user or {}}
    ports.update({p: {} for p in image or {} if p not in ports})
    return ports or None


def network_settings() -> dict[str, Any]:
    """A new container's NetworkSettings; the network service fills Networks at create and the rest at
    start."""
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": {},
    }


def new_record(
    cid: str,
    name: str,
    body: CreateBody,
    image_id: str,
    image_config: dict[str, Any],
    cdir: Path,
    lower_dirs: list[str],
) -> dict[str, Any]:
    raw = body.model_dump(by_alias=True, exclude_none=False)
    host_config = dict(raw.get("HostConfig") or {})
    cfg = image_config.get("config") or {}
    cmd, entrypoint = effective_command(body, cfg)
    argv = [*(entrypoint or []), *cmd]
    labels = {**(cfg.get("Labels") or {}), **(body.Labels or {})}
    network_mode = host_config.get("NetworkMode") or "default"
    host_config.setdefault("Binds", None)
    host_config["NetworkMode"] = "bridge" if network_mode == "default" else network_mode
    host_config["LogConfig"] = host_config.get("LogConfig") or {"Type": "json-file", "Config": {}}
    if not host_config["LogConfig"].get("Type"):
        host_config["LogConfig"]["Type"] = "json-file"
    host_config["RestartPolicy"] = host_config.get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}
    for key in NUMERIC_RESOURCE_KEYS:
        host_config[key] = host_config.get(key) or 0
    for key in ("CpusetCpus", "CpusetMems"):
        host_config[key] = host_config.get(key) or ""
    for key in ("Privileged", "AutoRemove", "ReadonlyRootfs"):
        host_config[key] = bool(host_config.get(key))
    config = {
        "Hostname": body.Hostname or cid[:12],
        "Domainname": body.Domainname or "",
        "User": body.User or cfg.get("User") or "",
        "AttachStdin": bool(body.AttachStdin),
        "AttachStdout": bool(body.AttachStdout),
        "AttachStderr": bool(body.AttachStderr),
        "Tty": bool(body.Tty),
        "OpenStdin": bool(body.OpenStdin),
        "StdinOnce": bool(body.StdinOnce),
        "Env": merge_env(cfg.get("Env") or [], body.Env or []),
        "Cmd": cmd or None,
        "Image": body.Image or "",
        "Volumes": cfg.get("Volumes"),
        "WorkingDir": clean_path(body.WorkingDir) if body.WorkingDir else cfg.get("WorkingDir") or "",
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels,
    }
    exposed = merge_exposed_ports(body.ExposedPorts, cfg.get("ExposedPorts"))
    if exposed:
        config["ExposedPorts"] = exposed
    health = merge_healthcheck(body.Healthcheck, cfg.get("Healthcheck"))
    if health:
        config["Healthcheck"] = health
    stop_signal = body.StopSignal or cfg.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if body.StopTimeout is not None:
        config["StopTimeout"] = body.StopTimeout
    upper, work = cdir / "rw" / "upper", cdir / "rw" / "work"
    return {
        "Id": cid,
        "Created": now_rfc3339(),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": Status.CREATED.value,
            "Running": False,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 0,
            "ExitCode": 0,
            "Error": "",
            "StartedAt": ZERO_TIME,
            "FinishedAt": ZERO_TIME,
        },
        "Image": image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(cdir / f"{cid}-json.log"),
        "Name": "/" + name,
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(lower_dirs),
                "UpperDir": str(upper),
                "WorkDir": str(work),
                "MergedDir": str(cdir / "merged"),
            },
        },
        "Mounts": [],
        "Config": config,
        "NetworkSettings": network_settings(),
    }
