"""Peak daemon memory while `docker import` and `docker load` unpack many files: pydockerd and dockerd.

Called by `bench/run_bench.sh archives`, which owns the work directory and removes it (`bench.py
cleanup`) even when this program is killed. The daemons are started one after the other, as the
timing bench starts them (bench.py: own sockets, data roots, exec roots; the host's daemons are left
alone), and each gets, through the real docker CLI:

1. `docker import` of a tarball of N empty files (directories of 1000), 512 bytes of header each;
2. `docker load` of a `docker save` archive whose one layer holds N other empty files.

Before each command the daemon's peak RSS (VmHWM) is reset with `echo 5 > /proc/<pid>/clear_refs`;
after it, VmHWM minus the RSS before is the daemon's peak growth. The engine's other processes
(containerd; dockerd 20.10 unpacks in a re-executed child, docker-applyLayer) are sampled every
0.1 s, and their largest total above the start is shown beside it.

    archives.py --workdir DIR [--files N] [--daemons pydockerd,dockerd]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines import (
    REPO,
    BenchError,
    Docker,
    Engine,
    dockerd_engine,
    engine_pids,
    proc_mem,
    pydockerd_engine,
    remove_containers,
    signals_as_exceptions,
)
from report import mib

DOCKER_CLI = os.environ.get("DOCKER") or shutil.which("docker") or "docker"
COMMAND_TIMEOUT = 3600.0
SAMPLE_SECONDS = 0.1
MTIME = 1_600_000_000


def write_many_files(path: Path, count: int, prefix: str) -> tuple[str, int]:
    """A tar of `count` empty files, written as it goes; returns its diff ID and size."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as f:

        def out(data: bytes) -> None:
            nonlocal size
            f.write(data)
            digest.update(data)
            size += len(data)

        for i in range(count):
            if i % 1000 == 0:
                d = tarfile.TarInfo(f"{prefix}{i // 1000}/")
                d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, MTIME
                out(d.tobuf(tarfile.GNU_FORMAT))
            info = tarfile.TarInfo(f"{prefix}{i // 1000}/f{i}")
            info.mode, info.mtime = 0o644, MTIME
            out(info.tobuf(tarfile.GNU_FORMAT))
        out(bytes(2 * tarfile.BLOCKSIZE))
    return "sha256:" + digest.hexdigest(), size


def write_save_archive(path: Path, layer: Path, diff_id: str, tag: str) -> None:
    """The classic `docker save` layout around one layer: <layer dir>/layer.tar, <id>.json, manifest.json."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2020-09-13T12:26:40Z",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2020-09-13T12:26:40Z", "created_by": "pydockerd bench"}],
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = diff_id.removeprefix("sha256:")
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_dir}/layer.tar"]}])
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:  # a handful of members
        d = tarfile.TarInfo(layer_dir)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, MTIME
        tf.addfile(d)
        with open(layer, "rb") as f:
            tf.addfile(_file_info(f"{layer_dir}/layer.tar", layer.stat().st_size), f)
        for name, data in ((config_name, config), ("manifest.json", manifest.encode())):
            tf.addfile(_file_info(name, len(data)), _Bytes(data))


def _file_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, MTIME
    return info


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int = -1) -> bytes:
        out, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return out


class NotInstalled(Exception):
    pass


def _kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} for process {pid}")


def _others_rss_kib(marker: str, daemon_pid: int) -> int:
    pids = [p for p in engine_pids(marker, daemon_pid) if p != daemon_pid]
    return sum(m.rss_kib for p in pids if (m := proc_mem(p)) is not None)


def measure(engine: Engine, docker: Docker, *args: str) -> dict[str, Any]:
    """Runs the CLI and measures the daemon's peak RSS growth (VmHWM) and the others' (sampled)."""
    assert engine.daemon.popen is not None
    pid, marker = engine.daemon.popen.pid, str(engine.root)
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = _kib(pid, "VmRSS")
    others_before = others_peak = _others_rss_kib(marker, pid)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [docker.cli, *args],
        env=docker.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        while proc.poll() is None:
            if time.perf_counter() - started > COMMAND_TIMEOUT:
                raise BenchError(f"docker {' '.join(args)} did not finish within {COMMAND_TIMEOUT:.0f}s")
            others_peak = max(others_peak, _others_rss_kib(marker, pid))
            time.sleep(SAMPLE_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        raise BenchError(f"docker {' '.join(args)} exited {proc.returncode}: {message}")
    peak = _kib(pid, "VmHWM")
    return {
        "seconds": seconds,
        "daemon_rss_before_kib": before,
        "daemon_peak_kib": peak,
        "daemon_growth_kib": peak - before,
        "others_growth_kib": others_peak - others_before,
        "output": out.decode(errors="replace").strip()[-200:],
    }


STEPS = {  # step -> the CLI arguments, with the file to use
    "import": ("import", "{file}", "bench-many:import"),
    "load": ("load", "-q", "-i", "{file}"),
}


def bench_step(
    name: str, factory: Callable[[Path], Engine], workdir: Path, step: str, file: Path
) -> dict[str, Any]:
    """One step on a daemon of its own: memory freed by an earlier step stays in the RSS the next one
    would start from, and would hide its growth."""
    try:
        engine = factory(workdir)
    except FileNotFoundError as exc:  # the daemon is not installed
        raise NotInstalled(str(exc)) from exc
    docker = Docker(os.environ.get("DOCKER", DOCKER_CLI), f"unix://{engine.sock}", engine.root / "cli")
    try:
        print(f"== {name}: {step} ({file.stat().st_size >> 20} MiB tar), daemon on {engine.sock}", flush=True)
        engine.start()
        result = measure(engine, docker, *(arg.format(file=file) for arg in STEPS[step]))
        result["server_version"] = docker("version", "--format", "{{.Server.Version}}")
        print(f"    {result['seconds']:.0f}s, daemon +{mib(result['daemon_growth_kib'])} MiB", flush=True)
        return result
    finally:
        remove_containers(engine, docker)
        engine.stop()
        # the layers are N inodes: remove them before the next daemon starts
        subprocess.run(["rm", "-rf", "--one-file-system", str(engine.root)], check=False)


def bench_one(
    name: str, factory: Callable[[Path], Engine], workdir: Path, files: dict[str, Path]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    try:
        for step in STEPS:
            result[step] = bench_step(name, factory, workdir, step, files[step])
            result["server_version"] = result[step].pop("server_version")
    except NotInstalled as exc:
        print(f"== {name}: skipped: {exc}", flush=True)
        return {"skipped": str(exc)}
    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"== {name}: FAILED: {exc}", file=sys.stderr, flush=True)
        result["error"] = str(exc)
    return result


def report(results: dict[str, Any], count: int) -> None:
    print()
    print(f"peak RSS growth while unpacking {count} empty files, MiB (daemon: VmHWM; others: sampled)")
    columns = f"{'import':>10}{'others':>10}{'seconds':>9}{'load':>10}{'others':>10}{'seconds':>9}"
    print(f"{'daemon':<12}{columns}  version")
    for name, r in results.items():
        if "import" not in r or "load" not in r:
            print(f"{name:<12}  {r.get('error') or r.get('skipped')}")
            continue
        line = f"{name:<12}"
        for step in ("import", "load"):
            s = r[step]
            line += f"{mib(s['daemon_growth_kib']):>10}{mib(s['others_growth_kib']):>10}{s['seconds']:>9.0f}"
        print(f"{line}  {r['server_version']}")


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    files = {"import": workdir / "many-import.tar", "layer": workdir / "many-load-layer.tar"}
    print(f"writing tarballs of {args.files} empty files in {workdir}", flush=True)
    write_many_files(files["import"], args.files, "i")
    diff_id, _ = write_many_files(files["layer"], args.files, "l")
    files["load"] = workdir / "many-load.tar"
    write_save_archive(files["load"], files["layer"], diff_id, "bench-many:load")
    files["layer"].unlink()
    factories = {"pydockerd": pydockerd_engine, "dockerd": dockerd_engine}
    names = [d.strip() for d in args.daemons.split(",") if d.strip()]
    if unknown := [n for n in names if n not in factories]:
        raise BenchError(f"unknown daemon {unknown[0]!r}: use pydockerd, dockerd")
    results: dict[str, Any] = {}
    with signals_as_exceptions():
        for name in names:
            results[name] = bench_one(name, factories[name], workdir, files)
    report(results, args.files)
    if args.results_dir:
        out = Path(args.results_dir)
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out / f"archives-{stamp}.json"
        path.write_text(json.dumps({"files": args.files, "results": results}, indent=2) + "\n")
        print(f"\nresults: {path}")
    return 0 if all("import" in r and "load" in r for r in results.values() if "skipped" not in r) else 1


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True, help="an empty directory named pydbench.*")
    parser.add_argument("--files", type=int, default=int(env("BENCH_FILES", "300000")))
    parser.add_argument("--daemons", default=env("BENCH_DAEMONS", "pydockerd,dockerd"))
    parser.add_argument("--results-dir", default=env("BENCH_RESULTS", str(REPO / "bench" / "results")))
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")
    if not os.access(env("DOCKER", DOCKER_CLI), os.X_OK):
        parser.error("the docker CLI is missing (set DOCKER)")
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
