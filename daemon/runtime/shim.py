"""The per-container shim: `python -m daemon.runtime.shim <exec dir>`.

Started by the daemon (never forked from it), in its own session, so it outlives the daemon. It creates
the container's first process, holds its stdio, writes the json-file log, serves attach and exec on a
unix socket, and records the exit status in exit.json for a daemon that was down when it happened.

The daemon talks to it on <exec dir>/shim.sock with the messages of daemon.runtime.shimproto: one
request, one answer, then (attach, exec) frames as in daemon.frames while the client's bytes go
to stdin.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, assert_never

from daemon.files.atomic import write_json_atomic
from daemon.frames import CONTROL, STDERR, STDOUT, frame
from daemon.runtime import linux, shimproto, sockpath
from daemon.runtime.cgroups import CgroupError, CgroupManager, Resources, container_device_rules, detect
from daemon.runtime.init import ContainerBody, ExecBody
from daemon.runtime.logfile import JsonLogWriter
from daemon.runtime.process import child_main
from daemon.runtime.session import ChildFailed, Session, exit_code_of, null_stdio, stdio_pipes
from daemon.runtime.spec import ContainerSpec
from daemon.runtime.stdio import Forwarder, Output, StdinSink
from daemon.timefmt import now_rfc3339

log = logging.getLogger("pydockerd.shim")

MAX_BACKLOG = 8 * 1024 * 1024  # bytes of output a client may be behind
EXEC_EXITS_KEPT = 256  # exit codes of ended execs the shim remembers (for ExecWait)


class Shim:
    def __init__(self, exec_dir: Path, cgroups: CgroupManager | None = None) -> None:
        self.exec_dir = exec_dir
        self.spec = ContainerSpec.from_json((exec_dir / "spec.json").read_text())
        self.seccomp = self.spec.seccomp()  # decoded once: every exec loads the container's filter
        self.cgroups = cgroups or detect()
        self.init: Session | None = None
        self.execs: dict[str, Session] = {}
        self.exec_exits: dict[str, int] = {}  # exec ID -> exit code, of the last EXEC_EXITS_KEPT
        self.by_pid: dict[int, Session] = {}
        self.attached: set[asyncio.StreamWriter] = set()
        self.log = JsonLogWriter(self.spec.log_path) if self.spec.log_path else None
        self.exit_info: shimproto.Exited | None = None
        self.done = asyncio.Event()

    # --- starting -------------------------------------------------------------------------------

    def _fork(self, body: Any, stdio_child: list[int]) -> tuple[int, socket.socket]:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            parent_sock.close()
            child_main(body, child_sock)
        child_sock.close()
        for fd in stdio_child:
            os.close(fd)
        return pid, parent_sock

    async def create(self) -> int:
        spec = self.spec
        root = str(self.exec_dir / "rootfs")
        os.makedirs(root, exist_ok=True)
        resources = Resources.from_host_config(spec.resources)
        self.cgroups.create(spec.cgroup_name, resources)
        try:
            self.cgroups.restrict_devices(spec.cgroup_name, container_device_rules(spec.process.privileged))
            linux.unshare(linux.CLONE_NEWPID)  # our next child is PID 1 of the container
            stdio, child_fds, ours = stdio_pipes(spec.process.tty, spec.process.open_stdin)
            body = ContainerBody(spec, root, stdio, self.cgroups, self.seccomp)
            pid, sync = self._fork(body, child_fds)
            session = Session(pid, sync, spec.process.tty)
            self.init = session
            self.by_pid[pid] = session
            await session.handshake()
        except BaseException:
            self.abandon()
            raise
        self._wire(session, ours, spec.process.open_stdin, spec.process.stdin_once, to_log=True)
        return pid

    def abandon(self) -> None:
        """Undo create(): kill the child before it ever ran, and remove its cgroup."""
        if self.init is not None:
            self._kill_and_reap(self.init.pid)
        with contextlib.suppress(OSError):
            self.cgroups.remove(self.spec.cgroup_name)

    def _kill_and_reap(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.by_pid.pop(pid, None)

    def _wire(self, s: Session, ours: list[int], open_stdin: bool, stdin_once: bool, to_log: bool) -> None:
        loop = asyncio.get_running_loop()
        sink = self._on_output if to_log else None
        if s.tty and s.pty_master is not None:
            s.outputs = [Output(loop, s.pty_master, STDOUT, [sink] if sink else [], close_fd=False)]
            s.stdin = StdinSink(loop, s.pty_master, close_fd=False) if open_stdin else None
        else:
            stdin_w, out_r, err_r = ours
            s.outputs = [
                Output(loop, out_r, STDOUT, [sink] if sink else []),
                Output(loop, err_r, STDERR, [sink] if sink else []),
            ]
            s.stdin = StdinSink(loop, stdin_w) if stdin_w >= 0 else None
        if s.stdin:
            s.stdin.once = stdin_once

    def _on_output(self, stream: int, data: bytes) -> None:
        if self.log:
            self.log.write("stdout" if stream == STDOUT else "stderr", data)
        if self.attached:
            chunk = frame(stream, data)
            for writer in list(self.attached):
                if getattr(writer, "want", {}).get(stream, True):
                    writer.write(chunk)
                if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
                    # an attached client that does not read must not grow the shim without bound;
                    # the log keeps everything it misses
                    log.warning("dropping an attached client that fell %d bytes behind", MAX_BACKLOG)
                    self.attached.discard(writer)
                    writer.close()

    # --- control socket -------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            try:
                request = shimproto.decode_request(line)
            except shimproto.MalformedMessage as e:
                await self._reply(writer, shimproto.Failed(f"malformed request: {e}"))
                return
            await self._dispatch(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as e:
            log.exception("request failed")
            with contextlib.suppress(ConnectionError):
                await self._reply(writer, shimproto.Failed(str(e)))
        finally:
            writer.close()

    async def _dispatch(
        self, request: shimproto.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        match request:
            case shimproto.Start():
                await self.op_start(writer)
            case shimproto.Wait():
                await self.done.wait()
                assert self.exit_info is not None
                await self._reply(writer, self.exit_info)
            case shimproto.Attach():
                await self.op_attach(request, reader, writer)
            case shimproto.Exec():
                await self.op_exec(request, reader, writer)
            case shimproto.ExecWait():
                await self.op_exec_wait(request, writer)
            case shimproto.Resize():
                await self.op_resize(request, writer)
            case _:
                assert_never(request)

    async def _reply(self, writer: asyncio.StreamWriter, answer: shimproto.Message) -> None:
        writer.write(shimproto.encode(answer))
        await writer.drain()

    async def op_start(self, writer: asyncio.StreamWriter) -> None:
        assert self.init is not None
        try:
            await self.init.go()
        except ChildFailed as e:
            await self._reply(writer, shimproto.Failed(str(e)))
            return
        self._write_state("running")
        await self._reply(writer, shimproto.Started(self.init.pid))

    async def op_attach(
        self, req: shimproto.Attach, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self.init is not None
        writer.want = {STDOUT: req.stdout, STDERR: req.stderr}  # type: ignore[attr-defined]
        await self._reply(writer, shimproto.Attached())
        self.attached.add(writer)
        stdin_task = asyncio.create_task(self._pump_stdin(reader, self.init if req.stdin else None))
        done_task = asyncio.create_task(self.done.wait())
        try:
            await asyncio.wait({stdin_task, done_task}, return_when=asyncio.FIRST_COMPLETED)
            if not done_task.done():
                # EOF from the daemon: stdin ended (a half-close) or its client left (a full close).
                # A write tells them apart: only a closed socket refuses it. The daemon skips it.
                writer.write(frame(CONTROL, b"{}"))
                await writer.drain()
                await done_task
        finally:
            stdin_task.cancel()
            done_task.cancel()
            self.attached.discard(writer)
        await writer.drain()

    async def _pump_stdin(self, reader: asyncio.StreamReader, session: Session | None) -> None:
        """Client bytes to the session's stdin; at the client's EOF close stdin when StdinOnce."""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if session and session.stdin:
                session.stdin.write(data)
        if session and session.stdin and session.stdin.once:
            session.stdin.close()

    async def op_resize(self, req: shimproto.Resize, writer: asyncio.StreamWriter) -> None:
        session = self.execs.get(req.exec) if req.exec else self.init
        if session is None or session.pty_master is None:
            await self._reply(writer, shimproto.Resized(False))
            return
        linux.set_winsize(session.pty_master, req.rows, req.cols)
        await self._reply(writer, shimproto.Resized(True))

    async def op_exec(
        self, req: shimproto.Exec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Start an exec; its output comes on this connection, its stdin from it, then its exit code.
        A detached exec has no reader: without a terminal its stdio is /dev/null, with one its output
        is not read (see Forwarder); only the exit code comes."""
        assert self.init is not None
        proc, detached, size = req.process, req.detached, req.tty_size
        if detached and not proc.tty:
            stdio, child_fds, ours = null_stdio()
        else:
            stdio, child_fds, ours = stdio_pipes(proc.tty, proc.open_stdin)
        body = ExecBody(self.spec, self.cgroups, self.init.pid, proc, stdio, size, self.seccomp)
        pid, sync = self._fork(body, child_fds)
        for fd in body.ns_fds:
            os.close(fd)
        session = Session(pid, sync, proc.tty)
        self.by_pid[pid] = session
        try:
            await session.handshake()
        except (ChildFailed, RuntimeError, OSError) as e:
            for fd in ours:
                if fd >= 0:
                    os.close(fd)
            session.release()
            await self._reply(writer, shimproto.ExecStarted(pid))
            await self._exec_failed(writer, session, str(e))
            return
        if ours or proc.tty:
            self._wire(session, ours, proc.open_stdin and not detached, True, to_log=False)
        exec_id = req.id
        self.execs[exec_id] = session
        await self._reply(writer, shimproto.ExecStarted(pid))
        forwarder = Forwarder(session.outputs, writer, frame, MAX_BACKLOG)
        if detached:
            forwarder.stop_reading()
        for out in session.outputs:  # before go(): not a byte of output may pass unforwarded
            out.sinks.append(forwarder.sink)
        try:
            await session.go()
        except ChildFailed as e:
            self.execs.pop(exec_id, None)
            await self._exec_failed(writer, session, str(e))
            return
        stdin_task = asyncio.create_task(self._pump_stdin(reader, session))
        try:
            code = await session.exited
            self._exec_exited(exec_id, code)
            await forwarder.finished()
            if not writer.transport.is_closing():
                writer.write(frame(CONTROL, shimproto.encode(shimproto.ExecExited(code))))
                await writer.drain()
        finally:
            stdin_task.cancel()
            self.execs.pop(exec_id, None)
            session.release()

    def _exec_exited(self, exec_id: str, code: int) -> None:
        self.exec_exits[exec_id] = code
        while len(self.exec_exits) > EXEC_EXITS_KEPT:
            del self.exec_exits[next(iter(self.exec_exits))]  # the oldest

    async def op_exec_wait(self, req: shimproto.ExecWait, writer: asyncio.StreamWriter) -> None:
        """An exec's exit code, for a daemon whose client of that exec went away: now if it has ended."""
        code = self.exec_exits.get(req.id)
        if code is None:
            session = self.execs.get(req.id)
            if session is None:
                await self._reply(writer, shimproto.Failed(f"no such exec: {req.id}"))
                return
            code = await session.exited
        await self._reply(writer, shimproto.ExecExited(code))

    async def _exec_failed(self, writer: asyncio.StreamWriter, session: Session, message: str) -> None:
        """Docker reports a failed exec on the stream, with 126/127 as its exit code."""
        code = await session.exited
        text = (
            f"OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown\r\n"
        )
        writer.write(frame(STDERR, text.encode()))
        writer.write(frame(CONTROL, shimproto.encode(shimproto.ExecExited(code))))
        await writer.drain()

    # --- exits ----------------------------------------------------------------------------------

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            session = self.by_pid.pop(pid, None)
            if session and not session.exited.done():
                session.exited.set_result(exit_code_of(status))

    async def run(self) -> None:
        assert self.init is not None
        code = await self.init.exited
        finished = now_rfc3339()
        for (
            out
        ) in self.init.outputs:  # the rest of the output, then EOF (everyone in the PID namespace is gone)
            try:
                await asyncio.wait_for(asyncio.shield(out.closed), 2)
            except TimeoutError:
                out.close()
        if self.init.stdin:
            self.init.stdin.close()
        if self.init.tty:
            self.init.release()
        if self.log:
            self.log.close()
        oom = False
        try:
            oom = self.cgroups.oom_killed(self.spec.cgroup_name)
            self.cgroups.remove(self.spec.cgroup_name)
        except OSError:
            log.exception("cgroup clean-up failed")
        self.exit_info = shimproto.Exited(code, oom, finished)
        write_json_atomic(self.exec_dir / "exit.json", shimproto.to_dict(self.exit_info), durable=False)
        self.done.set()
        await asyncio.sleep(0)  # let waiters and attachers answer before we go
        for writer in list(self.attached):
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), 2)

    def _write_state(self, status: str) -> None:
        assert self.init is not None
        state = shimproto.ShimState(self.init.pid, os.getpid(), status)
        write_json_atomic(self.exec_dir / "state.json", shimproto.to_dict(state), durable=False)


async def amain(exec_dir: Path, cgroups: CgroupManager | None = None) -> int:
    (exec_dir / "shim.pid").write_text(str(os.getpid()))  # for a daemon that gives up waiting on us
    shim = Shim(exec_dir, cgroups)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGCHLD, shim.reap)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)  # the shim lives until its container exits
    sock_path = exec_dir / "shim.sock"
    try:
        pid = await shim.create()
    except Exception as e:
        # a cgroup error is written for the user; anything else is a bug worth naming
        message = str(e) if isinstance(e, ChildFailed | CgroupError) else f"{e.__class__.__name__}: {e}"
        _report(shimproto.Failed(message))
        return 1
    try:
        sock_path.unlink(missing_ok=True)
        with sockpath.usable(sock_path) as path:
            server = await asyncio.start_unix_server(shim.handle, path=path)
            os.chmod(path, 0o600)  # whoever can connect can exec as root in the container
        bound = os.stat(sock_path).st_ino
        shim._write_state("created")
    except Exception as e:  # nothing may outlive a failed start: the child and its cgroup go too
        log.exception("shim set-up failed")
        shim.abandon()
        _report(shimproto.Failed(f"{e.__class__.__name__}: {e}"))
        return 1
    _report(shimproto.Created(pid, os.getpid()))
    await shim.run()
    server.close()
    await asyncio.sleep(0.01)  # let request handlers see the exit and close their connections
    with contextlib.suppress(OSError):  # a restart may already have put a new shim's socket there
        if os.stat(sock_path).st_ino == bound:
            sock_path.unlink()
    return 0


def _report(msg: shimproto.Created | shimproto.Failed) -> None:
    """One line to the daemon on our stdout, then stdout goes to /dev/null (the daemon may die)."""
    with contextlib.suppress(OSError):
        os.write(1, shimproto.encode(msg))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(
    exec_dir: Path | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    cgroups: CgroupManager | None = None,
) -> None:
    """Run a shim; the launcher passes an event loop and cgroup manager it made ahead of time."""
    exec_dir = exec_dir or Path(sys.argv[1])
    logging.basicConfig(
        filename=str(exec_dir / "shim.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(amain(exec_dir, cgroups))
    except Exception:
        log.exception("shim failed")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
