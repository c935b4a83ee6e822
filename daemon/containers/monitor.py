"""Exit handling (moby's monitor.go): watch each running container, record its exit, tell its waiters and
listeners, and re-derive every container's state at start-up. Restart policies and healthchecks hook in
here, where an exit is seen."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from daemon.containers.state import Status
from daemon.containers.store import Container, ContainerStore
from daemon.containers.waiters import resolve
from daemon.events.bus import EventBus
from daemon.runtime.cgroups import CgroupManager
from daemon.runtime.client import ExitInfo, Runtime
from daemon.runtime.logfile import timestamp

log = logging.getLogger(__name__)

ExitListener = Callable[[Container], None]


class ExitMonitor:
    def __init__(
        self,
        store: ContainerStore,
        runtime: Runtime,
        events: EventBus,
        cgroups: CgroupManager,
        cgroup_of: Callable[[Container], str],
        auto_remove: Callable[[Container], Awaitable[None]],
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.events = events
        self.cgroups = cgroups
        self.cgroup_of = cgroup_of
        self.auto_remove = auto_remove  # AutoRemove's removal, done by the service under the lock
        self.exit_listeners: list[ExitListener] = []  # e.g. the exec service forgets the execs

    # --- start-up -------------------------------------------------------------------------------

    async def restore(self) -> None:
        """Re-derive every container's state from the kernel and the shims (live restore).

        A container that cannot be restored is logged and left as it is: it never stops the daemon."""
        for c in self.store.load():
            try:
                await self._restore_one(c)
            except Exception:
                log.exception("restoring container %s failed", c.id[:12])
        self.store.trash.purge_soon()  # removals a crash interrupted

    async def _restore_one(self, c: Container) -> None:
        if not c.running:
            # a shim left from a crash between its start and the record saying so: undo it
            if self.runtime.exec_dir(c.id).exists():
                self.runtime.kill_shim(c.id)
                self.remove_cgroup(c)
                self.runtime.cleanup(c.id)
            return
        if self.runtime.shim_alive(c.id):
            frozen = False
            with contextlib.suppress(OSError):
                frozen = self.cgroups.is_frozen(self.cgroup_of(c))
            if frozen and c.status == Status.RUNNING:
                c.state.paused()
            elif not frozen and c.status == Status.PAUSED:
                c.state.resumed()
            self.watch(c)
        else:
            info = self.runtime.read_exit(c.id) or ExitInfo(255, False, timestamp(), recorded=False)
            await self.exited(c, info)

    # --- exits ----------------------------------------------------------------------------------

    def watch(self, c: Container) -> None:
        async def monitor() -> None:
            info = await self.runtime.wait(c.id)
            await self.exited(c, info)

        c.monitor = asyncio.create_task(monitor())

    def remove_cgroup(self, c: Container) -> None:
        """Kill whatever is left in the container's cgroup and remove it (the shim normally does)."""
        try:
            self.cgroups.remove(self.cgroup_of(c))
        except OSError:
            log.exception("removing the cgroup of %s failed", c.id[:12])

    async def exited(self, c: Container, info: ExitInfo) -> None:
        if not info.recorded:  # the shim was killed: the container's processes may still run
            self.remove_cgroup(c)
        elif c.status == Status.PAUSED:
            with contextlib.suppress(OSError):
                self.cgroups.thaw(self.cgroup_of(c))
        c.state.exited(info.exit_code, info.oom_killed, info.finished_at or timestamp())
        c.data["ExecIDs"] = None
        self.store.save_state(c)
        for listener in self.exit_listeners:
            listener(c)
        self.runtime.cleanup(c.id)
        if info.oom_killed:
            self.events.publish("container", "oom", c.id, c.event_attrs())
        self.events.publish("container", "die", c.id, c.event_attrs(exitCode=str(info.exit_code)))
        resolve(c.exit_waiters, info.exit_code)
        if c.host_config.get("AutoRemove") and not c.restarting and self.store.find(c.id) is not None:
            await self.auto_remove(c)
