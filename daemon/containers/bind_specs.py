"""`HostConfig.Binds` ("/host:/ctr[:ro|rw][,z]") parsed and checked with Docker's words."""

import os
from dataclasses import dataclass
from typing import Any

from daemon.errors import InvalidParameter, NotImplementedYet

MODES = {"ro", "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "nocopy"}


@dataclass
class Bind:
    source: str
    destination: str
    readonly: bool
    mode: str

    def inspect(self) -> dict[str, Any]:
        return {
            "Type": "bind",
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": not self.readonly,
            "Propagation": "rprivate",
        }


def parse_bind(spec: str) -> Bind:
    parts = spec.split(":")
    if len(parts) == 2:
        source, destination, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, destination, mode = parts
    else:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if not destination.startswith("/"):
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
            f"invalid mount path: '{destination}' mount path must be absolute"
        )
    if destination == "/":
        raise InvalidParameter(
            f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
            "invalid specification: destination can't be '/'"
        )
    flags = [m for m in mode.split(",") if m]
    if any(m not in MODES for m in flags):
        raise InvalidParameter(f"invalid mode: {mode}")
    if not source.startswith("/"):
        raise NotImplementedYet(f"named volumes are not implemented yet: {source!r} in {spec!r}")
    return Bind(os.path.normpath(source), os.path.normpath(destination), "ro" in flags, mode)


def parse_binds(binds: list[str] | None) -> list[Bind]:
    return [parse_bind(b) for b in binds or []]


def ensure_source(bind: Bind) -> None:
    """Docker creates a missing bind source as a directory (the -v behaviour, not --mount's)."""
    if not os.path.exists(bind.source):
        os.makedirs(bind.source, exist_ok=True)
