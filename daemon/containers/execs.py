"""`docker exec`: exec instances created on a running container, started through its shim."""

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from daemon.containers.security import no_new_privileges, process_caps
from daemon.containers.service import ContainerService
from daemon.containers.splice import ClientConn, parse_detach_keys, splice
from daemon.containers.state import check_exec
from daemon.containers.ulimits import rlimits
from daemon.errors import Conflict, InvalidParameter, no_such_exec
from daemon.events.bus import EventBus
from daemon.frames import CONTROL, read_frame
from daemon.runtime.interface import ContainerRuntime, RuntimeFailure, ShimStream, exit_code_in
from daemon.runtime.spec import ProcessSpec

EXEC_GRACE = 300.0  # seconds an exec instance outlives its stopped container


class ExecOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    User: StrictStr | None = ""
    Privileged: StrictBool | None = False
    Tty: StrictBool | None = False
    AttachStdin: StrictBool | None = False
    AttachStdout: StrictBool | None = False
    AttachStderr: StrictBool | None = False
    DetachKeys: StrictStr | None = ""
    Env: list[StrictStr] | None = None
    WorkingDir: StrictStr | None = ""
    Cmd: list[StrictStr] | None = None
    ConsoleSize: list[StrictInt] | None = None


@dataclass
class ExecInstance:
    id: str
    container_id: str
    body: ExecOptions
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        b = self.body
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": bool(b.Tty),
                "entrypoint": (b.Cmd or [""])[0],
                "arguments": (b.Cmd or [])[1:],
                "privileged": bool(b.Privileged),
                "user": b.User or "",
            },
            "OpenStdin": bool(b.AttachStdin),
            "OpenStderr": bool(b.AttachStderr),
            "OpenStdout": bool(b.AttachStdout),
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": b.DetachKeys or "",
            "Pid": self.pid,
        }


@dataclass
class ExecSession:
    """An exec started for a client that stays attached, to run over the client's connection."""

    service: "ExecService"
    inst: ExecInstance
    stream: ShimStream
    tty: bool

    async def run(self, client: ClientConn) -> None:
        await self.service.run_attached(self.inst, self.stream, client, self.tty)
        await client.drain()


class ExecService:
    def __init__(self, containers: ContainerService, runtime: ContainerRuntime, events: EventBus) -> None:
        self.containers = containers
        self.runtime = runtime
        self.events = events
        self.execs: dict[str, ExecInstance] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        containers.exit_listeners.append(self._forget)

    def _forget(self, c: Any) -> None:
        """A stopped container's exec instances go with it, after a grace period in which a client
        that just ran one can still read its exit code."""
        ids = [i for i, inst in self.execs.items() if inst.container_id == c.id]
        for exec_id in ids:
            self.execs[exec_id].running = False
        asyncio.get_running_loop().call_later(EXEC_GRACE, self._drop, ids)

    def _drop(self, ids: list[str]) -> None:
        for exec_id in ids:
            inst = self.execs.pop(exec_id, None)
            if inst is not None:
                inst.done.set()

    def create(self, ref: str, body: Any) -> dict[str, str]:
        c = self.containers.get(ref)
        try:
            parsed = ExecOptions.model_validate(body if isinstance(body, dict) else {})
        except ValidationError as e:
            err = e.errors()[0]
            raise InvalidParameter(
                f"json: cannot unmarshal {err['msg']} into Go struct field ExecOptions.{err['loc'][0]}"
            ) from e
        if not parsed.Cmd:
            raise InvalidParameter("No exec command specified")
        check_exec(c.status, c.id)
        if parsed.DetachKeys:
            parse_detach_keys(parsed.DetachKeys)
        exec_id = secrets.token_hex(32)
        self.execs[exec_id] = ExecInstance(exec_id, c.id, parsed)
        c.data["ExecIDs"] = [*(c.data.get("ExecIDs") or []), exec_id]
        self.events.publish(
            "container",
            f"exec_create: {' '.join(parsed.Cmd)}",
            c.id,
            c.event_attrs(execID=exec_id),
        )
        return {"Id": exec_id}

    def get(self, exec_id: str) -> ExecInstance:
        inst = self.execs.get(exec_id)
        if inst is None:
            raise no_such_exec(exec_id)
        return inst

    def inspect(self, exec_id: str) -> dict[str, Any]:
        return self.get(exec_id).inspect()

    def _process(self, inst: ExecInstance, tty: bool) -> ProcessSpec:
        c = self.containers.get(inst.container_id)
        b = inst.body
        privileged = bool(b.Privileged) or bool(c.host_config.get("Privileged"))
        hc = c.host_config
        env = list(c.config.get("Env") or [])
        for entry in b.Env or []:
            key = entry.split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [entry]
        return ProcessSpec(
            args=list(b.Cmd or []),
            env=env,
            cwd=b.WorkingDir or c.config.get("WorkingDir") or "/",
            user=b.User or c.config.get("User") or "",
            tty=tty,
            open_stdin=bool(b.AttachStdin),
            stdin_once=True,
            caps=process_caps(hc, privileged),
            no_new_privs=no_new_privileges(hc),  # an exec keeps the container's setting, as in Docker
            privileged=privileged,
            rlimits=rlimits(hc),  # and its ulimits
        )

    async def start(self, exec_id: str, tty: bool | None, detach: bool) -> ExecSession | None:
        """Start the exec's process. `tty` sets the framing; None: as the exec was created (as in
        Docker, a start body's Tty wins over the create body's). Detached, its output is drained here
        and None returned; attached, the session to run over the client's connection."""
        inst = self.get(exec_id)
        if tty is None:
            tty = bool(inst.body.Tty)
        stream = await self._open(inst, tty, detach)
        if detach:
            self._drain_detached(inst, stream)
            return None
        return ExecSession(self, inst, stream, tty)

    async def _open(self, inst: ExecInstance, tty: bool, detached: bool) -> ShimStream:
        """Start the process; the returned stream carries its output (none when detached) and takes its
        stdin, then its exit code."""
        exec_id = inst.id
        if inst.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        c = self.containers.get(inst.container_id)
        check_exec(c.status, c.id)
        size = inst.body.ConsoleSize
        inst.started = True
        try:
            stream = await self.runtime.exec(
                c.id,
                exec_id,
                self._process(inst, tty),
                (size[0], size[1]) if size and len(size) == 2 and size[0] else None,
                detached,
            )
        except RuntimeFailure as e:
            inst.exit_code = 126
            inst.done.set()
            raise Conflict(str(e)) from e
        inst.running = True
        inst.pid = stream.pid
        cmd = " ".join(inst.body.Cmd or [])
        self.events.publish("container", f"exec_start: {cmd}", c.id, c.event_attrs(execID=exec_id))
        return stream

    def finished(self, inst: ExecInstance, exit_code: int) -> None:
        inst.exit_code = exit_code
        inst.running = False
        inst.done.set()
        with contextlib.suppress(Exception):
            c = self.containers.get(inst.container_id)
            self.events.publish(
                "container",
                "exec_die",
                c.id,
                c.event_attrs(execID=inst.id, exitCode=str(inst.exit_code)),
            )

    async def run_attached(
        self, inst: ExecInstance, stream: ShimStream, client: ClientConn, tty: bool
    ) -> None:
        # like Docker, the detach keys only apply to a TTY: piped stdin is passed on byte for byte
        keys = parse_detach_keys(inst.body.DetachKeys) if inst.body.AttachStdin and tty else None
        try:
            await splice(
                stream, client, tty, bool(inst.body.AttachStdin), keys, lambda code: self.finished(inst, code)
            )
        finally:
            if not inst.done.is_set():
                # the client went away first: the process goes on (as in Docker); the shim stops reading
                # its output, and tells its exit code on a connection of its own when it ends
                self._spawn(self._collect_exit(inst))

    async def _collect_exit(self, inst: ExecInstance) -> None:
        try:
            code = await self.runtime.exec_exit(inst.container_id, inst.id)
        except (RuntimeFailure, ConnectionError):
            return  # the container (its shim) ended first: _forget takes care of the instance
        self.finished(inst, code)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drain_detached(self, inst: ExecInstance, stream: ShimStream) -> None:
        async def drain() -> None:
            stream.writer.write_eof()
            while (item := await read_frame(stream.reader)) is not None:
                if item[0] == CONTROL and (code := exit_code_in(item[1])) is not None:
                    self.finished(inst, code)
            stream.writer.close()

        self._spawn(drain())

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        inst = self.get(exec_id)
        if not inst.running:
            raise Conflict(f"Exec {exec_id} is not running")
        try:
            await self.runtime.resize(inst.container_id, exec_id, height, width)
        except RuntimeFailure as e:  # it ended meanwhile
            raise Conflict(f"Exec {exec_id} is not running: {e}") from e
