"""Time `docker run --rm busybox true` through the real docker CLI against pydockerd and dockerd.

Called by bench/run_bench.sh, which owns the work directory and removes it (`cleanup`) even when this
program is killed. The daemons run side by side, each on its own unix socket, data root, exec root and
pidfile under the work directory, and the timed runs alternate between them; nothing listens on a network
address and the host's own daemons are left alone.

    bench.py run --workdir DIR [--runs N] [--warmup N] [--daemons pydockerd,dockerd] ...
    bench.py cleanup DIR
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
IMAGE = "busybox:latest"
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
    remove_cgroups(DOCKERD_CGROUP)
    if os.path.isdir(workdir):
        # --one-file-system: never follow a mount that could not be removed into the host's files.
        subprocess.run(["rm", "-rf", "--one-file-system", workdir], check=False)


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
    sock = root / "docker.sock"
    argv = [
        dockerd, "-H", f"unix://{sock}", "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
        "--pidfile", str(root / "dockerd.pid"), "--config-file", str(root / "daemon.json"),
        "--containerd", str(ctr_sock), "--iptables=false", "--bridge=none", "--ip-forward=false",
        "--ip-masq=false", "--cgroup-parent", f"/{DOCKERD_CGROUP}",
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


def summary(samples: list[float]) -> dict[str, float]:
    # quantiles() needs two points; "inclusive" interpolates between the samples themselves.
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1] if len(samples) > 1 else samples[0]
    return {
        "mean": statistics.fmean(samples),
        "median": statistics.median(samples),
        "p90": p90,
        "min": min(samples),
        "max": max(samples),
        "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
    }


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


@dataclass
class Subject:
    """A daemon under test, the CLI pointed at it, and what was measured so far.

    A variant shares its engine with the subject before it and only adds `docker run` flags (pydockerd
    with seccomp=unconfined, say): the engine is started, measured for memory and stopped once."""

    name: str
    engine: Engine
    docker: Docker
    result: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    run_extra: tuple[str, ...] = ()
    variant: bool = False

    @property
    def ok(self) -> bool:
        return "error" not in self.result

    def fail(self, exc: BaseException) -> None:
        print(f"== {self.name}: FAILED: {exc}", file=sys.stderr, flush=True)
        self.result = {"error": str(exc)}

    def run_argv(self, args: argparse.Namespace) -> list[str]:
        return ["run", "--rm", *args.run_args.split(), *self.run_extra, IMAGE, "true"]


def prepare(subject: Subject, tarball: Path, args: argparse.Namespace) -> None:
    """Start the daemon, import the image, warm up (a variant only warms up: its engine runs)."""
    engine, docker = subject.engine, subject.docker
    if not subject.variant:
        print(f"== {engine.name}: starting on {engine.sock}", flush=True)
        started = time.perf_counter()
        engine.start()
        subject.result["start_seconds"] = time.perf_counter() - started
        docker("import", str(tarball), IMAGE)
    subject.result["server_version"] = docker("version", "--format", "{{.Server.Version}}")
    for _ in range(args.warmup):
        docker(*subject.run_argv(args))


def time_runs(subjects: list[Subject], args: argparse.Namespace) -> None:
    """Interleave the daemons run by run (A B, B A, ...), so a change in the machine's load while
    the bench runs reaches all of them alike and the order within a round evens out."""
    for i in range(args.runs):
        live = [s for s in subjects if s.ok]
        if not live:
            return
        line = []
        for subject in live if i % 2 == 0 else live[::-1]:
            t0 = time.perf_counter()
            try:
                subject.docker(*subject.run_argv(args))
            except (BenchError, subprocess.TimeoutExpired) as exc:
                subject.fail(exc)
                continue
            subject.samples.append(time.perf_counter() - t0)
            line.append(f"{subject.name} {subject.samples[-1]:.3f}s")
        print(f"  run {i + 1:>3}/{args.runs}: {', '.join(line)}", flush=True)


def measure_memory(subject: Subject, args: argparse.Namespace) -> None:
    engine, docker = subject.engine, subject.docker
    daemon_pid = engine.daemon.popen.pid if engine.daemon.popen else None
    subject.result["memory_idle"] = memory(str(engine.root), daemon_pid)
    if args.containers > 0:
        argv = ["run", "-d", *args.run_args.split(), IMAGE, "sleep", "300"]
        ids = [docker(*argv) for _ in range(args.containers)]
        time.sleep(1.0)  # let the shims settle after start
        subject.result["memory_with_containers"] = memory(str(engine.root), daemon_pid)
        docker("rm", "-f", *ids)


def remove_containers(engine: Engine, docker: Docker) -> None:
    """Whatever a failed or interrupted run left behind, before the daemon stops."""
    if not engine.daemon.alive():
        return
    with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
        if ids := docker("ps", "-aq", timeout=30).split():
            docker("rm", "-f", *ids, timeout=60)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print()
    print(f"docker run --rm {args.run_args + ' ' if args.run_args else ''}{IMAGE} true")
    print(f"{args.runs} runs after {args.warmup} warm-ups, seconds per run, through {args.docker}")
    print(f"{'daemon':<12}{'mean':>8}{'median':>8}{'p90':>8}{'min':>8}{'max':>8}  version")
    for name, r in results.items():
        if "stats" in r:
            s = r["stats"]
            row = "".join(f"{s[k]:>8.3f}" for k in ("mean", "median", "p90", "min", "max"))
            print(f"{name:<12}{row}  {r['server_version']}")
        else:
            print(f"{name:<12}  {r.get('error') or r.get('skipped')}")
    py, dk = results.get("pydockerd", {}), results.get("dockerd", {})
    unconfined = results.get(UNCONFINED, {})
    if "stats" in py and "stats" in dk:
        ratio = {k: py["stats"][k] / dk["stats"][k] for k in ("mean", "median", "p90")}
        print(
            f"ratio pydockerd/dockerd: mean {ratio['mean']:.2f}, median {ratio['median']:.2f}, "
            f"p90 {ratio['p90']:.2f} (below 1: pydockerd is faster; both with their default seccomp profile)"
        )
        results["ratio_pydockerd_over_dockerd"] = ratio
    if "stats" in py and "stats" in unconfined:
        cost = py["stats"]["median"] - unconfined["stats"]["median"]
        print(
            f"seccomp filter cost on pydockerd: {cost * 1000:+.1f} ms per run "
            "(median with the default profile minus median with seccomp=unconfined)"
        )
        results["seccomp_cost"] = {"median_seconds": cost}  # a dict, like the ratio: not a daemon row
    print()
    n = args.containers
    print("memory, MiB (RSS / PSS); helpers = containerd and shims")
    print(f"{'daemon':<12}{'daemon idle':>16}{'helpers idle':>16}", end="")
    print(f"{f'daemon +{n}':>16}{f'helpers +{n}':>16}{'per container':>16}" if n else "")
    for name, r in results.items():
        if "memory_idle" not in r:
            continue
        idle = r["memory_idle"]
        line = f"{name:<12}"
        line += f"{mib(idle['daemon_rss_kib']) + ' / ' + mib(idle['daemon_pss_kib']):>16}"
        line += f"{mib(idle['helpers_rss_kib']) + ' / ' + mib(idle['helpers_pss_kib']):>16}"
        busy = r.get("memory_with_containers")
        if busy:
            rss = (busy["helpers_rss_kib"] - idle["helpers_rss_kib"]) // n
            pss = (busy["helpers_pss_kib"] - idle["helpers_pss_kib"]) // n
            line += f"{mib(busy['daemon_rss_kib']) + ' / ' + mib(busy['daemon_pss_kib']):>16}"
            line += f"{mib(busy['helpers_rss_kib']) + ' / ' + mib(busy['helpers_pss_kib']):>16}"
            line += f"{mib(rss) + ' / ' + mib(pss):>16}"
        print(line)


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


UNCONFINED = "pyd-unconf"  # pydockerd again, with --security-opt seccomp=unconfined


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    sys.path.insert(0, str(REPO))
    from daemon.tools.busybox_rootfs import build_rootfs_tar

    tarball = workdir / "busybox.tar"
    build_rootfs_tar(tarball)
    factories = {"pydockerd": pydockerd_engine, "dockerd": dockerd_engine}
    names = [d.strip() for d in args.daemons.split(",") if d.strip()]
    if unknown := [n for n in names if n not in factories]:
        raise BenchError(f"unknown daemon {unknown[0]!r}: use pydockerd, dockerd")
    results: dict[str, Any] = {}
    subjects: list[Subject] = []
    with signals_as_exceptions():
        try:
            for name in names:
                try:
                    engine = factories[name](workdir)
                except FileNotFoundError as exc:
                    print(f"== {name}: skipped: {exc}", flush=True)
                    results[name] = {"skipped": str(exc)}
                    continue
                subject = Subject(
                    name, engine, Docker(args.docker, f"unix://{engine.sock}", engine.root / "cli")
                )
                subjects.append(subject)  # before it starts, so that it is stopped whatever happens
                if name == "pydockerd" and args.seccomp_unconfined:
                    subjects.append(
                        Subject(
                            UNCONFINED,
                            engine,
                            subject.docker,
                            run_extra=("--security-opt", "seccomp=unconfined"),
                            variant=True,
                        )
                    )
            for subject in subjects:
                try:
                    prepare(subject, tarball, args)
                except (BenchError, subprocess.TimeoutExpired) as exc:
                    subject.fail(exc)
            time_runs(subjects, args)
            for subject in subjects:
                if subject.ok:
                    subject.result["samples"] = subject.samples
                    subject.result["stats"] = summary(subject.samples)
                    if subject.variant:
                        continue
                    try:
                        measure_memory(subject, args)
                    except (BenchError, subprocess.TimeoutExpired) as exc:
                        subject.fail(exc)
        finally:
            for subject in reversed(subjects):
                if not subject.variant:
                    remove_containers(subject.engine, subject.docker)
                    subject.engine.stop()
    results.update({s.name: s.result for s in subjects})
    order = [n for name in names for n in ([name, UNCONFINED] if name == "pydockerd" else [name])]
    results = {name: results[name] for name in order if name in results}
    report(results, args)
    if args.results_dir:
        out = Path(args.results_dir)
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out / f"run-{stamp}.json"
        meta = {"runs": args.runs, "warmup": args.warmup, "run_args": args.run_args, "docker": args.docker}
        path.write_text(json.dumps({"settings": meta, "results": results}, indent=2) + "\n")
        print(f"\nresults: {path}")
        for subject in subjects:
            if not subject.ok:  # the work directory goes away on exit: keep the logs of a failure
                for proc in subject.engine.procs:
                    if proc.log.exists():
                        kept = shutil.copy(proc.log, out / f"run-{stamp}-{proc.name}.log")
                        print(f"{proc.name} log: {kept}")
    measured = [r for r in results.values() if "stats" in r]
    failed = [r for r in results.values() if "error" in r]
    return 1 if failed or not measured else 0


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="start each daemon in turn and time docker run")
    p_run.add_argument("--workdir", required=True, help="an empty directory named pydbench.*")
    p_run.add_argument("--runs", type=int, default=int(env("BENCH_N", "20")))
    p_run.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "2")))
    p_run.add_argument("--daemons", default=env("BENCH_DAEMONS", "pydockerd,dockerd"))
    p_run.add_argument("--docker", default=env("DOCKER", shutil.which("docker") or "docker"))
    p_run.add_argument("--run-args", default=env("BENCH_RUN_ARGS", ""), help="extra `docker run` flags")
    p_run.add_argument(
        "--seccomp-unconfined",
        type=int,
        default=int(env("BENCH_SECCOMP_UNCONFINED", "1")),
        help="1: also time pydockerd with seccomp=unconfined, for the filter's cost (0: skip)",
    )
    p_run.add_argument(
        "--containers",
        type=int,
        default=int(env("BENCH_CONTAINERS", "5")),
        help="detached containers to start for the per-container memory figure (0: skip)",
    )
    p_run.add_argument("--results-dir", default=env("BENCH_RESULTS", str(REPO / "bench" / "results")))
    p_clean = sub.add_parser("cleanup", help="stop leftovers, unmount and remove a work directory")
    p_clean.add_argument("workdir")
    args = parser.parse_args(argv)
    if args.cmd == "cleanup":
        cleanup(args.workdir)
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
