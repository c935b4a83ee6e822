"""Time `docker run --rm busybox true` through the real docker CLI against pydockerd and dockerd.

Called by bench/run_bench.sh, which owns the work directory and removes it (`cleanup`) even when this
program is killed. The daemons run side by side, each on its own unix socket, data root, exec root and
pidfile under the work directory (engines.py), and the timed runs alternate between them. Three
scenarios: each daemon's default network (dockerd: docker0 with iptables, undone by the cleanup),
`--network none`, and TCP from a container through a port published on 127.0.0.1 (net.py). Nothing
else listens on a network address and the host's own daemons are left alone.

    bench.py run --workdir DIR [--runs N] [--warmup N] [--daemons pydockerd,dockerd] ...
    bench.py cleanup DIR
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import net
import report as tables
from engines import (
    REPO,
    BenchError,
    Docker,
    Engine,
    cleanup,
    dockerd_engine,
    memory,
    pydockerd_engine,
    remove_containers,
    signals_as_exceptions,
)

IMAGE = "busybox:latest"


class Unsupported(BenchError):
    """pydockerd refused a scenario (no bridge or no -p yet, say): reported, not a failure of the bench."""


# ---------------------------------------------------------------- measurements


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
        return "error" not in self.result and "unsupported" not in self.result

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, Unsupported):
            print(f"== {self.name}: pydockerd: unsupported ({exc})", flush=True)
            self.result = {"unsupported": str(exc), "flags": " ".join(self.run_extra)}
            return
        print(f"== {self.name}: FAILED: {exc}", file=sys.stderr, flush=True)
        self.result = {"error": str(exc)}

    def run_argv(self, args: argparse.Namespace) -> list[str]:
        return ["run", "--rm", *args.run_args.split(), *self.run_extra, IMAGE, "true"]

    def run_once(self, args: argparse.Namespace) -> None:
        """One `docker run`; pydockerd's refusal of it, while it runs, is Unsupported."""
        try:
            self.docker(*self.run_argv(args))
        except BenchError as exc:
            raise unsupported(self.engine, exc) from exc


def unsupported(engine: Engine, exc: BenchError) -> BenchError:
    """`exc` as Unsupported when pydockerd, still running, answered a request with an error."""
    if engine.name == "pydockerd" and engine.daemon.alive():
        # The daemon's own words: "docker: Error response from daemon: ..." without the CLI's usage hint.
        words = str(exc).partition(": docker: ")[2] or str(exc)
        return Unsupported(words.splitlines()[0])
    return exc


def prepare(subject: Subject, tarball: Path, args: argparse.Namespace) -> None:
    """Start the daemon, import the image, warm up (a variant only warms up: its engine runs)."""
    engine, docker = subject.engine, subject.docker
    if not subject.variant:
        print(f"== {engine.name}: starting on {engine.sock}", flush=True)
        started = time.perf_counter()
        engine.start()
        subject.result["start_seconds"] = time.perf_counter() - started
        docker("import", str(tarball), IMAGE)
    elif not engine.daemon.alive():
        raise BenchError(f"{engine.name} is not running")
    subject.result["server_version"] = docker("version", "--format", "{{.Server.Version}}")
    subject.result["flags"] = " ".join(subject.run_extra)
    for _ in range(args.warmup):
        subject.run_once(args)
    if not subject.variant:  # which network the default row really measures (pyd: a bridge yet?)
        dev = docker("run", "--rm", *args.run_args.split(), IMAGE, "cat", "/proc/net/dev")
        subject.result["interfaces"] = [w.split(":")[0].strip() for w in dev.splitlines() if ":" in w]


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
                subject.run_once(args)
            except (BenchError, subprocess.TimeoutExpired) as exc:
                subject.fail(exc)
                continue
            subject.samples.append(time.perf_counter() - t0)
            line.append(f"{subject.name} {subject.samples[-1]:.3f}s")
        print(f"  run {i + 1:>3}/{args.runs}: {', '.join(line)}", flush=True)


def measure_memory(subject: Subject, into: dict[str, Any], args: argparse.Namespace) -> None:
    """The engine's memory idle and with detached containers run with `subject`'s flags (the first
    scenario of the engine that worked), stored in `into` (the engine's first row)."""
    engine, docker = subject.engine, subject.docker
    daemon_pid = engine.daemon.popen.pid if engine.daemon.popen else None
    into["memory_idle"] = memory(str(engine.root), daemon_pid)
    if args.containers > 0:
        argv = ["run", "-d", *args.run_args.split(), *subject.run_extra, IMAGE, "sleep", "300"]
        ids = [docker(*argv) for _ in range(args.containers)]
        time.sleep(1.0)  # let the shims settle after start
        into["memory_with_containers"] = memory(str(engine.root), daemon_pid)
        into["memory_flags"] = " ".join(subject.run_extra)
        docker("rm", "-f", *ids)


def measure_throughput(subject: Subject, args: argparse.Namespace) -> None:
    """MB/s through a published port, on the engine's default network (`subject` is its first row)."""
    if not subject.engine.daemon.alive():
        return
    try:
        subject.result["throughput"] = net.throughput(
            subject.docker, IMAGE, args.run_args.split(), args.net_mib << 20, args.net_reps
        )
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        err = unsupported(subject.engine, exc) if isinstance(exc, BenchError) else exc
        if isinstance(err, Unsupported):
            print(f"== throughput: pydockerd: unsupported ({err})", flush=True)
            subject.result["throughput"] = {"unsupported": str(err)}
        else:
            print(f"== throughput: {subject.name}: FAILED: {err}", file=sys.stderr, flush=True)
            subject.result["throughput"] = {"error": str(err)}


def report(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Print the tables; returns the ratios and costs derived from the rows, for the JSON."""
    print()
    tables.timings(results, args, IMAGE)
    derived: dict[str, Any] = {
        "ratio_pydockerd_over_dockerd": tables.ratios(
            results, [(tables.TARGET_LABEL, "pydockerd", "dockerd"), ("--network none", NONE_PYD, NONE_DK)]
        )
    }
    if cost := tables.seccomp_cost(results, "pydockerd", UNCONFINED):
        derived["seccomp_cost"] = cost
    if ratio := tables.throughput(results, "pydockerd", "dockerd"):
        derived["throughput_ratio_pydockerd_over_dockerd"] = ratio
    tables.memory(results, args.containers)
    return derived


UNCONFINED = "pyd-unconf"  # pydockerd again, with --security-opt seccomp=unconfined
NONE_PYD, NONE_DK = "pyd-none", "dockerd-none"  # each daemon again, with --network none
NETWORK_NONE = ("--network", "none")


def make_subjects(name: str, engine: Engine, args: argparse.Namespace) -> list[Subject]:
    """The engine's rows: its default network first (it starts the engine), then the variants."""
    docker = Docker(args.docker, f"unix://{engine.sock}", engine.root / "cli")
    subjects = [Subject(name, engine, docker)]
    if name == "pydockerd" and args.seccomp_unconfined:
        unconfined = ("--security-opt", "seccomp=unconfined")
        subjects.append(Subject(UNCONFINED, engine, docker, run_extra=unconfined, variant=True))
    if args.network_none:
        none = NONE_PYD if name == "pydockerd" else NONE_DK
        subjects.append(Subject(none, engine, docker, run_extra=NETWORK_NONE, variant=True))
    return subjects


def measure(subjects: list[Subject], args: argparse.Namespace) -> None:
    """Everything after the engines started: timings, then memory and throughput per engine."""
    for subject in subjects:
        try:
            prepare(subject, tarball=args.tarball, args=args)
        except (BenchError, subprocess.TimeoutExpired) as exc:
            subject.fail(exc)
    time_runs(subjects, args)
    for subject in subjects:
        if subject.ok:
            subject.result["samples"] = subject.samples
            subject.result["stats"] = summary(subject.samples)
    for first in (s for s in subjects if not s.variant):
        rows = [s for s in subjects if s.engine is first.engine]
        if worked := next((s for s in rows if s.ok), None):
            try:
                measure_memory(worked, first.result, args)
            except (BenchError, subprocess.TimeoutExpired) as exc:
                worked.fail(exc)
        if args.net_mib > 0:
            measure_throughput(first, args)


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    sys.path.insert(0, str(REPO))
    from daemon.tools.busybox_rootfs import build_rootfs_tar

    args.tarball = workdir / "busybox.tar"
    build_rootfs_tar(args.tarball)
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
                # Before it starts, so that it is stopped whatever happens.
                subjects.extend(make_subjects(name, engine, args))
            measure(subjects, args)
        finally:
            for subject in reversed(subjects):
                if not subject.variant:
                    remove_containers(subject.engine, subject.docker)
                    subject.engine.stop()
    results.update({s.name: s.result for s in subjects})
    # Scenario by scenario: each daemon's default network, then each with --network none, then seccomp.
    order = [*names, NONE_PYD, NONE_DK, UNCONFINED]
    results = {name: results[name] for name in order if name in results}
    derived = report(results, args)
    if args.results_dir:
        out = Path(args.results_dir)
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out / f"run-{stamp}.json"
        meta = {
            "runs": args.runs, "warmup": args.warmup, "run_args": args.run_args, "docker": args.docker,
            "net_mib": args.net_mib, "net_reps": args.net_reps,
        }  # fmt: skip
        doc = {"settings": meta, "results": results, **derived}
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nresults: {path}")
        for subject in subjects:
            if not subject.ok:  # the work directory goes away on exit: keep the logs of a failure
                for proc in subject.engine.procs:
                    if proc.log.exists():
                        kept = shutil.copy(proc.log, out / f"run-{stamp}-{proc.name}.log")
                        print(f"{proc.name} log: {kept}")
    measured = [r for r in results.values() if "stats" in r]
    failed = [r for r in results.values() if "error" in r or "error" in r.get("throughput", {})]
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
    p_run.add_argument(
        "--network-none",
        type=int,
        default=int(env("BENCH_NETWORK_NONE", "1")),
        help="1: also time each daemon with --network none (0: skip)",
    )
    p_run.add_argument(
        "--net-mib",
        type=int,
        default=int(env("BENCH_NET_MIB", "256")),
        help="MiB per TCP download through a published port (0: skip the throughput test)",
    )
    p_run.add_argument("--net-reps", type=int, default=int(env("BENCH_NET_REPS", "3")))
    p_run.add_argument("--results-dir", default=env("BENCH_RESULTS", str(REPO / "bench" / "results")))
    p_clean = sub.add_parser("cleanup", help="stop leftovers, unmount and remove a work directory")
    p_clean.add_argument("workdir")
    args = parser.parse_args(argv)
    if args.cmd == "cleanup":
        cleanup(args.workdir)
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.net_reps < 1:
        parser.error("--net-reps must be at least 1")
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
