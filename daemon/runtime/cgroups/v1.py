"""cgroup v1: one directory per controller hierarchy (/sys/fs/cgroup/<controller>/<name>)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from daemon.runtime.cgroups.base import DEFAULT_ROOT, empty_stats, require_controllers
from daemon.runtime.cgroups.devices import DevicePolicy, DeviceRule
from daemon.runtime.cgroups.errors import CgroupError, InvalidLimit
from daemon.runtime.cgroups.fs import (
    UNLIMITED_THRESHOLD,
    check_name,
    kill_all,
    make_dir,
    read_int,
    read_keyed,
    read_opt,
    read_procs,
    remove_tree,
    wait_for,
    write,
)
from daemon.runtime.cgroups.resources import Resources

CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices")
# where to look for a cgroup's processes: any hierarchy works, these are the likeliest mounted
_PROCS_ORDER = ("pids", "freezer", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices")


def find_mounts(root: str) -> dict[str, str]:
    """Controller -> hierarchy root for the controllers mounted under root.

    A hierarchy is recognised by its cgroup.procs, which also follows the usual
    cpu -> cpu,cpuacct symlinks; the v2 mount at <root>/unified has no name we look for.
    """
    mounts: dict[str, str] = {}
    for controller in CONTROLLERS:
        path = os.path.join(root, controller)
        if os.path.isfile(os.path.join(path, "cgroup.procs")):
            mounts[controller] = path
    return mounts


def _as_bytes(limit: int) -> int:
    return limit if limit >= 0 else (1 << 63) - 1


class V1Manager:
    version = 1

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        mounts: Mapping[str, str] | None = None,
        *,
        freeze_timeout: float = 10.0,
        remove_timeout: float = 5.0,
    ) -> None:
        self.root = root
        self.mounts = dict(mounts) if mounts is not None else find_mounts(root)
        self.controllers = frozenset(self.mounts)
        self.freeze_timeout = freeze_timeout
        self.remove_timeout = remove_timeout

    # -- paths --------------------------------------------------------------------------

    def _dir(self, controller: str, name: str) -> str | None:
        mount = self.mounts.get(controller)
        return os.path.join(mount, *check_name(name)) if mount else None

    def _dirs(self, name: str) -> list[str]:
        """One directory per distinct hierarchy (cpu and cpuacct are often the same one)."""
        parts = check_name(name)
        seen: set[str] = set()
        dirs: list[str] = []
        for mount in self.mounts.values():
            real = os.path.realpath(mount)
            if real not in seen:
                seen.add(real)
                dirs.append(os.path.join(mount, *parts))
        return dirs

    def paths(self, name: str) -> dict[str, str]:
        parts = check_name(name)
        return {controller: os.path.join(mount, *parts) for controller, mount in self.mounts.items()}

    def exists(self, name: str) -> bool:
        return any(os.path.isdir(d) for d in self._dirs(name))

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, name: str, resources: Resources) -> None:
        parts = check_name(name)
        require_controllers(resources, self.controllers, f"(cgroup v1 under {self.root})")
        created = not self.exists(name)
        try:
            for d in self._dirs(name):
                make_dir(d)
            if "cpuset" in self.mounts:
                self._init_cpuset(parts)
            self._apply(name, resources)
        except Exception:
            if created:
                with suppress(CgroupError):
                    self.remove(name)
            raise

    def update(self, name: str, resources: Resources) -> None:
        if not self.exists(name):
            raise CgroupError(f"cgroup {name} does not exist", errno.ENOENT)
        require_controllers(resources, self.controllers, f"(cgroup v1 under {self.root})")
        self._apply(name, resources)

    def restrict_devices(self, name: str, rules: Sequence[DeviceRule]) -> None:
        d = self._dir("devices", name)
        if d is None:
            if DevicePolicy.from_rules(rules).allows_everything:
                return
            # like runc: without the controller the container would reach every device
            raise CgroupError(
                "cannot confine the container's devices: the devices cgroup controller is not mounted",
                errno.EOPNOTSUPP,
                self.root,
            )
        for rule in rules:
            verb = "allow" if rule.allow else "deny"
            path = os.path.join(d, f"devices.{verb}")
            write(path, rule.v1(), action=f"cannot {verb} device {rule.v1()!r} in {d}")

    def join_self(self, name: str) -> None:
        for d in self._dirs(name):
            write(os.path.join(d, "tasks"), "0", action=f"cannot join cgroup {d}")

    def add_process(self, name: str, pid: int) -> None:
        for d in self._dirs(name):
            write(os.path.join(d, "cgroup.procs"), str(pid), action=f"cannot add process {pid} to cgroup {d}")

    def remove(self, name: str) -> None:
        dirs = [d for d in self._dirs(name) if os.path.isdir(d)]
        if not dirs:
            return
        freezer = self._dir("freezer", name)

        def kill() -> None:
            kill_all(read_procs(dirs))
            # a frozen task cannot act on SIGKILL until it is thawed
            if freezer and read_opt(os.path.join(freezer, "freezer.state")) not in (None, "THAWED"):
                with suppress(CgroupError):
                    write(os.path.join(freezer, "freezer.state"), "THAWED")

        if read_procs(dirs):
            kill()
        for d in dirs:
            remove_tree(d, self.remove_timeout, kill)

    # -- limits -------------------------------------------------------------------------

    def _init_cpuset(self, parts: list[str]) -> None:
        """A new cpuset starts with no CPUs or memory nodes: copy the parent's down every level."""
        parent = self.mounts["cpuset"]
        for part in parts:
            d = os.path.join(parent, part)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not read_opt(os.path.join(d, f)):
                    value = read_opt(os.path.join(parent, f))
                    if value:
                        write(os.path.join(d, f), value)
            parent = d

    def _apply(self, name: str, r: Resources) -> None:
        mem = self._dir("memory", name)
        if mem:
            self._set_memory(mem, r.memory_limit(), r.memsw_limit())
            write(os.path.join(mem, "memory.soft_limit_in_bytes"), str(r.reservation()), "memory reservation")
        cpu = self._dir("cpu", name)
        if cpu:
            write(os.path.join(cpu, "cpu.shares"), str(r.shares()), "CPU shares")
            self._set_cfs(cpu, *r.cfs())
        cpuset = self._dir("cpuset", name)
        if cpuset:
            parent = os.path.dirname(cpuset)
            for f, value, what in (
                ("cpuset.cpus", r.cpuset_cpus, "cpuset cpus"),
                ("cpuset.mems", r.cpuset_mems, "cpuset mems"),
            ):
                # empty means "all the parent has", which v1 must spell out
                value = value or read_opt(os.path.join(parent, f)) or ""
                if value:
                    write(os.path.join(cpuset, f), value, what)
        pids = self._dir("pids", name)
        if pids:
            write(os.path.join(pids, "pids.max"), r.pids_max(), "PIDs limit")

    def _set_memory(self, d: str, limit: int, memsw: int) -> None:
        mem_path = os.path.join(d, "memory.limit_in_bytes")
        memsw_path = os.path.join(d, "memory.memsw.limit_in_bytes")
        if not os.path.exists(memsw_path):
            # swap accounting is off: the memory limit alone is all we can set
            write(mem_path, str(limit), "memory limit")
            return
        # The kernel keeps memory <= memory+swap at all times, so when the new memory
        # limit is above the current memsw limit, memsw must be raised first.
        current_memsw = read_int(memsw_path)
        if current_memsw is not None and _as_bytes(limit) > current_memsw:
            write(memsw_path, str(memsw), "memory+swap limit")
            write(mem_path, str(limit), "memory limit")
        else:
            write(mem_path, str(limit), "memory limit")
            write(memsw_path, str(memsw), "memory+swap limit")

    @staticmethod
    def _set_cfs(d: str, quota: int, period: int) -> None:
        period_path = os.path.join(d, "cpu.cfs_period_us")
        quota_path = os.path.join(d, "cpu.cfs_quota_us")
        try:
            write(period_path, str(period), "CPU period")
            write(quota_path, str(quota), "CPU quota")
        except InvalidLimit:
            # a period can be refused until the quota fits it; the other order then works
            write(quota_path, str(quota), "CPU quota")
            write(period_path, str(period), "CPU period")

    # -- freezer ------------------------------------------------------------------------

    def _freezer_state(self, name: str) -> str:
        d = self._dir("freezer", name)
        if d is None:
            raise CgroupError(
                f"the freezer cgroup controller is not mounted under {self.root}", errno.EOPNOTSUPP
            )
        return os.path.join(d, "freezer.state")

    def _set_state(self, name: str, target: str) -> bool:
        path = self._freezer_state(name)

        def reached() -> bool:
            if read_opt(path) == target:
                return True
            # ask again: tasks forked while freezing may need another pass
            write(path, target, "freezer state")
            return False

        write(path, target, "freezer state")
        return wait_for(reached, self.freeze_timeout)

    def freeze(self, name: str) -> None:
        if not self._set_state(name, "FROZEN"):
            with suppress(CgroupError):
                write(self._freezer_state(name), "THAWED")
            raise CgroupError(f"timed out freezing cgroup {name}", errno.ETIMEDOUT)

    def thaw(self, name: str) -> None:
        if not self._set_state(name, "THAWED"):
            raise CgroupError(f"timed out thawing cgroup {name}", errno.ETIMEDOUT)

    def is_frozen(self, name: str) -> bool:
        d = self._dir("freezer", name)
        return d is not None and read_opt(os.path.join(d, "freezer.state")) == "FROZEN"

    # -- inspection ---------------------------------------------------------------------

    def oom_killed(self, name: str) -> bool:
        d = self._dir("memory", name)
        return d is not None and read_keyed(os.path.join(d, "memory.oom_control")).get("oom_kill", 0) > 0

    def pids(self, name: str) -> list[int]:
        for controller in _PROCS_ORDER:
            d = self._dir(controller, name)
            if d and os.path.isdir(d):
                return read_procs([d])
        return []

    def stats(self, name: str) -> dict[str, Any]:
        s = empty_stats()
        mem = self._dir("memory", name)
        if mem and os.path.isdir(mem):
            limit = read_int(os.path.join(mem, "memory.limit_in_bytes"))
            s["memory"].update(
                usage=read_int(os.path.join(mem, "memory.usage_in_bytes")) or 0,
                max_usage=read_int(os.path.join(mem, "memory.max_usage_in_bytes")),
                limit=limit if limit is not None and limit < UNLIMITED_THRESHOLD else None,
                stats=read_keyed(os.path.join(mem, "memory.stat")),
            )
        acct = self._dir("cpuacct", name)
        if acct and os.path.isdir(acct):
            ticks = read_keyed(os.path.join(acct, "cpuacct.stat"))
            ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            percpu = (read_opt(os.path.join(acct, "cpuacct.usage_percpu")) or "").split()
            s["cpu"].update(
                usage_ns=read_int(os.path.join(acct, "cpuacct.usage")) or 0,
                user_ns=ticks.get("user", 0) * ns_per_tick,
                system_ns=ticks.get("system", 0) * ns_per_tick,
                percpu_ns=[int(v) for v in percpu if v.isdigit()],
            )
        cpu = self._dir("cpu", name)
        if cpu and os.path.isdir(cpu):
            stat = read_keyed(os.path.join(cpu, "cpu.stat"))
            s["cpu"]["throttling"] = {
                "periods": stat.get("nr_periods", 0),
                "throttled_periods": stat.get("nr_throttled", 0),
                "throttled_time_ns": stat.get("throttled_time", 0),
            }
        pids = self._dir("pids", name)
        if pids and os.path.isdir(pids):
            s["pids"] = {
                "current": read_int(os.path.join(pids, "pids.current")) or 0,
                "limit": read_int(os.path.join(pids, "pids.max")),
            }
        return s
