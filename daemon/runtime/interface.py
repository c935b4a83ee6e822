"""What the container and exec services need from a runtime, and the plain data it hands back.

`Runtime` (client.py) is the real one: a shim per container (shim.py) and the kernel's cgroups.
Tests use a fake with the same Protocol (tests/fakes/runtime.py), so no service needs root to be tested.

Who owns a container's cgroup
-----------------------------
The runtime names it: `<cgroup parent>/<container id>`, computed by `Runtime` from the parent it was
built with and written into the spec at `create`. No other part of the daemon builds that path.

- The shim creates it, before it forks the container's first process, and removes it when that process
  has exited and the output is drained. Only the shim is sure to be there at both moments: the cgroup
  must exist before the child runs, and the exit may happen while the daemon is down.
- The daemon's `Runtime` reaches the same cgroup through its own `CgroupManager` for everything a client
  asks of a running container: `pause`/`resume` (freezer), `update` (limits), `pids` (top), and for
  leftovers: `discard`, `release` and `remove_cgroup` kill what is left and remove it when the shim
  could not (it was killed, or hung during set-up).
  These go straight to the kernel rather than through the shim's socket (containerd's shim does them
  itself because runc keeps the cgroup's state): the manager needs only the name, works while a shim is
  busy or gone, and costs no round trip.
- `kill` signals the container's first process by its host pid; the kernel takes the rest of the PID
  namespace down with it. A frozen process acts on SIGKILL only once thawed, so a SIGKILL also thaws.
"""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from daemon.runtime import shimproto
from daemon.runtime.cgroups import Resources
from daemon.runtime.spec import ContainerSpec, ProcessSpec


class RuntimeFailure(Exception):
    """The runtime could not create or start a process; the message is the runtime's own words."""


@dataclass
class ExitInfo:
    exit_code: int
    oom_killed: bool
    finished_at: str
    recorded: bool = True  # False: the shim died without recording an exit (processes may be left)


@dataclass
class ShimStream:
    """A connection to a shim after its answer: frames come in on reader, stdin goes out on writer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int = 0  # an exec's host pid; 0 for an attach


def exit_code_in(control: bytes) -> int | None:
    """The exit code an exec stream's CONTROL frame carries (its last one); None for any other, such as
    the empty probe a shim writes to tell a half-closed stream from a closed one."""
    try:
        return shimproto.decode_answer(control, shimproto.ExecExited).exit_code
    except (shimproto.MalformedMessage, shimproto.ShimRefused):
        return None


class ContainerRuntime(Protocol):
    """Runs containers for the container and exec services; `cid` is always a full container ID."""

    async def ensure_ready(self) -> None:
        """Get ready to create containers quickly (start the shim launcher); never fails."""

    async def close(self) -> None:
        """Stop what ensure_ready started; running containers and their shims stay."""

    async def create(self, spec: ContainerSpec) -> int:
        """Prepare the container up to its first execve; its host pid. RuntimeFailure when it cannot."""

    async def start(self, cid: str) -> None:
        """Let the created container's first process execve. RuntimeFailure when that fails."""

    def kill(self, cid: str, pid: int, sig: int) -> None:
        """Send sig to the first process (pid); a SIGKILL also thaws a paused container."""

    async def pause(self, cid: str) -> None:
        """Freeze every process of the container."""

    async def resume(self, cid: str) -> None:
        """Thaw a paused container."""

    def is_paused(self, cid: str) -> bool:
        """Whether the container is frozen now (re-derived on restore, never trusted from a file)."""

    async def update(self, cid: str, resources: Resources) -> None:
        """Apply complete limits to a running container; ValueError (out of range) or OSError."""

    async def pids(self, cid: str) -> list[int]:
        """Host pids of every process in the container."""

    async def resize(self, cid: str, exec_id: str | None, rows: int, cols: int) -> None:
        """Resize the terminal of the container (exec_id None) or of one of its execs."""

    async def exec(
        self,
        cid: str,
        exec_id: str,
        process: ProcessSpec,
        tty_size: tuple[int, int] | None,
        detached: bool = False,
    ) -> ShimStream:
        """Start a process in the container: its output frames, then a control frame with its exit code."""

    async def exec_exit(self, cid: str, exec_id: str) -> int:
        """An exec's exit code once it ended, for a daemon whose stream of that exec is gone."""

    async def attach(self, cid: str, stdin: bool, stdout: bool, stderr: bool) -> ShimStream:
        """The container's output from now on as frames; bytes written go to its stdin if asked."""

    async def wait(self, cid: str) -> ExitInfo:
        """Until the container exits, also for a container started by an earlier daemon."""

    def alive(self, cid: str) -> bool:
        """Whether the container's shim still runs (on restore: the container does)."""

    def read_exit(self, cid: str) -> ExitInfo | None:
        """The exit the shim recorded, if it did."""

    def has_leftovers(self, cid: str) -> bool:
        """Whether anything of a run is left (a shim's files): a container not running may have some."""

    def discard(self, cid: str) -> None:
        """Undo a run the daemon never recorded as started: kill the shim, remove the cgroup and files."""

    def release(self, cid: str) -> None:
        """After an exit was saved: remove the run's files; if the shim died first, also its processes."""

    def remove_cgroup(self, cid: str) -> None:
        """Kill what is left in the container's cgroup and remove it (after a failed start)."""

    # stats comes with the stats endpoint


__all__ = ["ContainerRuntime", "ExitInfo", "RuntimeFailure", "ShimStream", "exit_code_in"]
