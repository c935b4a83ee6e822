"""The container life cycle: create, start, stop, kill, wait, remove, pause, rename, update.

Owns the records and calls the runtime; knows nothing of HTTP.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import signal as signals
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

from daemon.containers import bind_specs, listing
from daemon.containers.attach import Attachment, AttachOptions
from daemon.containers.locking import Held, when_free
from daemon.containers.logs import LogRequest, LogStream, read_logs
from daemon.containers.model import parse_create
from daemon.containers.names import random_name, valid_name
from daemon.containers.record import RESOURCE_KEYS, new_record
from daemon.containers.results import ContainerSizes, WaitResult
from daemon.containers.runspec import build_spec, container_caps, write_etc_files
from daemon.containers.security import SeccompPolicy
from daemon.containers.signals import parse_signal as parse_signal_name
from daemon.containers.state import (
    ZERO_TIME,
    Status,
    check_pause,
    check_remove,
    check_running,
    check_start,
    check_unpause,
)
from daemon.containers.store import Container, ContainerStore
from daemon.containers.update_body import parse_update
from daemon.containers.validate import check_create
from daemon.errors import Conflict, InvalidParameter, NotFound, NotModified, SystemError_
from daemon.events.bus import EventBus
from daemon.runtime.cgroups import CgroupManager, Resources, validate
from daemon.runtime.client import ExitInfo, Runtime, RuntimeFailure, ShimStream
from daemon.runtime.logfile import timestamp
from daemon.store.trash import Trash
from daemon.store.trees import remove_tree, tree_size

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 30.0
SIZE_WALKERS = 2  # threads measuring containers' sizes; never more, whatever the number of `ps -s`


class ImageBackend(Protocol):
    async def resolve(self, ref: str) -> Any: ...

    def layer_dirs(self, image_id: str) -> list[str]: ...

    def size(self, image_id: str) -> int: ...

    def collect_garbage(self) -> None: ...


@dataclass
class Stopping:
    """A stop under way: the stop signal is sent, the exit awaited."""

    exited: "asyncio.Future[int]"
    timeout: int  # seconds before SIGKILL; negative: wait forever


class RemovalFailed(Exception):
    """The container's directory could not be taken away: the container stays, dead."""


class WaitError(Exception):
    """What a waiter gets instead of an exit code when the awaited event failed (a removal)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class AttachRequest:
    stdin: bool
    stdout: bool
    stderr: bool
    future: "asyncio.Future[ShimStream]"


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
        runtime: Runtime,
        images: ImageBackend,
        events: EventBus,
        cgroups: CgroupManager,
        cgroup_parent: str = "pydockerd",
        seccomp: SeccompPolicy | None = None,
    ) -> None:
        self.store = ContainerStore(data_root / "containers", Trash(data_root / "trash"))
        self.seccomp = seccomp or SeccompPolicy()
        self.runtime = runtime
        self.images = images
        self.events = events
        self.cgroups = cgroups
        self.cgroup_parent = cgroup_parent
        self.ncpu = os.cpu_count() or 1
        self._tasks: set[asyncio.Task[Any]] = set()  # requests' work that runs on without its client
        self._size_walkers = ThreadPoolExecutor(SIZE_WALKERS, thread_name_prefix="size-walk")
        self.exit_listeners: list[Callable[[Container], None]] = []  # e.g. the exec service forgets execs

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
        c.pending_attaches = []
        if not c.running:
            # a shim left from a crash between its start and the record saying so: undo it
            if self.runtime.exec_dir(c.id).exists():
                self.runtime.kill_shim(c.id)
                self._remove_cgroup(c)
                self.runtime.cleanup(c.id)
            return
        if self.runtime.shim_alive(c.id):
            frozen = False
            with contextlib.suppress(OSError):
                frozen = self.cgroups.is_frozen(self._cgroup(c))
            c.state["Paused"] = frozen
            c.state["Status"] = (Status.PAUSED if frozen else Status.RUNNING).value
            self._watch(c)
        else:
            info = self.runtime.read_exit(c.id) or ExitInfo(255, False, timestamp(), recorded=False)
            await self._exited(c, info)

    def usage(self, image_id: str) -> list[tuple[str, bool]]:
        """Containers using an image: (id, running), for the image service's delete checks."""
        return [(c.id, c.running) for c in self.store if c.data["Image"] == image_id]

    # --- queries --------------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    async def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.get(ref)
        data = dict(c.data)
        if size:
            sizes = await self.sizes(c)
            data["SizeRw"], data["SizeRootFs"] = sizes.rw, sizes.root_fs
        return data

    async def size_rw(self, c: Container) -> int:
        """The size of what the container wrote, measured in a thread of its own (a container may
        hold millions of files, or a tree deeper than any path; see daemon.store.trees for bounds)."""
        upper = c.dir / "rw" / "upper"
        loop = asyncio.get_running_loop()
        log.debug("measuring the size of container %s", c.id[:12])
        size = await loop.run_in_executor(self._size_walkers, tree_size, upper)
        if not size.complete:
            log.info("size of container %s: counted %d entries, not all", c.id[:12], size.entries)
        return size.bytes

    def all(self) -> list[Container]:
        return list(self.store)

    # --- create ---------------------------------------------------------------------------------

    async def create(self, name: str | None, body: Any) -> dict[str, Any]:
        req = parse_create(body)
        hc = req.HostConfig_
        hc_raw = (body or {}).get("HostConfig") or {}
        if name:
            if not valid_name(name):
                raise InvalidParameter(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            name = name.lstrip("/")
            owner = self.store.name_owner(name)
            if owner:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                )
        if not req.Image:
            raise InvalidParameter("config.Image: field is required")  # Docker: "No command specified" later
        warnings = check_create(req, body, self.ncpu)
        # compiled now: a profile libseccomp refuses is refused here, and the start finds it cached
        await self.seccomp.filter_for(hc_raw, container_caps(hc_raw))
        image = await self.images.resolve(req.Image)
        lower = self.images.layer_dirs(image.id)
        cid = secrets.token_hex(32)
        name = name or random_name(self.store.names())
        cdir = self.store.container_dir(cid)
        record = new_record(cid, name, req, image.id, image.config, cdir, lower)
        if not record["Path"]:
            raise InvalidParameter("no command specified")
        binds = bind_specs.parse_binds(hc.Binds if hc else None)
        record["Mounts"] = [b.inspect() for b in binds]
        c = Container(record, cdir)
        try:
            for sub in ("rw/upper", "rw/work"):
                (cdir / sub).mkdir(parents=True, exist_ok=True)
            write_etc_files(c)
            self.store.save(c)  # the record last: a crash before it leaves a dir that load() removes
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(cdir)  # nothing but what we wrote just now
            raise
        self.store.add(c)
        self.events.publish("container", "create", cid, self._attrs(c))
        return {"Id": cid, "Warnings": warnings}

    def _attrs(self, c: Container, **extra: str) -> dict[str, str]:
        attrs = {"image": c.config.get("Image", ""), "name": c.name}
        attrs.update({k: str(v) for k, v in (c.config.get("Labels") or {}).items()})
        attrs.update(extra)
        return attrs

    def _cgroup(self, c: Container) -> str:
        return f"{self.cgroup_parent}/{c.id}"

    # --- start ----------------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        await when_free(c.lock, lambda held: self._start_held(c), self._tasks)

    async def _start_held(self, c: Container) -> None:
        try:
            await self._start_locked(c)
        except BaseException:
            self._fail_pending(c)  # an attach waiting for this start must not wait forever
            raise

    async def _start_locked(self, c: Container) -> None:
        check_start(c.status, c.id)
        try:
            pid = await self.runtime.create(await build_spec(c, self.seccomp, self._cgroup(c)))
        except Exception as e:
            self._fail_pending(c)
            if not isinstance(e, RuntimeFailure | OSError):
                log.exception("creating the container process failed")
            await self._start_failed(c, str(e))
            raise  # not reached: _start_failed raises
        await self._connect_pending(c)
        try:
            await self.runtime.start(c.id)
        except RuntimeFailure as e:
            info = await self.runtime.wait(c.id)
            self.runtime.cleanup(c.id)
            await self._start_failed(c, str(e), info.exit_code)
        c.state.update(
            Status=Status.RUNNING.value,
            Running=True,
            Paused=False,
            Pid=pid,
            ExitCode=0,
            Error="",
            OOMKilled=False,
            StartedAt=timestamp(),
            FinishedAt=ZERO_TIME,
        )
        self.store.save_state(c)
        self.events.publish("container", "start", c.id, self._attrs(c))
        self._watch(c)

    async def _start_failed(self, c: Container, message: str, code: int | None = None) -> NoReturn:
        """Docker's words for a runtime failure, the exit code the CLI derives from them, then raise."""
        self._remove_cgroup(c)  # normally gone with its shim; a shim that died or hung may leave it
        if code is None or code == 0:
            if "executable file not found" in message or "no such file or directory" in message:
                code = 127
            elif "permission denied" in message:
                code = 126
            else:
                code = 128
        full = (
            "failed to create task for container: failed to create shim task: OCI runtime create failed: "
            f"unable to start container process: {message}: unknown"
        )
        if "not a directory" in message.lower():  # moby's hint for a bind of the wrong kind, and its 127
            full += (
                ": Are you trying to mount a directory onto a file (or vice-versa)? "
                "Check if the specified host path exists and is the expected type"
            )
            code = 127
        c.state.update(ExitCode=code, Error=full)
        self.store.save_state(c)
        self.events.publish("container", "die", c.id, self._attrs(c, exitCode=str(code)))
        self._resolve(c.exit_waiters, code)
        if c.host_config.get("AutoRemove"):
            await self._auto_remove(c)
        if code in (126, 127):
            raise InvalidParameter(full)
        raise SystemError_(full)

    async def _connect_pending(self, c: Container) -> None:
        pending, c.pending_attaches = c.pending_attaches, []
        for req in pending:
            if req.future.done():
                continue
            try:
                stream = await self.runtime.attach(c.id, req.stdin, req.stdout, req.stderr)
            except RuntimeFailure as e:
                req.future.set_exception(e)
            else:
                req.future.set_result(stream)

    def _fail_pending(self, c: Container) -> None:
        pending, c.pending_attaches = c.pending_attaches, []
        for req in pending:
            if not req.future.done():
                req.future.set_exception(RuntimeFailure("the container did not start"))

    def _watch(self, c: Container) -> None:
        async def monitor() -> None:
            info = await self.runtime.wait(c.id)
            await self._exited(c, info)

        c.monitor = asyncio.create_task(monitor())

    def _remove_cgroup(self, c: Container) -> None:
        """Kill whatever is left in the container's cgroup and remove it (the shim normally does)."""
        try:
            self.cgroups.remove(self._cgroup(c))
        except OSError:
            log.exception("removing the cgroup of %s failed", c.id[:12])

    async def _exited(self, c: Container, info: ExitInfo) -> None:
        if not info.recorded:  # the shim was killed: the container's processes may still run
            self._remove_cgroup(c)
        elif c.status == Status.PAUSED:
            with contextlib.suppress(OSError):
                self.cgroups.thaw(self._cgroup(c))
        c.state.update(
            Status=Status.EXITED.value,
            Running=False,
            Paused=False,
            Restarting=False,
            Pid=0,
            ExitCode=info.exit_code,
            OOMKilled=info.oom_killed,
            FinishedAt=info.finished_at or timestamp(),
        )
        c.data["ExecIDs"] = None
        self.store.save_state(c)
        for listener in self.exit_listeners:
            listener(c)
        self.runtime.cleanup(c.id)
        if info.oom_killed:
            self.events.publish("container", "oom", c.id, self._attrs(c))
        self.events.publish("container", "die", c.id, self._attrs(c, exitCode=str(info.exit_code)))
        self._resolve(c.exit_waiters, info.exit_code)
        if c.host_config.get("AutoRemove") and not c.restarting and self.store.find(c.id) is not None:
            async with c.lock:
                await self._auto_remove(c)

    async def _auto_remove(self, c: Container) -> None:
        """--rm: nobody asked for this removal, so a failure is logged (its waiters learn of it)."""
        try:
            await self._remove(c)
        except RemovalFailed as e:
            log.warning("removing container %s failed: %s", c.id[:12], e)

    @staticmethod
    def _resolve(waiters: list["asyncio.Future[int]"], code: int, error: str = "") -> None:
        """Answer the waiters: the exit code, or a WaitError carrying it and why."""
        for fut in waiters:
            if not fut.done():
                if error:
                    fut.set_exception(WaitError(code, error))
                else:
                    fut.set_result(code)
        waiters.clear()

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
        """Registers the wait at once (before the caller answers 200), the result comes later."""
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        for waiters in (c.removed_waiters, c.exit_waiters):  # those of clients that left
            waiters[:] = [w for w in waiters if not w.done()]
        if condition == "removed":
            c.removed_waiters.append(fut)
        elif condition == "next-exit" or c.running:
            c.exit_waiters.append(fut)
        else:
            fut.set_result(int(c.state["ExitCode"]))
        return c, fut

    # --- stop, kill, restart --------------------------------------------------------------------

    async def kill(self, ref: str, signal: str | None) -> None:
        c = self.get(ref)
        sig = parse_signal(signal)
        check_running(c.status, c.id)
        exited = self._exit_future(c) if sig == signals.SIGKILL else None
        self._signal(c, sig)  # no lock: a kill never waits for a stop (or anything) under way
        self.events.publish("container", "kill", c.id, self._attrs(c, signal=str(sig)))
        if exited is not None:
            # as Docker: a SIGKILL returns once the container is down (clients inspect right after)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited, KILL_WAIT)

    @staticmethod
    def _exit_future(c: Container) -> "asyncio.Future[int]":
        """Resolved with the exit code when the container next exits: armed before the signal is sent."""
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(exited)
        return exited

    def _signal(self, c: Container, sig: int) -> None:
        self.runtime.signal(c.pid, sig)
        if c.status == Status.PAUSED and sig == signals.SIGKILL:
            with contextlib.suppress(OSError):
                self.cgroups.thaw(self._cgroup(c))  # a frozen process dies only once thawed

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
        exited = self._exit_future(c)
        self._signal(c, sig)
        self.events.publish("container", "kill", c.id, self._attrs(c, signal=str(sig)))
        return Stopping(exited, timeout)

    async def _finish_stop(self, c: Container, stopping: Stopping) -> None:
        """Docker's stop: the grace period, then SIGKILL. It runs to its end even when the client
        that asked for it has gone (as in Docker); with no timeout it merely waits."""
        exited = stopping.exited
        try:
            await asyncio.wait_for(asyncio.shield(exited), None if stopping.timeout < 0 else stopping.timeout)
        except TimeoutError:
            self._signal(c, signals.SIGKILL)
            self.events.publish("container", "kill", c.id, self._attrs(c, signal=str(int(signals.SIGKILL))))
            await asyncio.wait_for(exited, KILL_WAIT)
        if self.store.find(c.id) is c:  # not when an `rm -f` came first
            self.events.publish("container", "stop", c.id, self._attrs(c))

    async def restart(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(ref)
        await when_free(c.lock, lambda held: self._restart(c, held, timeout, signal), self._tasks)

    async def _restart(self, c: Container, held: Held, timeout: int | None, signal: str | None) -> None:
        c.restarting = True  # its exit on the way is not the end that AutoRemove waits for
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
            c.restarting = False
        self.events.publish("container", "restart", c.id, self._attrs(c))

    # --- pause ----------------------------------------------------------------------------------

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        check_pause(c.status, c.id)
        await self._set_paused(c, True)

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        check_unpause(c.status, c.id)
        await self._set_paused(c, False)

    async def _set_paused(self, c: Container, paused: bool) -> None:
        await asyncio.to_thread(self.cgroups.freeze if paused else self.cgroups.thaw, self._cgroup(c))
        c.state.update(Status=(Status.PAUSED if paused else Status.RUNNING).value, Paused=paused)
        self.store.save_state(c)
        self.events.publish("container", "pause" if paused else "unpause", c.id, self._attrs(c))

    # --- remove, rename, update, prune ----------------------------------------------------------

    async def remove(self, ref: str, force: bool, volumes: bool) -> None:
        c = self.get(ref)
        try:
            await when_free(c.lock, lambda held: self._remove_requested(c, force), self._tasks)
        except RemovalFailed as e:  # Docker's words
            raise SystemError_(f'cannot remove container "{ref}": {e}') from e

    async def _remove_requested(self, c: Container, force: bool) -> None:
        check_remove(c.status, c.id, force)
        if c.running:
            exited = self._exit_future(c)
            self._signal(c, signals.SIGKILL)
            await asyncio.wait_for(exited, KILL_WAIT)
            if c.host_config.get("AutoRemove"):
                return  # the exit handler removed it already
        await self._remove(c)

    async def _remove(self, c: Container) -> None:
        """Take the container's directory away in one rename (its record with it), then remove it in
        a thread. When the rename fails the container stays, dead, and its waiters learn why."""
        if self.store.find(c.id) is None:
            return
        c.state["Status"] = Status.REMOVING.value
        self._fail_pending(c)
        try:
            trashed = self.store.discard_dir(c)  # the point of no return
        except OSError as e:
            message = f"unable to remove filesystem: {e.strerror or e}"
            c.state["Status"] = Status.DEAD.value  # as Docker: it is not used again, `rm` may retry
            self.store.save_state(c)
            self._resolve(c.removed_waiters, int(c.state.get("ExitCode") or 0), message)
            raise RemovalFailed(message) from e
        self.store.discard(c)
        self.runtime.cleanup(c.id)
        if trashed is not None:
            # awaited, as Docker's rm returns once the files are gone; what is left goes at the next start
            await asyncio.to_thread(self.store.trash.purge_entry, trashed)
        self.images.collect_garbage()  # layers of images force-deleted while this container used them
        self.events.publish("container", "destroy", c.id, self._attrs(c))
        self._resolve(c.removed_waiters, int(c.state.get("ExitCode") or 0))
        self._resolve(c.exit_waiters, int(c.state.get("ExitCode") or 0))

    async def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        new = new_name.lstrip("/")
        if not new or not valid_name(new):
            raise InvalidParameter(
                f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        owner = self.store.name_owner(new)
        if owner:
            raise Conflict(
                f'Conflict. The container name "/{new}" is already in use by container "{owner}". '
                "You have to remove (or rename) that container to be able to reuse that name."
            )
        old = c.name
        self.store.rename(c, new)
        self.store.save(c)
        self.events.publish("container", "rename", c.id, self._attrs(c, oldName="/" + old))

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        c = self.get(ref)
        keys = RESOURCE_KEYS
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
                await asyncio.to_thread(self.cgroups.update, self._cgroup(c), resources)
            except (OSError, ValueError) as e:
                raise InvalidParameter(f"Cannot update container {c.id}: {e}") from e
        c.host_config.update({k: merged[k] for k in keys if k in merged})
        if update.restart_policy is not None:
            c.host_config["RestartPolicy"] = update.restart_policy
        self.store.save(c)
        self.events.publish("container", "update", c.id, self._attrs(c))
        return {"Warnings": []}

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        from daemon.containers.listing import matches_prune_filters

        deleted, reclaimed = [], 0
        for c in self.all():
            if c.running or not matches_prune_filters(c, filters):
                continue
            size = await self.size_rw(c)
            try:
                async with c.lock:
                    await self._remove(c)
            except RemovalFailed as e:  # as Docker: the others are pruned all the same
                log.warning("pruning container %s failed: %s", c.id[:12], e)
                continue
            deleted.append(c.id)
            reclaimed += size
        self.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # --- resize, top ----------------------------------------------------------------------------

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        check_running(c.status, c.id)
        if c.config.get("Tty"):
            await self.runtime.resize(c.id, None, height, width)

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        from daemon.containers.top import top

        c = self.get(ref)
        check_running(c.status, c.id)
        pids = await asyncio.to_thread(self.cgroups.pids, self._cgroup(c))
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
        """As Docker counts them: the root file system is the image's layers plus the writable one."""
        rw = await self.size_rw(c)
        try:
            image = self.images.size(c.data["Image"])
        except NotFound:  # the image's files are gone altogether: only the writable layer counts
            image = 0
        return ContainerSizes(rw, image + rw)

    def logs(self, ref: str, request: LogRequest) -> LogStream:
        c = self.get(ref)
        query = request.query()

        def still_running() -> bool:  # following ends when the container stops or is removed
            return c.running and self.store.find(c.id) is not None

        return LogStream(bool(c.config.get("Tty")), read_logs(c.data["LogPath"], query, still_running))

    def wait(self, ref: str, condition: str) -> "asyncio.Future[WaitResult]":
        """The wait is registered at once (the caller answers 200 first); its result comes later."""
        c, exited = self.wait_future(ref, condition)
        return asyncio.ensure_future(self._wait_result(c, exited))

    @staticmethod
    async def _wait_result(c: Container, exited: "asyncio.Future[int]") -> WaitResult:
        try:
            code = await exited
        except WaitError as e:  # the removal failed: the container stays, dead
            return WaitResult(e.code, e.message)
        return WaitResult(code, c.state.get("Error") or "")

    def prepare_attach(self, ref: str, options: AttachOptions) -> Attachment:
        """An attach to run over the client's connection once the route has taken it over."""
        c = self.get(ref)

        async def connect() -> ShimStream | None:
            _, shim = await self.attach(c.id, options.stdin, options.stdout, options.stderr)
            return shim

        return Attachment(c, options, connect)
