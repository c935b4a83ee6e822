"""`HostConfig.Ulimits`: checked at create with Docker's words, then set in the container's processes.

The names are the rlimits runc sets (Docker passes "RLIMIT_" + the upper-cased name on); the words
are those of go-units' ParseUlimit, which the docker CLI applies before it sends them. -1 is unlimited.
The container's first process and every exec get the same limits, as in Docker.
"""

from typing import Any

from daemon.containers.model import UlimitBody
from daemon.errors import InvalidParameter
from daemon.runtime.spec import Rlimit

NAMES = (
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)
UNLIMITED = -1
SOFT_ABOVE_HARD = "ulimit soft limit must be less than or equal to hard limit"


def check_ulimit(u: UlimitBody) -> None:
    name, soft, hard = u.Name or "", u.Soft or 0, u.Hard or 0
    if name not in NAMES:
        raise InvalidParameter(f"invalid ulimit type: {name}")
    for value in (soft, hard):
        if value < UNLIMITED:
            raise InvalidParameter(f"invalid ulimit value for {name}: {value} (use -1 for unlimited)")
    if hard != UNLIMITED:
        if soft == UNLIMITED:
            raise InvalidParameter(f"{SOFT_ABOVE_HARD}: soft: -1 (unlimited), hard: {hard}")
        if soft > hard:
            raise InvalidParameter(f"{SOFT_ABOVE_HARD}: {soft} > {hard}")


def check_ulimits(ulimits: list[UlimitBody] | None) -> None:
    for u in ulimits or []:
        check_ulimit(u)


def rlimits(host_config: dict[str, Any]) -> list[Rlimit]:
    """The stored Ulimits as the runtime's rlimits (a later entry for the same name wins, as in runc)."""
    out: dict[str, Rlimit] = {}
    for u in host_config.get("Ulimits") or []:
        out[u["Name"]] = Rlimit(u["Name"], int(u.get("Soft") or 0), int(u.get("Hard") or 0))
    return list(out.values())
