"""The daemon's side of the runtime: spawn shims, talk to their sockets, read what they left behind,
and reach each container's cgroup (see interface.py for who owns it)."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from pathlib import Path
from typing import TypeVar

from daemon.files.atomic import read_json, write_bytes_atomic
from daemon.files.trees import remove_tree
from daemon.runtime import shimproto, sockpath
from daemon.runtime.cgroups import CgroupManager, Resources, detect
from daemon.runtime.interface import ContainerRuntime, ExitInfo, RuntimeFailure, ShimStream
from daemon.runtime.shimproto import (
    Attach,
    Attached,
    Created,
    Exec,
    ExecExited,
    ExecStarted,
    ExecWait,
    Exited,
    MalformedMessage,
    Resize,
    Resized,
    ShimRefused,
    ShimState,
    Start,
    Started,
    Wait,
)
from daemon.runtime.spawner import ShimSpawner
from daemon.runtime.spec import ContainerSpec, ProcessSpec

log = logging.getLogger(__name__)

A = TypeVar("A", Started, Attached, ExecStarted, Exited, ExecExited, Resized)

__all__ = ["ExitInfo", "Runtime", "RuntimeFailure", "ShimStream"]  # the last three: from interface.py


class Runtime:
    """The ContainerRuntime of the daemon: a shim per container, and the host's cgroups."""

    def __init__(
        self, exec_root: Path, cgroups: CgroupManager | None = None, cgroup_parent: str = "pydockerd"
    ) -> None:
        self.exec_root = exec_root
        self.cgroups = cgroups if cgroups is not None else detect()
        self.cgroup_parent = cgroup_parent
        self._spawner = ShimSpawner(exec_root)

    def cgroup_name(self, cid: str) -> str:
        return f"{self.cgroup_parent}/{cid}"

    def exec_dir(self, cid: str) -> Path:
        """Where the shim of a container keeps its socket, spec and records."""
        return self.exec_root / "containers" / cid

    # --- the launcher ---------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        await self._spawner.ensure_launcher()  # without it shims start directly, only slower

    async def close(self) -> None:
        await self._spawner.close()

    # --- the shim's requests --------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> int:
        """Start a shim that prepares the container up to execve; return the container's host PID."""
        spec = dataclasses.replace(spec, cgroup_name=self.cgroup_name(spec.id))
        exec_dir = self.exec_dir(spec.id)
        remove_tree(exec_dir)  # a previous run's
        exec_dir.mkdir(parents=True, mode=0o700)
        try:
            write_bytes_atomic(exec_dir / "spec.json", spec.to_json().encode(), durable=False)  # 0600: Env
            line = await self._spawner.spawn(exec_dir)
        except BaseException:
            self._remove_files(spec.id)  # the spec holds the container's Env: never leave it behind
            raise
        try:
            if not line.strip():
                raise ShimRefused("shim exited without a report")
            return shimproto.decode_answer(line, Created).pid
        except MalformedMessage:
            error = f"shim said {line[:200]!r}"
        except ShimRefused as e:
            error = str(e)
        self._remove_files(spec.id)
        raise RuntimeFailure(error)

    async def _connect(
        self, cid: str, request: shimproto.Request, answer: type[A]
    ) -> tuple[A, asyncio.StreamReader, asyncio.StreamWriter]:
        path = self.exec_dir(cid) / "shim.sock"
        try:
            with sockpath.usable(path) as usable_path:
                reader, writer = await asyncio.open_unix_connection(usable_path, limit=1 << 20)
        except OSError as e:
            raise RuntimeFailure(f"container {cid[:12]} has no running shim: {e.strerror}") from e
        try:
            writer.write(shimproto.encode(request))
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise RuntimeFailure("the shim closed the connection")
            return shimproto.decode_answer(line, answer), reader, writer
        except ShimRefused as e:
            writer.close()
            raise RuntimeFailure(str(e)) from None
        except MalformedMessage as e:
            writer.close()
            raise RuntimeFailure(f"the shim's answer to {request.OP}: {e}") from None
        except BaseException:
            writer.close()
            raise

    async def _call(self, cid: str, request: shimproto.Request, answer: type[A]) -> A:
        result, _, writer = await self._connect(cid, request, answer)
        writer.close()
        return result

    async def start(self, cid: str) -> None:
        await self._call(cid, Start(), Started)

    async def attach(self, cid: str, stdin: bool, stdout: bool, stderr: bool) -> ShimStream:
        _, reader, writer = await self._connect(cid, Attach(stdin, stdout, stderr), Attached)
        return ShimStream(reader, writer)

    async def exec(
        self,
        cid: str,
        exec_id: str,
        process: ProcessSpec,
        tty_size: tuple[int, int] | None,
        detached: bool = False,
    ) -> ShimStream:
        """Start an exec; a detached one sends no output, only its exit code."""
        request = Exec(exec_id, process, tty_size, detached)
        started, reader, writer = await self._connect(cid, request, ExecStarted)
        return ShimStream(reader, writer, started.pid)

    async def exec_exit(self, cid: str, exec_id: str) -> int:
        """Until the exec ends (its own connection closed early), then its exit code."""
        return (await self._call(cid, ExecWait(exec_id), ExecExited)).exit_code

    async def resize(self, cid: str, exec_id: str | None, rows: int, cols: int) -> None:
        await self._call(cid, Resize(exec_id, rows, cols), Resized)

    async def wait(self, cid: str) -> ExitInfo:
        """Until the container exits; works for a shim started by an earlier daemon, or one long gone."""
        with contextlib.suppress(RuntimeFailure, ConnectionError):
            await self._call(cid, Wait(), Exited)
        for _ in range(50):  # the shim writes exit.json before it answers; allow for a shim being killed
            info = self.read_exit(cid)
            if info is not None:
                return info
            if not self.alive(cid):
                break
            await asyncio.sleep(0.1)
        return self.read_exit(cid) or ExitInfo(255, False, "", recorded=False)

    # --- what a shim leaves behind --------------------------------------------------------------

    def read_exit(self, cid: str) -> ExitInfo | None:
        try:
            exited = shimproto.from_dict(Exited, read_json(self.exec_dir(cid) / "exit.json"))
        except (OSError, ValueError):  # MalformedMessage is a ValueError
            return None
        return ExitInfo(exited.exit_code, exited.oom_killed, exited.finished_at)

    def _read_state(self, cid: str) -> ShimState | None:
        try:
            return shimproto.from_dict(ShimState, read_json(self.exec_dir(cid) / "state.json"))
        except (OSError, ValueError):
            return None

    def alive(self, cid: str) -> bool:
        state = self._read_state(cid)
        if state is None:
            return False
        try:
            os.kill(state.shim_pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return (self.exec_dir(cid) / "shim.sock").exists()

    def has_leftovers(self, cid: str) -> bool:
        return self.exec_dir(cid).exists()

    def discard(self, cid: str) -> None:
        self._kill_shim(cid)
        self.remove_cgroup(cid)
        self._remove_files(cid)

    def release(self, cid: str) -> None:
        if self.read_exit(cid) is None:  # the shim was killed: the container's processes may still run
            self.remove_cgroup(cid)
        else:  # the shim removed the cgroup, unless it was frozen at the exit
            with contextlib.suppress(OSError):
                if self.cgroups.is_frozen(self.cgroup_name(cid)):
                    self.cgroups.thaw(self.cgroup_name(cid))
        self._remove_files(cid)

    def _kill_shim(self, cid: str) -> None:
        state = self._read_state(cid)
        if state is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.shim_pid, signal.SIGKILL)

    def _remove_files(self, cid: str) -> None:
        """Remove a container's exec dir (the shim's files): small, but never recursively."""
        try:
            remove_tree(self.exec_dir(cid))
        except OSError as e:
            log.warning("cannot remove the exec dir of %s: %s", cid[:12], e)

    # --- signals and the cgroup -----------------------------------------------------------------

    def kill(self, cid: str, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if sig == signal.SIGKILL and self.is_paused(cid):
            with contextlib.suppress(OSError):
                self.cgroups.thaw(self.cgroup_name(cid))  # a frozen process dies only once thawed

    async def pause(self, cid: str) -> None:
        await asyncio.to_thread(self.cgroups.freeze, self.cgroup_name(cid))

    async def resume(self, cid: str) -> None:
        await asyncio.to_thread(self.cgroups.thaw, self.cgroup_name(cid))

    def is_paused(self, cid: str) -> bool:
        try:
            return self.cgroups.is_frozen(self.cgroup_name(cid))
        except OSError:
            return False

    async def update(self, cid: str, resources: Resources) -> None:
        await asyncio.to_thread(self.cgroups.update, self.cgroup_name(cid), resources)

    async def pids(self, cid: str) -> list[int]:
        return await asyncio.to_thread(self.cgroups.pids, self.cgroup_name(cid))

    def remove_cgroup(self, cid: str) -> None:
        try:
            self.cgroups.remove(self.cgroup_name(cid))
        except OSError:
            log.exception("removing the cgroup of %s failed", cid[:12])


_: type[ContainerRuntime] = Runtime  # mypy checks that Runtime is a ContainerRuntime
