"""`docker start` under the container's lock: the runtime creates the first process, the networks are
plumbed into its namespace while it waits before execve, then it runs; a failure on the way undoes what
was done and is recorded and answered in Docker's words (moby's containerStart)."""

import asyncio
import logging
import signal as signals
from collections.abc import Awaitable, Callable
from typing import NoReturn

from daemon.containers.attach import connect_pending
from daemon.containers.monitor import ExitMonitor
from daemon.containers.networking import Networking, joined_container
from daemon.containers.runspec import build_spec, start_failure
from daemon.containers.security import SeccompPolicy
from daemon.containers.state import check_start
from daemon.containers.store import Container, ContainerStore
from daemon.containers.waiters import resolve
from daemon.errors import Conflict, DaemonError, InvalidParameter, SystemError_, error_words
from daemon.events.bus import EventBus
from daemon.runtime.interface import ContainerRuntime, RuntimeFailure
from daemon.runtime.spec import ContainerSpec
from daemon.timefmt import now_rfc3339

log = logging.getLogger(__name__)


class Starter:
    def __init__(
        self,
        store: ContainerStore,
        runtime: ContainerRuntime,
        events: EventBus,
        networking: Networking,
        seccomp: SeccompPolicy,
        monitor: ExitMonitor,
        auto_remove: Callable[[Container], Awaitable[None]],
    ) -> None:
        self.store, self.runtime, self.events, self.networking = store, runtime, events, networking
        self.seccomp, self.monitor = seccomp, monitor
        self.auto_remove = auto_remove  # AutoRemove's removal, the container's lock held

    async def start_locked(self, c: Container) -> None:
        check_start(c.status, c.id)
        spec = await self._spec(c)  # `container:` errors (x not running, x gone) answered as they are
        try:
            pid = await self.runtime.create(spec)
        except Exception as e:
            c.fail_pending_attaches()
            if not isinstance(e, RuntimeFailure | OSError | DaemonError):
                log.exception("creating the container process failed")
            await self._start_failed(c, str(e))
        # side by side: both wait on others (the kernel plumbing the networks, all or nothing; the shim)
        plumbed, connected = await asyncio.gather(
            self.networking.attach(c, pid), connect_pending(c, self.runtime), return_exceptions=True
        )
        if isinstance(plumbed, Exception):
            if not isinstance(plumbed, OSError | DaemonError):
                log.error("connecting the container to its networks failed", exc_info=plumbed)
            await self._abort_created(c, pid)
            await self._start_failed(c, error_words(plumbed), network=plumbed)
        try:
            if isinstance(plumbed, BaseException):  # cancelled: the undoing below, then on its way
                raise plumbed
            if isinstance(connected, BaseException):
                raise connected
            await self.runtime.start(c.id)
        except BaseException as e:
            code = await self._abort_created(c, pid)
            try:
                await self.networking.detach(c)
            except Exception:
                log.exception("releasing the networks of container %s failed", c.id[:12])
            if isinstance(e, RuntimeFailure):
                await self._start_failed(c, str(e), code)
            if isinstance(e, Exception):
                log.exception("starting container %s failed", c.id[:12])
                await self._start_failed(c, str(e))
            raise
        c.state.running(pid, now_rfc3339())
        self.store.save_state(c)
        self.events.publish("container", "start", c.id, c.event_attrs())
        self.monitor.watch(c)

    async def _spec(self, c: Container) -> ContainerSpec:
        spec = await build_spec(c, self.seccomp)
        joined = joined_container(c)
        if joined is not None:  # its network, and with it its hostname and /etc files
            other = self.store.get(joined)
            if not other.running or not other.pid:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            spec.netns_path = f"/proc/{other.pid}/ns/net"  # the namespace of its first process
            spec.hostname, spec.domainname = (
                other.config.get("Hostname") or "",
                other.config.get("Domainname") or "",
            )
            for path, key in (
                ("/etc/hostname", "HostnamePath"),
                ("/etc/hosts", "HostsPath"),
                ("/etc/resolv.conf", "ResolvConfPath"),
            ):
                spec.etc_files[path] = other.data[key]
        return spec

    async def _abort_created(self, c: Container, pid: int) -> int:
        """A created container that must not run: kill its first process (before or after its execve)
        and wait for it; its exit code."""
        self.runtime.kill(c.id, pid, signals.SIGKILL)
        info = await self.runtime.wait(c.id)
        self.runtime.release(c.id)
        return info.exit_code

    async def _start_failed(
        self, c: Container, message: str, code: int | None = None, network: Exception | None = None
    ) -> NoReturn:
        """Record why the start failed, tell the waiters, then raise with Docker's words."""
        self.runtime.remove_cgroup(c.id)  # normally gone with its shim; a shim that died or hung may leave it
        # a network's refusal (a port taken, an address in use) is in its own words, as moby's
        code, full = (128, message) if network is not None else start_failure(message, code)
        c.state.start_failed(code, full)
        self.store.save_state(c)
        self.events.publish("container", "die", c.id, c.event_attrs(exitCode=str(code)))
        resolve(c.exit_waiters, code)
        if c.host_config.get("AutoRemove"):
            await self.auto_remove(c)
        if isinstance(network, DaemonError):
            raise network
        if code in (126, 127):
            raise InvalidParameter(full)
        raise SystemError_(full)
