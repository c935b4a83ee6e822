"""The daemon's side of the shim: spawn it, talk to its socket, read what it left behind."""

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.runtime import sockpath
from daemon.runtime.spec import ContainerSpec, ProcessSpec
from daemon.store.atomic import read_json, write_bytes_atomic
from daemon.store.trees import remove_tree

log = logging.getLogger(__name__)

SHIM_READY_TIMEOUT = 60.0


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
    """A connection to a shim after its JSON answer: frames come in on reader, stdin goes out on writer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    answer: dict[str, Any]


class Runtime:
    def __init__(self, exec_root: Path) -> None:
        self.exec_root = exec_root
        self._reapers: set[asyncio.Task[Any]] = set()
        self._launcher: asyncio.subprocess.Process | None = None
        self._launcher_lock = asyncio.Lock()

    @property
    def launcher_socket(self) -> Path:
        return self.exec_root / "launcher.sock"

    async def ensure_launcher(self) -> bool:
        """Start the shim launcher if it is not running; False when it cannot be had."""
        async with self._launcher_lock:
            if self._launcher is not None and self._launcher.returncode is None:
                return True
            self.exec_root.mkdir(parents=True, exist_ok=True)
            with open(self.exec_root / "launcher.log", "ab") as errlog:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "daemon.runtime.launcher",
                    str(self.launcher_socket),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=errlog,
                )
            assert proc.stdout is not None
            try:
                ready = await asyncio.wait_for(proc.stdout.readline(), SHIM_READY_TIMEOUT)
            except TimeoutError:
                ready = b""
            if ready.strip() != b"ready":
                log.warning("the shim launcher did not start; starting shims directly")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return False
            self._launcher = proc
            return True

    async def close(self) -> None:
        if self._launcher is not None and self._launcher.returncode is None:
            self._launcher.terminate()
            await self._launcher.wait()

    async def _spawn_shim(self, exec_dir: Path) -> bytes:
        """The shim's one-line report; through the launcher when it runs, else a fresh interpreter."""
        if await self.ensure_launcher():
            try:
                with sockpath.usable(self.launcher_socket) as path:
                    reader, writer = await asyncio.open_unix_connection(path)
                writer.write(f"{exec_dir}\n".encode())
                await writer.drain()
            except OSError as e:
                log.warning("shim launcher unreachable (%s); starting the shim directly", e)
            else:
                try:
                    return await asyncio.wait_for(reader.readline(), SHIM_READY_TIMEOUT)
                except TimeoutError:
                    self._kill_shim_by_pidfile(exec_dir)  # a shim stuck in set-up must not linger
                    return b""
                finally:
                    writer.close()
        with open(exec_dir / "shim.log", "ab") as errlog:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "daemon.runtime.shim",
                str(exec_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=errlog,
                start_new_session=True,  # the shim must outlive us: no shared session or process group
            )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), SHIM_READY_TIMEOUT)
        except TimeoutError:
            proc.kill()
            line = b""
        reaper = asyncio.create_task(proc.wait())  # the shim is our child until we exit: reap it
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return line

    def exec_dir(self, cid: str) -> Path:
        return self.exec_root / "containers" / cid

    async def create(self, spec: ContainerSpec) -> int:
        """Start a shim that prepares the container up to execve; return the container's host PID."""
        exec_dir = self.exec_dir(spec.id)
        remove_tree(exec_dir)  # a previous run's
        exec_dir.mkdir(parents=True, mode=0o700)
        write_bytes_atomic(exec_dir / "spec.json", spec.to_json().encode(), durable=False)  # 0600: it has Env
        line = await self._spawn_shim(exec_dir)
        try:
            report = json.loads(line) if line.strip() else {"error": "shim exited without a report"}
        except json.JSONDecodeError:
            report = {"error": f"shim said {line[:200]!r}"}
        if "error" in report:
            self.cleanup(spec.id)
            raise RuntimeFailure(str(report["error"]))
        return int(report["pid"])

    async def _connect(self, cid: str, request: dict[str, Any]) -> ShimStream:
        path = self.exec_dir(cid) / "shim.sock"
        try:
            with sockpath.usable(path) as usable_path:
                reader, writer = await asyncio.open_unix_connection(usable_path, limit=1 << 20)
        except OSError as e:
            raise RuntimeFailure(f"container {cid[:12]} has no running shim: {e.strerror}") from e
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
        if not line:
            writer.close()
            raise RuntimeFailure("the shim closed the connection")
        answer = json.loads(line)
        if "error" in answer:
            writer.close()
            raise RuntimeFailure(str(answer["error"]))
        return ShimStream(reader, writer, answer)

    async def call(self, cid: str, request: dict[str, Any]) -> dict[str, Any]:
        stream = await self._connect(cid, request)
        stream.writer.close()
        return stream.answer

    async def start(self, cid: str) -> None:
        await self.call(cid, {"op": "start"})

    async def attach(self, cid: str, stdin: bool, stdout: bool, stderr: bool) -> ShimStream:
        return await self._connect(cid, {"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})

    async def exec(
        self,
        cid: str,
        exec_id: str,
        process: ProcessSpec,
        tty_size: tuple[int, int] | None,
        detached: bool = False,
    ) -> ShimStream:
        """Start an exec; a detached one sends no output, only its exit code."""
        from dataclasses import asdict

        request = {
            "op": "exec",
            "id": exec_id,
            "process": asdict(process),
            "tty_size": tty_size,
            "detached": detached,
        }
        return await self._connect(cid, request)

    async def exec_exit(self, cid: str, exec_id: str) -> int:
        """Until the exec ends (its own connection closed early), then its exit code."""
        return int((await self.call(cid, {"op": "exec_wait", "id": exec_id}))["exit_code"])

    async def resize(self, cid: str, exec_id: str | None, rows: int, cols: int) -> None:
        await self.call(cid, {"op": "resize", "exec": exec_id, "rows": rows, "cols": cols})

    async def wait(self, cid: str) -> ExitInfo:
        """Until the container exits; works for a shim started by an earlier daemon, or one long gone."""
        try:
            stream = await self._connect(cid, {"op": "wait"})
            stream.writer.close()
        except (RuntimeFailure, ConnectionError, json.JSONDecodeError):
            pass
        for _ in range(50):  # the shim writes exit.json before it answers; allow for a shim being killed
            info = self.read_exit(cid)
            if info is not None:
                return info
            if not self.shim_alive(cid):
                break
            await asyncio.sleep(0.1)
        return self.read_exit(cid) or ExitInfo(255, False, "", recorded=False)

    def read_exit(self, cid: str) -> ExitInfo | None:
        try:
            data = read_json(self.exec_dir(cid) / "exit.json")
        except (OSError, ValueError):
            return None
        return ExitInfo(
            int(data["exit_code"]), bool(data.get("oom_killed")), str(data.get("finished_at", ""))
        )

    def read_state(self, cid: str) -> dict[str, Any] | None:
        try:
            data = read_json(self.exec_dir(cid) / "state.json")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def shim_alive(self, cid: str) -> bool:
        state = self.read_state(cid)
        if not state:
            return False
        try:
            os.kill(int(state["shim_pid"]), 0)
        except (ProcessLookupError, PermissionError, KeyError, ValueError):
            return False
        return (self.exec_dir(cid) / "shim.sock").exists()

    @staticmethod
    def _kill_shim_by_pidfile(exec_dir: Path) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((exec_dir / "shim.pid").read_text()), signal.SIGKILL)

    def signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def kill_shim(self, cid: str) -> None:
        state = self.read_state(cid)
        if state:
            with contextlib.suppress(ProcessLookupError, KeyError, ValueError):
                os.kill(int(state["shim_pid"]), signal.SIGKILL)

    def cleanup(self, cid: str) -> None:
        """Remove a container's exec dir (the shim's files): small, but never recursively."""
        try:
            remove_tree(self.exec_dir(cid))
        except OSError as e:
            log.warning("cannot remove the exec dir of %s: %s", cid[:12], e)
