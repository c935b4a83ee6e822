"""The interface both cgroup versions implement."""

from __future__ import annotations

import errno
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from daemon.runtime.cgroups.devices import DeviceRule
from daemon.runtime.cgroups.errors import CgroupError
from daemon.runtime.cgroups.resources import Resources

DEFAULT_ROOT = "/sys/fs/cgroup"


class CgroupManager(Protocol):
    """Manage cgroups named like "pydockerd/<container id>" below one root.

    create() and update() both apply the complete Resources (the daemon merges a
    partial `docker update` into the HostConfig first); zero values mean "no limit".
    """

    version: int  # 1 or 2
    root: str
    controllers: frozenset[str]  # usable controllers, e.g. {"cpu", "memory", "pids", ...}

    def create(self, name: str, resources: Resources) -> None: ...

    def add_process(self, name: str, pid: int) -> None: ...

    def join_self(self, name: str) -> None:
        """Move the calling process, which must be single-threaded, into the cgroup.

        On v1 this writes "0" to `tasks`, which the kernel does without the global lock that a
        write of another process's PID to `cgroup.procs` takes (a whole RCU grace period, 5-25 ms,
        for every hierarchy of a new cgroup).
        """

    def restrict_devices(self, name: str, rules: Sequence[DeviceRule]) -> None:
        """Confine the devices the cgroup's processes may mknod, read or write (devices.py).

        v1 writes the rules to its devices controller; v2 attaches them as one eBPF program.
        Either way the rules are enforced or this raises: a container never runs unconfined
        because the kernel could not confine it.
        """

    def update(self, name: str, resources: Resources) -> None: ...

    def freeze(self, name: str) -> None: ...

    def thaw(self, name: str) -> None: ...

    def is_frozen(self, name: str) -> bool: ...

    def oom_killed(self, name: str) -> bool: ...

    def pids(self, name: str) -> list[int]: ...

    def exists(self, name: str) -> bool: ...

    def remove(self, name: str) -> None: ...

    def paths(self, name: str) -> dict[str, str]: ...

    def stats(self, name: str) -> dict[str, Any]: ...


def empty_stats() -> dict[str, Any]:
    """The shape stats() returns for both versions; limits are None when unlimited."""
    return {
        "memory": {"usage": 0, "max_usage": None, "limit": None, "stats": {}},
        "cpu": {
            "usage_ns": 0,
            "user_ns": 0,
            "system_ns": 0,
            "percpu_ns": [],
            "throttling": {"periods": 0, "throttled_periods": 0, "throttled_time_ns": 0},
        },
        "pids": {"current": 0, "limit": None},
    }


def require_controllers(resources: Resources, available: Collection[str], where: str) -> None:
    """Refuse limits whose controller is missing, instead of silently running unlimited."""
    r = resources
    wanted = {
        "memory": ("a memory limit", r.memory > 0 or r.memory_reservation > 0),
        "cpu": ("CPU shares or quota", bool(r.cpu_shares or r.cpu_period or r.cpu_quota or r.nano_cpus)),
        "cpuset": ("a cpuset", bool(r.cpuset_cpus or r.cpuset_mems)),
        "pids": ("a PIDs limit", r.pids_limit > 0),
    }
    for controller, (what, asked) in wanted.items():
        if asked and controller not in available:
            raise CgroupError(
                f"cannot set {what}: the {controller} cgroup controller is not available {where}",
                errno.EOPNOTSUPP,
            )
