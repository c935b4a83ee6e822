"""FakeRuntime: a ContainerRuntime in memory, so the container and exec services run without root.

A container is a `FakeContainer` record in `runtime.containers`, keyed by its ID. What a test controls:

- `FakeRuntime(fail_create="...")` / `fail_start="..."`: create / start raise RuntimeFailure with that
  message (change the attribute between runs). A failed start ends the container with
  `fail_start_code` (127, as a missing executable), which `wait` then returns.
- `kill(cid, pid, sig)` appends (cid, sig) to `runtime.signals`; a signal in `fatal_signals` (SIGKILL and
  SIGTERM unless told otherwise) ends the container with 128+sig, any other is only recorded.
- `finish(cid, code, oom=False)`: the container's first process exits; `wait` returns it, attached
  streams see EOF.
- `vanish(cid)`: its shim dies without recording an exit: `wait` returns ExitInfo(255, recorded=False),
  `alive` is False, `read_exit` None, and the record's `processes_left` is True until `release`/`discard`.
- `attach` and `exec` return ShimStreams over a real socketpair. The test's ends are in the record:
  `output(cid, STDOUT, b"...")` writes a frame to every attached stream, `stdin_of(cid)` reads what the
  service wrote; `end_exec(cid, exec_id, code)` sends an exec's last CONTROL frame and closes it.
- `pause`/`resume`/`is_paused` flip `paused`; `update` keeps the Resources in `resources` (or raises
  `fail_update` when set); `pids` is [pid] while the container runs.

Records stay after an exit (state "exited") so a test can inspect them; `release` and `discard` set
`released`/`discarded`.
"""

import asyncio
import signal
import socket
from dataclasses import dataclass, field

from daemon.frames import CONTROL, frame
from daemon.runtime.cgroups import Resources
from daemon.runtime.interface import ContainerRuntime, ExitInfo, RuntimeFailure, ShimStream
from daemon.runtime.spec import ContainerSpec, ProcessSpec

FINISHED_AT = "2026-01-02T03:04:05.000000000Z"


@dataclass
class ShimEnd:
    """The shim's side of a ShimStream: write frames to the service, read what it sent."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class FakeExec:
    process: ProcessSpec
    detached: bool
    end: ShimEnd
    pid: int
    exit_code: "asyncio.Future[int]"


@dataclass
class FakeContainer:
    spec: ContainerSpec
    pid: int
    state: str = "created"  # "created", "running", "exited"
    paused: bool = False
    exit: ExitInfo | None = None  # recorded=False after vanish()
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    resources: Resources | None = None
    attached: list[ShimEnd] = field(default_factory=list)
    execs: dict[str, FakeExec] = field(default_factory=dict)
    sizes: list[tuple[str | None, int, int]] = field(default_factory=list)  # resize calls
    processes_left: bool = False
    released: bool = False
    discarded: bool = False


class FakeRuntime:
    def __init__(
        self,
        fail_create: str | None = None,
        fail_start: str | None = None,
        fatal_signals: frozenset[int] = frozenset({signal.SIGKILL, signal.SIGTERM}),
    ) -> None:
        self.fail_create = fail_create
        self.fail_start = fail_start
        self.fail_start_code = 127
        self.fail_update: Exception | None = None
        self.fatal_signals = fatal_signals
        self.containers: dict[str, FakeContainer] = {}
        self.signals: list[tuple[str, int]] = []
        self.ready = False
        self._next_pid = 1000

    def _pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    def _get(self, cid: str) -> FakeContainer:
        try:
            return self.containers[cid]
        except KeyError:
            raise RuntimeFailure(f"container {cid[:12]} has no running shim") from None

    def _running(self, cid: str) -> FakeContainer:
        c = self._get(cid)
        if c.state != "running":
            raise RuntimeFailure(f"container {cid[:12]} has no running shim")
        return c

    # --- what a test does -------------------------------------------------------------------------

    def finish(self, cid: str, code: int, oom: bool = False) -> None:
        self._end(self.containers[cid], ExitInfo(code, oom, FINISHED_AT))

    def vanish(self, cid: str) -> None:
        c = self.containers[cid]
        c.processes_left = True
        self._end(c, ExitInfo(255, False, "", recorded=False))

    def output(self, cid: str, stream: int, data: bytes) -> None:
        for end in self.containers[cid].attached:
            end.writer.write(frame(stream, data))

    async def stdin_of(self, cid: str, index: int = 0) -> bytes:
        """What the service wrote on the index-th attached stream, up to its EOF."""
        return await self.containers[cid].attached[index].reader.read()

    def end_exec(self, cid: str, exec_id: str, code: int) -> None:
        ex = self.containers[cid].execs[exec_id]
        ex.end.writer.write(frame(CONTROL, f'{{"exit_code": {code}}}'.encode()))
        ex.end.writer.close()
        ex.exit_code.set_result(code)

    def _end(self, c: FakeContainer, info: ExitInfo) -> None:
        if c.exit is not None:
            return
        c.state, c.exit, c.paused = "exited", info, False
        for end in c.attached:
            end.writer.close()
        c.exited.set()

    # --- ContainerRuntime -------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        self.ready = True

    async def close(self) -> None:
        self.ready = False

    async def create(self, spec: ContainerSpec) -> int:
        if self.fail_create is not None:
            raise RuntimeFailure(self.fail_create)
        c = FakeContainer(spec, self._pid())
        self.containers[spec.id] = c
        return c.pid

    async def start(self, cid: str) -> None:
        c = self._get(cid)
        if self.fail_start is not None:
            self._end(c, ExitInfo(self.fail_start_code, False, FINISHED_AT))
            raise RuntimeFailure(self.fail_start)
        c.state = "running"

    def kill(self, cid: str, pid: int, sig: int) -> None:
        self.signals.append((cid, sig))
        c = self.containers.get(cid)
        if c is not None and sig in self.fatal_signals:
            self._end(c, ExitInfo(128 + sig, False, FINISHED_AT))

    async def pause(self, cid: str) -> None:
        self._running(cid).paused = True

    async def resume(self, cid: str) -> None:
        self._running(cid).paused = False

    def is_paused(self, cid: str) -> bool:
        c = self.containers.get(cid)
        return c is not None and c.paused

    async def update(self, cid: str, resources: Resources) -> None:
        if self.fail_update is not None:
            raise self.fail_update
        self._running(cid).resources = resources

    async def pids(self, cid: str) -> list[int]:
        c = self.containers.get(cid)
        return [c.pid] if c is not None and c.state == "running" else []

    async def resize(self, cid: str, exec_id: str | None, rows: int, cols: int) -> None:
        self._running(cid).sizes.append((exec_id, rows, cols))

    async def _stream(self) -> tuple[ShimStream, ShimEnd]:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        test_reader, test_writer = await asyncio.open_unix_connection(sock=theirs)
        return ShimStream(reader, writer), ShimEnd(test_reader, test_writer)

    async def exec(
        self,
        cid: str,
        exec_id: str,
        process: ProcessSpec,
        tty_size: tuple[int, int] | None,
        detached: bool = False,
    ) -> ShimStream:
        c = self._running(cid)
        stream, end = await self._stream()
        stream.pid = self._pid()
        future = asyncio.get_running_loop().create_future()
        c.execs[exec_id] = FakeExec(process, detached, end, stream.pid, future)
        return stream

    async def exec_exit(self, cid: str, exec_id: str) -> int:
        try:
            ex = self._get(cid).execs[exec_id]
        except KeyError:
            raise RuntimeFailure(f"no such exec: {exec_id}") from None
        return await ex.exit_code

    async def attach(self, cid: str, stdin: bool, stdout: bool, stderr: bool) -> ShimStream:
        c = self._get(cid)  # created or running: an attach made before the start connects in between
        if c.state == "exited":
            raise RuntimeFailure(f"container {cid[:12]} has no running shim")
        stream, end = await self._stream()
        c.attached.append(end)
        return stream

    async def wait(self, cid: str) -> ExitInfo:
        c = self.containers.get(cid)
        if c is None:
            return ExitInfo(255, False, "", recorded=False)
        await c.exited.wait()
        assert c.exit is not None
        return c.exit

    def alive(self, cid: str) -> bool:
        c = self.containers.get(cid)
        return c is not None and c.exit is None

    def read_exit(self, cid: str) -> ExitInfo | None:
        c = self.containers.get(cid)
        return c.exit if c is not None and c.exit is not None and c.exit.recorded else None

    def has_leftovers(self, cid: str) -> bool:
        c = self.containers.get(cid)
        return c is not None and not (c.released or c.discarded)

    def discard(self, cid: str) -> None:
        c = self.containers.get(cid)
        if c is not None:
            self._end(c, ExitInfo(137, False, FINISHED_AT, recorded=False))
            c.discarded, c.processes_left = True, False

    def release(self, cid: str) -> None:
        c = self.containers.get(cid)
        if c is not None:
            c.released, c.processes_left = True, False

    def remove_cgroup(self, cid: str) -> None:
        c = self.containers.get(cid)
        if c is not None:
            c.processes_left = False


_: type[ContainerRuntime] = FakeRuntime  # mypy: the fake is a ContainerRuntime
