"""The container life cycle: create, start, stop, kill, wait, remove, pause, rename, update.

Owns the records and calls the runtime; knows nothing of HTTP. Creation is in creation.py, the Docker ->
runtime translation in runspec.py, exit handling and restore in monitor.py."""

import asyncio
import contextlib
import logging
import os
import signal as signals
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from daemon.containers import listing
from daemon.containers.attach import Attachment, AttachOptions
from daemon.containers.creation import ImageLookup, create_container, invalid_name, name_in_use
from daemon.containers.locking import Held, when_free
from daemon.containers.logs import LogRequest, LogStream, read_logs
from daemon.containers.monitor import ExitListener, ExitMonitor
from daemon.containers.names import valid_name
from daemon.containers.networking import Networking, public_settings
from daemon.containers.record import RESOURCE_KEYS
from daemon.containers.removal import RemovalFailed, Remover
from daemon.containers.results import ContainerSizes, WaitResult
from daemon.containers.security import SeccompPolicy
from daemon.containers.signals import parse_signal as parse_signal_name
from daemon.containers.sizes import SizeMeter
from daemon.containers.starting import Starter
from daemon.containers.state import (
    Status,
    check_pause,
    check_remove,
    check_running,
    check_unpause,
)
from daemon.containers.store import AttachRequest, Container, ContainerStore
from daemon.containers.top import top
from daemon.containers.update_body import parse_update
from daemon.containers.waiters import WaitError, exit_future, wait_for, wait_result
from daemon.errors import Conflict, InvalidParameter, NotModified, SystemError_
from daemon.events.bus import EventBus
from daemon.files.trash import Trash
from daemon.runtime.cgroups import Resources, validate
from daemon.runtime.interface import ContainerRuntime, RuntimeFailure, ShimStream

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 30.0

__all__ = ["ContainerService", "RemovalFailed", "WaitError"]


class ImageBackend(ImageLookup, Protocol):
    def size(self, image_id: str) -> int: ...

    def collect_garbage(self) -> None: ...


@dataclass
class Stopping:
    """A stop under way: the stop signal is sent, the exit awaited."""

    exited: "asyncio.Future[int]"
    timeout: int  # seconds before SIGKILL; negative: wait forever


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    """ "KILL", "SIGKILL", "9" -> 9, with Docker's error for anything else."""
    if value is None or value == "":
        return default
    try:
        return parse_signal_name(str(value))
    except ValueError as e:
        raise InvalidParameter(str(e)) from None


class ContainerService:
    def __init__(
        self,
        data_root: Path,
        runtime: ContainerRuntime,
        images: ImageBackend,
        events: EventBus,
        networking: Networking,
        seccomp: SeccompPolicy | None = None,
    ) -> None:
        self.store = ContainerStore(data_root / "containers", Trash(data_root / "trash"))
        self.seccomp = seccomp or SeccompPolicy()
        self.runtime = runtime
        self.images = images
        self.events = events
        self.networking = networking
        self.ncpu = os.cpu_count() or 1
        self._tasks: set[asyncio.Task[Any]] = set()  # requests' work that runs on without its client
        self.meter = SizeMeter(images)
        self.remover = Remover(self.store, images, events, self.meter)
        self.monitor = ExitMonitor(self.store, runtime, events, networking, self._auto_remove)
        self.starter = Starter(
            self.store, runtime, events, networking, self.seccomp, self.monitor, self._remove_failed_start
        )

    @property
    def exit_listeners(self) -> list[ExitListener]:
        return self.monitor.exit_listeners

    async def restore(self) -> None:
        await self.monitor.restore()

    def usage(self, image_id: str) -> list[tuple[str, bool]]:
        """Containers using an image: (id, running), for the image service's delete checks."""
        return [(c.id, c.running) for c in self.store if c.data["Image"] == image_id]

    # --- queries --------------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    async def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.get(ref)
        data = c.record()  # a new dict: adding the sizes changes nothing stored
        data["NetworkSettings"] = public_settings(data["NetworkSettings"])
        if size:
            sizes = await self.sizes(c)
            data["SizeRw"], data["SizeRootFs"] = sizes.rw, sizes.root_fs
        return data

    def all(self) -> list[Container]:
        return list(self.store)

    def save(self, c: Container) -> None:
        self.store.save(c)

    # --- create, start --------------------------------------------------------------------------

    async def create(self, name: str | None, body: Any) -> dict[str, Any]:
        c, warnings = await create_container(
            self.store, self.images, self.seccomp, self.networking, self.ncpu, name, body
        )
        self.events.publish("container", "create", c.id, c.event_attrs())
        return {"Id": c.id, "Warnings": warnings}

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        await when_free(c.lock, lambda held: self._start_held(c), self._tasks)

    async def _start_held(self, c: Container) -> None:
        try:
            await self.starter.start_locked(c)
        except BaseException:
            c.fail_pending_attaches()  # an attach waiting for this start must not wait forever
            raise

    # --- attach, wait ---------------------------------------------------------------------------

    async def attach(
        self, ref: str, stdin: bool, stdout: bool, stderr: bool
    ) -> tuple[Container, ShimStream | None]:
        """A shim stream now if running; for a container not started yet, one when it starts."""
        c = self.get(ref)
        if c.status in (Status.RUNNING, Status.PAUSED):
            return c, await self.runtime.attach(c.id, stdin, stdout, stderr)
        if c.status in (Status.EXITED, Status.DEAD) and not c.config.get("OpenStdin"):
            return c, None
        fut: asyncio.Future[ShimStream] = asyncio.get_running_loop().create_future()
        c.pending_attaches.append(AttachRequest(stdin, stdout, stderr, fut))
        return c, await fut

    def wait_future(self, ref: str, condition: str) -> "tuple[Container, asyncio.Future[int]]":
        """Registers the wait at once (before the caller answers 200), the exit code comes later."""
        c = self.get(ref)
        return c, wait_for(c, condition)

    # --- stop, kill, restart --------------------------------------------------------------------

    async def kill(self, ref: str, signal: str | None) -> None:
        c = self.get(ref)
        sig = parse_signal(signal)
        check_running(c.status, c.id)
        exited = exit_future(c) if sig == signals.SIGKILL else None
        self._signal(c, sig)  # no lock: a kill never waits for a stop (or anything) under way
        if exited is not None:
            # as Docker: a SIGKILL returns once the container is down (clients inspect right after)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited, KILL_WAIT)

    def _signal(self, c: Container, sig: int) -> None:
        """Send sig to the container, and Docker's "kill" event that every signal sent gets."""
        self.runtime.kill(c.id, c.pid, sig)
        self.events.publish("container", "kill", c.id, c.event_attrs(signal=str(int(sig))))

    async def stop(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(ref)
        await when_free(c.lock, lambda held: self._stop(c, held, timeout, signal), self._tasks)

    async def _stop(self, c: Container, held: Held, timeout: int | None, signal: str | None) -> None:
        if not c.running:
            raise NotModified("container already stopped")
        stopping = self._send_stop(c, timeout, signal)
        held.release()  # the grace period is spent without the lock: kill and rm -f need not wait
        await self._finish_stop(c, stopping)

    def _send_stop(self, c: Container, timeout: int | None, signal: str | None) -> Stopping:
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = DEFAULT_STOP_TIMEOUT if timeout is None else int(timeout)
        sig = parse_signal(signal or c.config.get("StopSignal"), signals.SIGTERM)
        exited = exit_future(c)
        self._signal(c, sig)
        return Stopping(exited, timeout)

    async def _finish_stop(self, c: Container, stopping: Stopping) -> None:
        """Docker's stop: the grace period, then SIGKILL. It runs to its end even when the client
        that asked for it has gone (as in Docker); with no timeout it merely waits."""
        exited = stopping.exited
        try:
            await asyncio.wait_for(asyncio.shield(exited), None if stopping.timeout < 0 else stopping.timeout)
        except TimeoutError:
            self._signal(c, signals.SIGKILL)
            await asyncio.wait_for(exited, KILL_WAIT)
        if self.store.find(c.id) is c:  # not when an `rm -f` came first
            self.events.publish("container", "stop", c.id, c.event_attrs())

    async def restart(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(ref)
        await when_free(c.lock, lambda held: self._restart(c, held, timeout, signal), self._tasks)

    async def _restart(self, c: Container, held: Held, timeout: int | None, signal: str | None) -> None:
        c.restart_requested = True  # its exit on the way is not the end that AutoRemove waits for
        try:
            if c.running:
                stopping = self._send_stop(c, timeout, signal)
                held.release()  # as for stop; the start below takes the lock again
                await self._finish_stop(c, stopping)
                if c.monitor:
                    await c.monitor
                await held.reacquire()
            await self._start_held(c)
        finally:
            c.restart_requested = False
        self.events.publish("container", "restart", c.id, c.event_attrs())

    # --- pause ----------------------------------------------------------------------------------

    async def pause(self, ref: str) -> None:
        await self._set_paused(self.get(ref), True)

    async def unpause(self, ref: str) -> None:
        await self._set_paused(self.get(ref), False)

    async def _set_paused(self, c: Container, paused: bool) -> None:
        action = "pause" if paused else "unpause"
        async with c.lock:  # one at a time, and none while a start or removal is under way
            (check_pause if paused else check_unpause)(c.status, c.id)
            try:
                await (self.runtime.pause if paused else self.runtime.resume)(c.id)
            except (OSError, RuntimeFailure) as e:
                raise SystemError_(f"cannot {action} container {c.id}: {e}") from e
            if paused:
                c.state.paused()
            else:
                c.state.resumed()
            self.store.save_state(c)
            self.events.publish("container", action, c.id, c.event_attrs())

    # --- remove, rename, update, prune ----------------------------------------------------------

    async def remove(self, ref: str, force: bool, volumes: bool) -> None:
        """`volumes` (rm -v): no container has a volume of its own yet, so there is none to remove."""
        c = self.get(ref)
        try:
            await when_free(c.lock, lambda held: self._remove_requested(c, force), self._tasks)
        except RemovalFailed as e:  # Docker's words
            raise SystemError_(f'cannot remove container "{ref}": {e}') from e

    async def _remove_requested(self, c: Container, force: bool) -> None:
        check_remove(c.status, c.id, force)
        if c.running:
            exited = exit_future(c)
            self._signal(c, signals.SIGKILL)
            await asyncio.wait_for(exited, KILL_WAIT)
            if self.store.find(c.id) is None:
                return  # AutoRemove's exit handler removed it already
        await self.remover.remove(c)

    async def _remove_failed_start(self, c: Container) -> None:
        await self._auto_remove(c, lock_held=True)

    async def _auto_remove(self, c: Container, lock_held: bool = False) -> None:
        """--rm: nobody asked for this removal, so a failure is logged (its waiters learn of it)."""
        try:
            if lock_held:  # by the start that failed
                await self.remover.remove(c)
            else:
                async with c.lock:
                    if not c.running:  # not when a start came first, while this exit waited for the lock
                        await self.remover.remove(c)
        except RemovalFailed as e:
            log.warning("removing container %s failed: %s", c.id[:12], e)

    async def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        new = new_name.lstrip("/")
        if not new or not valid_name(new):
            raise invalid_name(new_name)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        owner = self.store.name_owner(new)
        if owner:
            raise name_in_use(new, owner)
        old = c.name
        self.store.rename(c, new)
        self.networking.renamed(c)
        self.store.save(c)
        self.events.publish("container", "rename", c.id, c.event_attrs(oldName="/" + old))

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        c = self.get(ref)
        update = parse_update(body, c.id, bool(c.host_config.get("AutoRemove")))
        changes = update.resources
        merged = {**c.host_config, **changes}
        if changes.get("NanoCpus"):
            merged["CpuQuota"], merged["CpuPeriod"] = 0, 0
        if changes.get("Memory") and "MemorySwap" not in changes and c.host_config.get("MemorySwap", 0) > 0:
            merged["MemorySwap"] = 0  # let the limit follow the new memory, as Docker does
        try:
            resources = Resources.from_host_config(merged)
            validate(resources, self.ncpu)
        except ValueError as e:
            raise InvalidParameter(str(e)) from e
        if c.running:
            try:
                await self.runtime.update(c.id, resources)
            except (OSError, ValueError) as e:
                raise InvalidParameter(f"Cannot update container {c.id}: {e}") from e
        c.host_config.update({k: merged[k] for k in RESOURCE_KEYS if k in merged})
        if update.restart_policy is not None:
            c.host_config["RestartPolicy"] = update.restart_policy
        self.store.save(c)
        self.events.publish("container", "update", c.id, c.event_attrs())
        return {"Warnings": []}

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        return await self.remover.prune(self.all(), filters)

    # --- resize, top ----------------------------------------------------------------------------

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        check_running(c.status, c.id)
        if c.config.get("Tty"):
            try:
                await self.runtime.resize(c.id, None, height, width)
            except RuntimeFailure as e:  # the container ended meanwhile
                raise Conflict(f"Container {c.id} is not running: {e}") from e

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        c = self.get(ref)
        check_running(c.status, c.id)
        try:
            pids = await self.runtime.pids(c.id)
        except OSError as e:  # the container ended meanwhile: its cgroup is gone
            raise Conflict(f"Container {c.id} is not running") from e
        return await top(pids, ps_args)

    # --- for the routes -------------------------------------------------------------------------

    async def list_summaries(
        self, all_: bool, limit: int | None, filters: dict[str, list[str]], size: bool
    ) -> list[dict[str, Any]]:
        """`docker ps`. Sizes are measured one container after the other, off the event loop: a
        caller that is cancelled (its client left) stops the rest."""
        chosen = listing.select(self.all(), all_, limit, filters, await self._ancestor_ids(filters))
        if not size:
            return [listing.summary(c) for c in chosen]
        return [listing.summary(c, await self.sizes(c)) for c in chosen]

    async def _ancestor_ids(self, filters: dict[str, list[str]]) -> dict[str, str]:
        """The image IDs that the `ancestor` filter's references name; one that names no image
        matches containers by the name they were created with only."""
        ids = {}
        for ref in filters.get("ancestor", []):
            with contextlib.suppress(Exception):
                ids[ref] = (await self.images.resolve(ref)).id
        return ids

    async def sizes(self, c: Container) -> ContainerSizes:
        return await self.meter.sizes(c)

    def logs(self, ref: str, request: LogRequest) -> LogStream:
        c = self.get(ref)
        query = request.query()

        def still_running() -> bool:  # following ends when the container stops or is removed
            return c.running and self.store.find(c.id) is not None

        return LogStream(bool(c.config.get("Tty")), read_logs(c.data["LogPath"], query, still_running))

    def wait(self, ref: str, condition: str) -> "asyncio.Future[WaitResult]":
        """The wait is registered at once (the caller answers 200 first); its result comes later."""
        c, exited = self.wait_future(ref, condition)
        return asyncio.ensure_future(wait_result(c, exited))

    def prepare_attach(self, ref: str, options: AttachOptions) -> Attachment:
        """An attach to run over the client's connection once the route has taken it over."""
        c = self.get(ref)

        async def connect() -> ShimStream | None:
            _, shim = await self.attach(c.id, options.stdin, options.stdout, options.stderr)
            return shim

        return Attachment(c, options, connect)
