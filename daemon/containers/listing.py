"""`GET /containers/json`: Docker's summary objects, filters and status words."""

import time
from typing import Any

from daemon.containers.networking import ps_ports, public_settings
from daemon.containers.results import ContainerSizes
from daemon.containers.state import Status
from daemon.containers.store import Container
from daemon.errors import InvalidParameter, no_such_container
from daemon.labels import labels_match
from daemon.timefmt import human_duration, parse_since_until, parse_state_time

FILTERS = {
    "status",
    "name",
    "id",
    "label",
    "exited",
    "ancestor",
    "before",
    "since",
    "network",
    "volume",
    "health",
    "isolation",
    "publish",
    "expose",
    "is-task",
}
STATUSES = {s.value for s in Status}


def status_text(c: Container, now: float | None = None) -> str:
    now = time.time() if now is None else now
    state = c.state
    status = c.status
    if status in (Status.RUNNING, Status.PAUSED):
        up = human_duration(now - parse_state_time(state.started_at) / 1e9)
        return f"Up {up}" + (" (Paused)" if status == Status.PAUSED else "")
    if status == Status.RESTARTING:
        return "Restarting"
    if status == Status.REMOVING:
        return "Removal In Progress"
    if status == Status.DEAD:
        return "Dead"
    if status == Status.EXITED or parse_state_time(state.finished_at):
        ago = human_duration(now - parse_state_time(state.finished_at) / 1e9)
        return f"Exited ({state.exit_code}) {ago} ago"
    return "Created"


def command_line(c: Container) -> str:
    return " ".join([c.data["Path"], *c.data["Args"]]).strip()


def summary(c: Container, sizes: ContainerSizes | None = None) -> dict[str, Any]:
    mode = c.host_config.get("NetworkMode", "bridge")
    out: dict[str, Any] = {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.get("Image", ""),
        "ImageID": c.data["Image"],
        "Command": command_line(c),
        "Created": parse_state_time(c.data["Created"]) // 1_000_000_000,
        "Ports": ps_ports(c.data["NetworkSettings"].get("Ports")),
        "Labels": c.config.get("Labels") or {},
        "State": c.status.value,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": public_settings(c.data["NetworkSettings"])["Networks"]},
        "Mounts": c.data.get("Mounts") or [],
    }
    if sizes is not None:
        out["SizeRw"] = sizes.rw
        out["SizeRootFs"] = sizes.root_fs
    return out


def _port_key(value: str) -> str:
    """A publish/expose filter value ("80", "80/udp") as the ports' keys are written."""
    return value if "/" in value else f"{value}/tcp"


def _label_ok(c: Container, wanted: str) -> bool:
    return labels_match(c.config.get("Labels") or {}, [wanted])


def matches(c: Container, filters: dict[str, list[str]], image_ids: dict[str, str]) -> bool:
    for key in filters:
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    networks = c.data["NetworkSettings"].get("Networks", {})
    checks = {
        "status": lambda v: c.status.value == v,
        "name": lambda v: v.lstrip("/") in c.name or _name_regex(c.name, v),
        "id": lambda v: c.id.startswith(v),
        "label": lambda v: _label_ok(c, v),
        "exited": lambda v: c.status == Status.EXITED and str(c.state.exit_code) == v,
        "ancestor": lambda v: (
            c.config.get("Image") == v
            or c.data["Image"] == image_ids.get(v, "-")
            or c.data["Image"].removeprefix("sha256:").startswith(v.removeprefix("sha256:"))
        ),
        "network": lambda v: v in networks or any(ep.get("NetworkID") == v for ep in networks.values()),
        "publish": lambda v: (
            _port_key(v) in (c.host_config.get("PortBindings") or {})
            or bool((c.data["NetworkSettings"].get("Ports") or {}).get(_port_key(v)))
        ),  # -P's too
        "expose": lambda v: _port_key(v) in (c.config.get("ExposedPorts") or {}),
    }
    for key, values in filters.items():
        if key == "status":
            for v in values:
                if v not in STATUSES:
                    raise InvalidParameter(f"invalid filter 'status={v}'")
        if key == "label":
            if not all(_label_ok(c, v) for v in values):
                return False
            continue
        check = checks.get(key)
        if check and values and not any(check(v) for v in values):
            return False
    return True


def _name_regex(name: str, pattern: str) -> bool:
    import re

    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


PRUNE_FILTERS = {"label", "label!", "until"}


def matches_prune_filters(c: Container, filters: dict[str, list[str]]) -> bool:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for value in filters.get("label", []):
        if not _label_ok(c, value):
            return False
    for value in filters.get("label!", []):
        if _label_ok(c, value):
            return False
    for value in filters.get("until", []):
        try:
            until_ns = parse_since_until(value, time.time_ns())
        except ValueError as e:
            raise InvalidParameter(f"invalid filter 'until={value}'") from e
        if parse_state_time(c.data["Created"]) >= until_ns:
            return False
    return True


def select(
    containers: list[Container],
    all_: bool,
    limit: int | None,
    filters: dict[str, list[str]],
    image_ids: dict[str, str],
) -> list[Container]:
    chosen = sorted(containers, key=lambda c: c.data["Created"], reverse=True)
    if not all_ and not (limit and limit > 0) and "status" not in filters and "exited" not in filters:
        chosen = [c for c in chosen if c.running]
    for key in ("before", "since"):
        for ref in filters.get(key, []):
            anchor = next((c for c in containers if c.id.startswith(ref) or c.name == ref.lstrip("/")), None)
            if anchor is None:
                raise no_such_container(ref)
            if key == "before":
                chosen = [c for c in chosen if c.data["Created"] < anchor.data["Created"]]
            else:
                chosen = [c for c in chosen if c.data["Created"] > anchor.data["Created"]]
    rest = {k: v for k, v in filters.items() if k not in ("before", "since")}
    chosen = [c for c in chosen if matches(c, rest, image_ids)]
    if limit and limit > 0:
        chosen = chosen[:limit]
    return chosen
