"""Exit handling (moby's monitor.go): watch each running container, record its exit, tell its waiters and
listeners, and re-derive every container's state at start-up. Restart policies and healthchecks hook in
here, where an exit is seen."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from daemon.containers.networking import Networking
from daemon.containers.state import Status
from daemon.containers.store import Container, ContainerStore
from daemon.containers.waiters import resolve
from daemon.events.bus import EventBus
from daemon.runtime.interface import ContainerRuntime, ExitInfo
from daemon.timefmt import now_rfc3339

log = logging.getLogger(__name__)

ExitListener = Callable[[Container], None]


class ExitMonitor:
    def __init__(
        self,
        store: ContainerStore,
        runtime: ContainerRuntime,
        events: EventBus,
        networking: Networking,
        auto_remove: Callable[[Container], Awaitable[None]],
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.events = events
        self.networking = networking
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
        if c.status == Status.REMOVING:  # a removal the daemon's end interrupted: `rm` may try again
            c.state.dead()
        if not c.running:
            # a shim left from a crash between its start and the record saying so: undo it
            if self.runtime.has_leftovers(c.id):
                self.runtime.discard(c.id)
            return
        if self.runtime.alive(c.id):
            frozen = self.runtime.is_paused(c.id)
            if frozen and c.status == Status.RUNNING:
                c.state.paused()
            elif not frozen and c.status == Status.PAUSED:
                c.state.resumed()
            self.watch(c)
        else:
            info = self.runtime.read_exit(c.id) or ExitInfo(255, False, now_rfc3339(), recorded=False)
            await self.exited(c, info)

    # --- exits ----------------------------------------------------------------------------------

    def watch(self, c: Container) -> None:
        async def monitor() -> None:
            try:
                await self.exited(c, await self.runtime.wait(c.id))
            except Exception:  # nobody awaits this task: say what went wrong here
                log.exception("handling the exit of container %s failed", c.id[:12])

        c.monitor = asyncio.create_task(monitor())

    async def exited(self, c: Container, info: ExitInfo) -> None:
        try:
            await self.networking.detach(c)
        except Exception:  # the exit must be recorded whatever happens to the network's cleanup
            log.exception("releasing the networks of container %s failed", c.id[:12])
        c.state.exited(info.exit_code, info.oom_killed, info.finished_at or now_rfc3339())
        c.data["ExecIDs"] = None
        self.store.save_state(c)
        for listener in self.exit_listeners:
            listener(c)
        self.runtime.release(c.id)  # after the save: it removes what the shim recorded
        if info.oom_killed:
            self.events.publish("container", "oom", c.id, c.event_attrs())
        self.events.publish("container", "die", c.id, c.event_attrs(exitCode=str(info.exit_code)))
        resolve(c.exit_waiters, info.exit_code)
        if c.host_config.get("AutoRemove") and not c.restart_requested and self.store.find(c.id) is not None:
            await self.auto_remove(c)
