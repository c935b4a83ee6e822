"""cgroup v2: one unified hierarchy (/sys/fs/cgroup/<name>)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from daemon.runtime.cgroups import devicefilter
from daemon.runtime.cgroups.base import DEFAULT_ROOT, empty_stats, require_controllers
from daemon.runtime.cgroups.devices import DevicePolicy, DeviceRule, container_device_rules
from daemon.runtime.cgroups.errors import CgroupError
from daemon.runtime.cgroups.fs import (
    check_name,
    kill_all,
    make_dir,
    read_int,
    read_keyed,
    read_opt,
    read_procs,
    remove_tree,
    tokens,
    wait_for,
    write,
)
from daemon.runtime.cgroups.resources import Resources

AttachDevices = Callable[[str, DevicePolicy], None]

# controllers we enable for containers, in every ancestor's cgroup.subtree_control
WANTED = frozenset({"cpu", "cpuset", "io", "memory", "pids"})


def _limit(value: int) -> str:
    return str(value) if value >= 0 else "max"


class V2Manager:
    version = 2

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        *,
        freeze_timeout: float = 10.0,
        remove_timeout: float = 5.0,
        attach_devices: AttachDevices = devicefilter.attach,
    ) -> None:
        """attach_devices puts a device policy on a cgroup directory (tests on a plain directory
        pass a fake: only cgroupfs takes a BPF program)."""
        self.root = root
        self._attach_devices = attach_devices
        # the launcher's spare shim makes its manager before it is given a container: build the
        # usual program now, off the start's path (it is cached per policy)
        devicefilter.program(DevicePolicy.from_rules(container_device_rules(privileged=False)))
        self.controllers = frozenset(tokens(read_opt(os.path.join(root, "cgroup.controllers"))))
        self.freeze_timeout = freeze_timeout
        self.remove_timeout = remove_timeout

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *check_name(name))

    def paths(self, name: str) -> dict[str, str]:
        return {"": self._path(name)}

    def exists(self, name: str) -> bool:
        return os.path.isdir(self._path(name))

    def _available(self, d: str) -> set[str]:
        """Controllers usable in cgroup d (its cgroup.controllers)."""
        text = read_opt(os.path.join(d, "cgroup.controllers"))
        if text is None and d != self.root:
            # only a plain directory standing in for cgroupfs lacks the file; the kernel
            # would show what the parent enabled for its children
            text = read_opt(os.path.join(os.path.dirname(d), "cgroup.subtree_control"))
        return tokens(text)

    @staticmethod
    def _enable(d: str, controllers: set[str]) -> None:
        path = os.path.join(d, "cgroup.subtree_control")
        if not controllers - tokens(read_opt(path)):
            return
        try:
            # re-enabling an enabled controller is a no-op, so name them all
            write(path, " ".join(f"+{c}" for c in sorted(controllers)), "cgroup.subtree_control")
        except CgroupError:
            # one controller can refuse (cpu, with realtime tasks about); keep the others.
            # A limit needing a missing controller then fails with its own message.
            for c in sorted(controllers):
                with suppress(CgroupError):
                    write(path, f"+{c}", "cgroup.subtree_control")

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, name: str, resources: Resources) -> None:
        parts = check_name(name)
        leaf = self._path(name)
        created = not os.path.isdir(leaf)
        try:
            d = self.root
            for part in parts:
                self._enable(d, self._available(d) & WANTED)
                d = os.path.join(d, part)
                make_dir(d)
            self._apply(leaf, resources)
        except Exception:
            if created:
                with suppress(CgroupError):
                    self.remove(name)
            raise

    def update(self, name: str, resources: Resources) -> None:
        leaf = self._path(name)
        if not os.path.isdir(leaf):
            raise CgroupError(f"cgroup {name} does not exist", errno.ENOENT)
        self._apply(leaf, resources)

    def restrict_devices(self, name: str, rules: Sequence[DeviceRule]) -> None:
        leaf = self._path(name)
        if not os.path.isdir(leaf):
            raise CgroupError(f"cgroup {name} does not exist", errno.ENOENT)
        self._attach_devices(leaf, DevicePolicy.from_rules(rules))

    def join_self(self, name: str) -> None:
        leaf = self._path(name)
        write(os.path.join(leaf, "cgroup.procs"), "0", action=f"cannot join cgroup {leaf}")

    def add_process(self, name: str, pid: int) -> None:
        leaf = self._path(name)
        action = f"cannot add process {pid} to cgroup {leaf}"
        write(os.path.join(leaf, "cgroup.procs"), str(pid), action=action)

    def remove(self, name: str) -> None:
        leaf = self._path(name)
        if not os.path.isdir(leaf):
            return
        kill_file = os.path.join(leaf, "cgroup.kill")

        def kill() -> None:
            # cgroup.kill (Linux 5.14) kills the whole subtree without racing forks;
            # unlike v1, frozen tasks still die. Signals are the fallback.
            if os.path.exists(kill_file):
                with suppress(CgroupError):
                    write(kill_file, "1")
                    return
            kill_all(read_procs([leaf]))

        if read_procs([leaf]):
            kill()
        remove_tree(leaf, self.remove_timeout, kill)

    # -- limits -------------------------------------------------------------------------

    def _apply(self, leaf: str, r: Resources) -> None:
        available = self._available(leaf)
        require_controllers(r, available, f"in {leaf} (cgroup v2)")
        if "memory" in available:
            write(os.path.join(leaf, "memory.max"), _limit(r.memory_limit()), "memory limit")
            write(os.path.join(leaf, "memory.low"), str(max(r.memory_reservation, 0)), "memory reservation")
            swap = os.path.join(leaf, "memory.swap.max")
            if os.path.exists(swap):  # absent when swap accounting is off
                write(swap, _limit(r.swap_only()), "swap limit")
        if "cpu" in available:
            write(os.path.join(leaf, "cpu.weight"), str(r.cpu_weight()), "CPU shares")
            quota, period = r.cfs()
            write(os.path.join(leaf, "cpu.max"), f"{_limit(quota)} {period}", "CPU quota")
        if "cpuset" in available:
            for f, value, what in (
                ("cpuset.cpus", r.cpuset_cpus, "cpuset cpus"),
                ("cpuset.mems", r.cpuset_mems, "cpuset mems"),
            ):
                path = os.path.join(leaf, f)
                if value:
                    write(path, value, what)
                elif read_opt(path):
                    write(path, "\n", what)  # empty: inherit the parent's set again
        if "pids" in available:
            write(os.path.join(leaf, "pids.max"), r.pids_max(), "PIDs limit")

    # -- freezer ------------------------------------------------------------------------

    def _frozen(self, leaf: str) -> int | None:
        return read_keyed(os.path.join(leaf, "cgroup.events")).get("frozen")

    def _set_frozen(self, name: str, value: int) -> bool:
        leaf = self._path(name)
        write(os.path.join(leaf, "cgroup.freeze"), str(value), "cgroup.freeze")
        return wait_for(lambda: self._frozen(leaf) in (None, value), self.freeze_timeout)

    def freeze(self, name: str) -> None:
        if not self._set_frozen(name, 1):
            with suppress(CgroupError):
                write(os.path.join(self._path(name), "cgroup.freeze"), "0")
            raise CgroupError(f"timed out freezing cgroup {name}", errno.ETIMEDOUT)

    def thaw(self, name: str) -> None:
        if not self._set_frozen(name, 0):
            raise CgroupError(f"timed out thawing cgroup {name}", errno.ETIMEDOUT)

    def is_frozen(self, name: str) -> bool:
        leaf = self._path(name)
        return read_opt(os.path.join(leaf, "cgroup.freeze")) == "1" and self._frozen(leaf) != 0

    # -- inspection ---------------------------------------------------------------------

    def oom_killed(self, name: str) -> bool:
        return read_keyed(os.path.join(self._path(name), "memory.events")).get("oom_kill", 0) > 0

    def pids(self, name: str) -> list[int]:
        leaf = self._path(name)
        return read_procs([leaf]) if os.path.isdir(leaf) else []

    def stats(self, name: str) -> dict[str, Any]:
        leaf = self._path(name)
        s = empty_stats()
        if not os.path.isdir(leaf):
            return s
        s["memory"].update(
            usage=read_int(os.path.join(leaf, "memory.current")) or 0,
            max_usage=read_int(os.path.join(leaf, "memory.peak")),
            limit=read_int(os.path.join(leaf, "memory.max")),
            stats=read_keyed(os.path.join(leaf, "memory.stat")),
        )
        cpu = read_keyed(os.path.join(leaf, "cpu.stat"))
        s["cpu"].update(
            usage_ns=cpu.get("usage_usec", 0) * 1000,
            user_ns=cpu.get("user_usec", 0) * 1000,
            system_ns=cpu.get("system_usec", 0) * 1000,
            throttling={
                "periods": cpu.get("nr_periods", 0),
                "throttled_periods": cpu.get("nr_throttled", 0),
                "throttled_time_ns": cpu.get("throttled_usec", 0) * 1000,
            },
        )
        s["pids"] = {
            "current": read_int(os.path.join(leaf, "pids.current")) or 0,
            "limit": read_int(os.path.join(leaf, "pids.max")),
        }
        return s


def unified_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Where a cgroup2 hierarchy is mounted (the root on a v2 host, often <root>/unified on a hybrid one)."""
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None
