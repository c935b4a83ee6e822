"""Starting shims: through the warm launcher (launcher.py) while it runs, else as a fresh interpreter."""

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from daemon.runtime import sockpath

log = logging.getLogger(__name__)

SHIM_READY_TIMEOUT = 60.0


class ShimSpawner:
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

    async def spawn(self, exec_dir: Path) -> bytes:
        """Start the shim of exec_dir; its one-line report, b"" when it gave none."""
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
                    kill_by_pidfile(exec_dir)  # a shim stuck in set-up must not linger
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


def kill_by_pidfile(exec_dir: Path) -> None:
    """SIGKILL the shim of exec_dir by the pid it wrote first thing (before it wrote state.json)."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((exec_dir / "shim.pid").read_text()), signal.SIGKILL)
