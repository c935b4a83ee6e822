"""The engines under test: processes, memory, cleanup of a work directory, and the daemons themselves.

Each daemon runs on its own unix socket, data root, exec root and pidfile under the bench's work
directory (/tmp/pydbench.*), so the host's own daemons, sockets and data are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import net

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
RUN_TIMEOUT = 120.0
# dockerd's containers go in this cgroup instead of /docker, which a system dockerd may use; the
# cleanup removes it (cgroups v1: one per hierarchy).
DOCKERD_CGROUP = "pydbench-dockerd"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes and memory


@dataclass
class ProcMem:
    pid: int
    name: str
    rss_kib: int
    pss_kib: int


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _field_kib(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ")


def _ppid(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses: the fields after the last ")" are fixed.
    rest = stat.rpartition(")")[2].split()
    return int(rest[1]) if len(rest) > 1 else 0


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = _ppid(pid)
    return seen


def _pid_ns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def engine_pids(marker: str, daemon_pid: int | None) -> list[int]:
    """The engine's processes: the daemon, its helpers (containerd, shims) and their children.

    A helper is found by `marker` (the work directory) on its command line, since shims are often
    reparented away from the daemon. Container processes are left out: they live in another pid
    namespace. This program and its parents are left out too (their command lines name the marker).
    """
    mine = _ancestors(os.getpid())
    host_ns = _pid_ns(os.getpid())
    pids = [p for p in _all_pids() if p not in mine]
    roots = {p for p in pids if marker in _cmdline(p)}
    if daemon_pid is not None:
        roots.add(daemon_pid)
    children: dict[int, list[int]] = {}
    for p in pids:
        children.setdefault(_ppid(p), []).append(p)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        p = todo.pop()
        if p in found or _pid_ns(p) != host_ns:
            continue
        found.add(p)
        todo.extend(children.get(p, []))
    return sorted(found)


def proc_mem(pid: int) -> ProcMem | None:
    status = _read(f"/proc/{pid}/status")
    if not status:
        return None
    name = _read(f"/proc/{pid}/comm").strip()
    return ProcMem(
        pid, name, _field_kib(status, "VmRSS"), _field_kib(_read(f"/proc/{pid}/smaps_rollup"), "Pss")
    )


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _mounts_under(root: str) -> list[str]:
    points = []
    for line in _read("/proc/self/mountinfo").splitlines():
        parts = line.split()
        if len(parts) > 4:
            point = parts[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return points


def cleanup(workdir: str) -> None:
    """Stop whatever still runs from `workdir`, unmount what is mounted under it, and remove it."""
    workdir = os.path.realpath(workdir)
    if not os.path.basename(workdir).startswith("pydbench."):
        raise BenchError(f"refusing to clean up {workdir}: not a bench work directory")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = engine_pids(workdir, None)
        if not pids:
            break
        _signal_all(pids, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.1)
    # Deepest first; lazy, so a busy mount does not stop the removal of everything else.
    for point in sorted(set(_mounts_under(workdir)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, stderr=subprocess.DEVNULL)
    kill_cgroups(DOCKERD_CGROUP)
    remove_cgroups(DOCKERD_CGROUP)
    # Once dockerd is gone (it would put its chains back): docker0, br-*, DOCKER* chains, sysctls.
    for step in net.restore_host_state(Path(workdir)):
        print(f"bench: cleanup: {step}", flush=True)
    if os.path.isdir(workdir):
        # --one-file-system: never follow a mount that could not be removed into the host's files.
        subprocess.run(["rm", "-rf", "--one-file-system", workdir], check=False)


def kill_cgroups(name: str) -> None:
    """SIGKILL the processes in the cgroup `name` and below: containers whose shim was killed keep
    running (dockerd's, reparented to init), holding their network namespace and cgroups."""
    for _ in range(50):
        pids = {
            int(pid)
            for top in [CGROUP_ROOT / name, *CGROUP_ROOT.glob(f"*/{name}")]
            for procs in top.glob("**/cgroup.procs")
            for pid in _read(str(procs)).split()
        }
        if not pids:
            return
        _signal_all(sorted(pids), signal.SIGKILL)
        time.sleep(0.1)


def remove_cgroups(name: str) -> None:
    """rmdir the cgroup `name` and the (empty) cgroups below it, in every hierarchy."""
    for top in [CGROUP_ROOT / name, *CGROUP_ROOT.glob(f"*/{name}")]:
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):  # still in use: leave it
                os.rmdir(dirpath)


# ---------------------------------------------------------------- daemons


def ping(sock: str, timeout: float = 2.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            reply = b""
            while b"\r\n" not in reply and (chunk := s.recv(4096)):  # the status line is enough
                reply += chunk
        status = reply.split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and status[0].startswith(b"HTTP/1.") and status[1] == b"200"
    except OSError:
        return False


@dataclass
class Proc:
    """A background process in its own session, so ^C reaches the bench and not the daemons first."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  {self.name} did not stop within {STOP_TIMEOUT:.0f}s: killing it", file=sys.stderr)
            self.popen.kill()
            self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Engine:
    """One daemon under test with the processes it needs, all under `root`."""

    name: str
    root: Path
    sock: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def daemon(self) -> Proc:
        return self.procs[-1]  # helpers (containerd) come first, the daemon last

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
            if proc is not self.daemon:
                time.sleep(0.5)
                if not proc.alive():
                    raise BenchError(f"{proc.name} exited at once:\n{proc.log_tail()}")
        deadline = time.monotonic() + START_TIMEOUT
        while not ping(str(self.sock)):
            if not self.daemon.alive():
                raise BenchError(
                    f"{self.daemon.name} exited before serving the API:\n{self.daemon.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.daemon.name} did not answer /_ping within {START_TIMEOUT:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        cleanup_mounts_and_leftovers(self.root)


def cleanup_mounts_and_leftovers(root: Path) -> None:
    leftovers = engine_pids(str(root), None)
    if leftovers:
        _signal_all(leftovers, signal.SIGKILL)
        time.sleep(0.2)
    for point in sorted(set(_mounts_under(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, stderr=subprocess.DEVNULL)


def pydockerd_engine(workdir: Path) -> Engine:
    binary = os.environ.get("PYDOCKERD", str(REPO / ".venv" / "bin" / "pydockerd"))
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{binary} not found: run `make install`")
    root = workdir / "pyd"
    root.mkdir()
    sock = root / "pyd.sock"
    # Short directory names: a shim's unix sockets under the exec root must fit in 108 bytes.
    argv = [
        binary, "-H", f"unix://{sock}", "--data-root", str(root / "data"),
        "--exec-root", str(root / "run"), "--pidfile", str(root / "pydockerd.pid"),
    ]  # fmt: skip
    return Engine("pydockerd", root, sock, [Proc("pydockerd", argv, root / "pydockerd.log")])


def dockerd_engine(workdir: Path) -> Engine:
    dockerd, containerd = shutil.which("dockerd"), shutil.which("containerd")
    if dockerd is None or containerd is None:
        raise FileNotFoundError(
            "dockerd not installed (apt-get install docker.io, or BENCH_INSTALL_DOCKERD=1)"
        )
    root = workdir / "dockerd"
    ctr = root / "containerd"
    ctr.mkdir(parents=True)
    ctr_sock = ctr / "containerd.sock"
    # Our own containerd: dockerd would otherwise share a system one at /run/containerd if it exists.
    # The CRI plugin is off, as in the containerd that dockerd manages itself.
    (ctr / "config.toml").write_text(
        "version = 2\n"
        f'root = "{ctr / "root"}"\n'
        f'state = "{ctr / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{ctr_sock}"\n'
        f'[ttrpc]\n  address = "{ctr_sock}.ttrpc"\n'
    )
    (root / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json
    # Its default bridge with iptables on, as installed: `bench.py cleanup` undoes what that changes.
    net.save_host_state(workdir)
    sock = root / "docker.sock"
    argv = [
        dockerd, "-H", f"unix://{sock}", "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
        "--pidfile", str(root / "dockerd.pid"), "--config-file", str(root / "daemon.json"),
        "--containerd", str(ctr_sock), "--cgroup-parent", f"/{DOCKERD_CGROUP}",
    ]  # fmt: skip
    return Engine(
        "dockerd",
        root,
        sock,
        [
            Proc("containerd", [containerd, "--config", str(ctr / "config.toml")], ctr / "containerd.log"),
            Proc("dockerd", argv, root / "dockerd.log"),
        ],
    )


# ---------------------------------------------------------------- measurements


@dataclass
class Docker:
    cli: str
    host: str
    config_dir: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir), DOCKER_CLI_HINTS="false")
        return env

    def __call__(self, *args: str, timeout: float = RUN_TIMEOUT) -> str:
        result = subprocess.run(
            [self.cli, *args], env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
        )
        if result.returncode != 0:
            err = result.stderr.decode(errors="replace").strip()
            raise BenchError(f"docker {' '.join(args)} exited {result.returncode}: {err}")
        return result.stdout.decode(errors="replace").strip()


def memory(marker: str, daemon_pid: int | None) -> dict[str, Any]:
    procs = [m for p in engine_pids(marker, daemon_pid) if (m := proc_mem(p)) is not None]
    daemon = [m for m in procs if m.pid == daemon_pid]
    helpers = [m for m in procs if m.pid != daemon_pid]
    return {
        "daemon_rss_kib": sum(m.rss_kib for m in daemon),
        "daemon_pss_kib": sum(m.pss_kib for m in daemon),
        "helpers_rss_kib": sum(m.rss_kib for m in helpers),
        "helpers_pss_kib": sum(m.pss_kib for m in helpers),
        "processes": [m.__dict__ for m in procs],
    }


def remove_containers(engine: Engine, docker: Docker) -> None:
    """Whatever a failed or interrupted run left behind, before the daemon stops."""
    if not engine.daemon.alive():
        return
    with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
        if ids := docker("ps", "-aq", timeout=30).split():
            docker("rm", "-f", *ids, timeout=60)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT unwind as KeyboardInterrupt, so every daemon is stopped on the way out.

    SIGINT too: a background job of a shell script starts with SIGINT ignored.
    """

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
