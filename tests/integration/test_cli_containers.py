"""The real docker CLI (28.2.2) against pydockerd: containers that really run, limits the kernel enforces."""

import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunningDaemon, docker_cli

pytestmark = [pytest.mark.root, pytest.mark.integration]


def uniq(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode().strip()


def ok(d: RunningDaemon, *args: str) -> str:
    """Run a docker command that must succeed; its trimmed stdout."""
    p = d.docker(*args)
    assert p.returncode == 0, (args, p.returncode, p.stderr.decode())
    return out(p)


def run_d(d: RunningDaemon, names: list[str], *args: str, cmd: tuple[str, ...] = ("sleep", "300")) -> str:
    name = uniq()
    names.append(name)
    ok(d, "run", "-d", "--name", name, *args, "busybox", *cmd)
    return name


def inspect(d: RunningDaemon, name: str, fmt: str) -> str:
    return ok(d, "inspect", "-f", fmt, name)


def wait_for(pred: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def cgroup_file(pid: int, controller: str, v1: str, v2: str) -> str:
    """A cgroup control file of a host PID, found through /proc/<pid>/cgroup (v1 first, then v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, ctls, path = line.split(":", 2)
        if controller in ctls.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / v1).read_text().strip()
    for line in lines:
        if line.startswith("0::"):
            return (Path("/sys/fs/cgroup") / line[3:].lstrip("/") / v2).read_text().strip()
    raise AssertionError(f"no {controller} cgroup in {lines}")


# --- run: exit codes, options, stdin, binds ---


def test_run_echo_and_exit_codes(daemon: RunningDaemon) -> None:
    p = daemon.docker("run", "--rm", "busybox", "echo", "hello")
    assert (p.returncode, p.stdout) == (0, b"hello\n"), p.stderr
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    p = daemon.docker("run", "--rm", "busybox", "/no/such/binary")
    assert p.returncode == 127, p.stderr
    assert b"no such file or directory" in p.stderr
    p = daemon.docker("run", "--rm", "busybox", "/etc/passwd")
    assert p.returncode == 126, p.stderr
    assert b"permission denied" in p.stderr


def test_run_env_workdir_user_hostname(daemon: RunningDaemon) -> None:
    p = daemon.docker(
        "run",
        "--rm",
        "-e",
        "FOO=bar baz",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        'echo "$FOO|$(pwd)|$(id -u):$(id -g)|$(hostname)"',
    )
    assert out(p) == "bar baz|/tmp|1000:1000|box1", p.stderr


def test_run_stdin_pipe(daemon: RunningDaemon) -> None:
    p = daemon.docker("run", "-i", "--rm", "busybox", "cat", input=b"x\nsecond line\n")
    assert (p.returncode, p.stdout) == (0, b"x\nsecond line\n"), p.stderr


def test_bind_mount_read_write_ro(daemon: RunningDaemon, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from-host\n")
    assert (
        out(daemon.docker("run", "--rm", "-v", f"{tmp_path}:/data", "busybox", "cat", "/data/in.txt"))
        == "from-host"
    )
    ok(
        daemon,
        "run",
        "--rm",
        "-v",
        f"{tmp_path}:/data",
        "busybox",
        "sh",
        "-c",
        "echo from-ctr > /data/out.txt",
    )
    assert (tmp_path / "out.txt").read_text() == "from-ctr\n"
    p = daemon.docker(
        "run", "--rm", "-v", f"{tmp_path}:/data:ro", "busybox", "sh", "-c", "echo x > /data/ro.txt"
    )
    assert p.returncode == 1
    assert b"Read-only file system" in p.stderr
    assert not (tmp_path / "ro.txt").exists()


# --- detached life cycle ---


def test_detached_ps_inspect_logs_exec_top(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names, cmd=("sh", "-c", "echo out; echo err >&2; exec sleep 300"))
    assert (
        out(daemon.docker("ps", "--filter", f"name={name}", "--format", "{{.Names}}|{{.Image}}"))
        == f"{name}|busybox"
    )
    assert inspect(daemon, name, "{{.State.Running}} {{.State.Status}}") == "true running"
    pid = int(inspect(daemon, name, "{{.State.Pid}}"))
    assert Path(f"/proc/{pid}").exists()
    assert wait_for(lambda: daemon.docker("logs", name).stdout == b"out\n")
    p = daemon.docker("logs", name)
    assert (p.stdout, p.stderr) == (b"out\n", b"err\n")
    # exec sees the container's PID 1 and its own env/user/workdir
    assert out(daemon.docker("exec", name, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline")) == "sleep 300"
    p = daemon.docker(
        "exec", "-e", "V=x", "-u", "65534", "-w", "/tmp", name, "sh", "-c", "echo $V $(id -u) $(pwd)"
    )
    assert out(p) == "x 65534 /tmp", p.stderr
    assert daemon.docker("exec", name, "sh", "-c", "exit 5").returncode == 5
    assert daemon.docker("exec", name, "/no/such").returncode == 127
    top = out(daemon.docker("top", name))
    assert "PID" in top.splitlines()[0]
    assert "sleep 300" in top
    assert str(pid) in top


def test_stop_restart_kill_rm(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names)
    pid1 = int(inspect(daemon, name, "{{.State.Pid}}"))
    t0 = time.time()
    ok(daemon, "stop", "-t", "1", name)
    assert time.time() - t0 < 6
    # sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL
    assert (
        inspect(daemon, name, "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}")
        == "exited 137 false"
    )
    assert not Path(f"/proc/{pid1}").exists() or "zombie" in Path(f"/proc/{pid1}/status").read_text().lower()
    ok(daemon, "restart", "-t", "1", name)
    assert inspect(daemon, name, "{{.State.Running}}") == "true"
    pid2 = int(inspect(daemon, name, "{{.State.Pid}}"))
    assert pid2 != pid1 and Path(f"/proc/{pid2}").exists()
    ok(daemon, "kill", name)
    assert inspect(daemon, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    p = daemon.docker("rm", name)
    assert p.returncode == 0, p.stderr
    p = daemon.docker("container", "inspect", name)
    assert (p.returncode, p.stderr.decode().strip()) == (
        1,
        f"Error response from daemon: No such container: {name}",
    )


def test_rm_running_needs_force(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names)
    p = daemon.docker("rm", name)
    assert p.returncode == 1
    assert b"cannot remove" in p.stderr.lower() or b"stop the container" in p.stderr.lower(), p.stderr
    ok(daemon, "rm", "-f", name)
    assert name not in out(daemon.docker("ps", "-a", "--format", "{{.Names}}")).splitlines()


def test_wait_prints_exit_code(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names, cmd=("sh", "-c", "sleep 0.5; exit 7"))
    p = daemon.docker("wait", name, timeout=20)
    assert (p.returncode, out(p)) == (0, "7"), p.stderr


def test_pause_freezes_processes(daemon: RunningDaemon, names: list[str], tmp_path: Path) -> None:
    counter = tmp_path / "c"
    name = run_d(
        daemon,
        names,
        "-v",
        f"{tmp_path}:/data",
        cmd=(
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /data/c.tmp; mv /data/c.tmp /data/c; sleep 0.05; done",
        ),
    )

    def value() -> int:
        try:
            return int(counter.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    assert wait_for(lambda: value() > 2)
    ok(daemon, "pause", name)
    assert inspect(daemon, name, "{{.State.Paused}} {{.State.Status}}") == "true paused"
    frozen = value()
    time.sleep(0.6)
    assert value() == frozen, "the counter grew while the container was paused"
    ok(daemon, "unpause", name)
    assert inspect(daemon, name, "{{.State.Paused}} {{.State.Status}}") == "false running"
    assert wait_for(lambda: value() > frozen + 2)


def test_update_memory_reaches_cgroup(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names, "-m", "64m")
    pid = int(inspect(daemon, name, "{{.State.Pid}}"))
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    ok(daemon, "update", "--memory", "32m", "--memory-swap", "64m", name)
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max") == str(32 << 20)
    assert inspect(daemon, name, "{{.HostConfig.Memory}}") == str(32 << 20)


def test_oom_killed(daemon: RunningDaemon, names: list[str]) -> None:
    name = uniq()
    names.append(name)
    p = daemon.docker(
        "run",
        "--name",
        name,
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        timeout=60,
    )
    assert p.returncode == 137, (p.stdout, p.stderr)
    assert b"survived" not in p.stdout
    assert inspect(daemon, name, "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137"


# --- security: read-only root, capabilities, privileged, masked paths, /dev ---


def test_read_only_rootfs(daemon: RunningDaemon) -> None:
    p = daemon.docker("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert p.returncode == 1
    assert b"Read-only file system" in p.stderr
    assert daemon.docker("run", "--rm", "busybox", "touch", "/x").returncode == 0


def test_cap_drop_all(daemon: RunningDaemon) -> None:
    assert daemon.docker("run", "--rm", "busybox", "chown", "1", "/tmp").returncode == 0
    p = daemon.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "chown", "1", "/tmp")
    assert p.returncode == 1
    assert b"Operation not permitted" in p.stderr
    status = out(
        daemon.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status")
    )
    assert status.split()[-1] == "0000000000000000"


def test_privileged_can_mount(daemon: RunningDaemon) -> None:
    script = "mkdir -p /m && mount -t tmpfs none /m && echo mounted"
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", script)
    assert p.returncode != 0 and b"mounted" not in p.stdout
    p = daemon.docker("run", "--rm", "--privileged", "busybox", "sh", "-c", script)
    assert (p.returncode, out(p)) == (0, "mounted"), p.stderr


def test_masked_and_readonly_proc_paths(daemon: RunningDaemon) -> None:
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname")
    assert p.returncode == 1
    assert b"Read-only file system" in p.stderr
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sysrq-trigger")
    assert p.returncode == 1
    if Path("/proc/timer_list").exists() and Path("/proc/timer_list").read_bytes():
        # masked: present, but reads nothing
        got = daemon.docker(
            "run", "--rm", "busybox", "sh", "-c", "test -e /proc/timer_list && wc -c < /proc/timer_list"
        )
        assert out(got) == "0", got.stderr


def test_dev_entries(daemon: RunningDaemon) -> None:
    script = (
        "test -c /dev/null && test -d /dev/pts && test -d /dev/shm && test -c /dev/zero && "
        "echo x > /dev/null && echo s > /dev/shm/f && cat /dev/shm/f && ls /dev/pts/ptmx >/dev/null && "
        "awk '$2 == \"/dev/shm\" {print $3}' /proc/mounts"
    )
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", script)
    assert (p.returncode, out(p)) == (0, "s\ntmpfs"), p.stderr


# --- logs, rename, prune, ps filters ---

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (l\d)$")


def test_logs_timestamps_since_until(daemon: RunningDaemon, names: list[str]) -> None:
    name = uniq()
    names.append(name)
    ok(
        daemon,
        "run",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo l$i; sleep 0.1; done",
    )
    lines = out(daemon.docker("logs", "-t", name)).splitlines()
    assert len(lines) == 5, lines
    parsed = [TS.match(line) for line in lines]
    assert all(parsed), lines
    stamps = [m.group(1) for m in parsed if m]
    assert [m.group(2) for m in parsed if m] == ["l1", "l2", "l3", "l4", "l5"]
    assert stamps == sorted(stamps)
    # both ends are inclusive in Docker
    assert out(daemon.docker("logs", "--since", stamps[2], name)).split() == ["l3", "l4", "l5"]
    assert out(daemon.docker("logs", "--until", stamps[1], name)).split() == ["l1", "l2"]
    assert out(daemon.docker("logs", "--since", stamps[1], "--until", stamps[3], name)).split() == [
        "l2",
        "l3",
        "l4",
    ]
    future = str(int(time.time()) + 3600)
    assert out(daemon.docker("logs", "--since", future, name)) == ""


def test_inspect_missing_object(daemon: RunningDaemon) -> None:
    # without --type the CLI tries container, image, network, volume... and goes on only after a 404
    missing = uniq()
    p = daemon.docker("inspect", missing)
    assert (p.returncode, p.stderr.decode().strip()) == (1, f"Error: No such object: {missing}")
    assert out(p) == "[]"


def test_rename(daemon: RunningDaemon, names: list[str]) -> None:
    old = run_d(daemon, names)
    new = uniq("renamed")
    names.append(new)
    ok(daemon, "rename", old, new)
    assert inspect(daemon, new, "{{.Name}}") == f"/{new}"
    p = daemon.docker("container", "inspect", old)
    assert (p.returncode, p.stderr.decode().strip()) == (
        1,
        f"Error response from daemon: No such container: {old}",
    )
    assert out(daemon.docker("exec", new, "echo", "alive")) == "alive"


def test_container_prune(daemon: RunningDaemon, names: list[str]) -> None:
    running = run_d(daemon, names)
    exited = uniq()
    names.append(exited)
    ok(daemon, "run", "--name", exited, "busybox", "true")
    exited_id = inspect(daemon, exited, "{{.Id}}")
    p = daemon.docker("container", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert exited_id in out(p)
    assert "Total reclaimed space" in out(p)
    assert daemon.docker("container", "inspect", exited).returncode == 1
    assert inspect(daemon, running, "{{.State.Running}}") == "true"


def test_ps_filters(daemon: RunningDaemon, names: list[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    running = run_d(daemon, names, "--label", f"it.tag={tag}")
    exited = uniq()
    names.append(exited)
    ok(
        daemon,
        "run",
        "--name",
        exited,
        "--label",
        f"it.tag={tag}",
        "--label",
        "it.only=exited",
        "busybox",
        "true",
    )

    def ps(*filters: str) -> set[str]:
        args = [x for f in filters for x in ("--filter", f)]
        return set(out(daemon.docker("ps", "-a", *args, "--format", "{{.Names}}")).split())

    assert ps(f"label=it.tag={tag}") == {running, exited}
    assert ps(f"label=it.tag={tag}", "label=it.only") == {exited}
    assert ps(f"label=it.tag={tag}", "status=exited") == {exited}
    assert ps(f"label=it.tag={tag}", "status=running") == {running}
    assert ps(f"name={running}") == {running}
    assert {running, exited} <= ps("ancestor=busybox")
    assert ps(f"label=it.tag={tag}", "ancestor=busybox") == {running, exited}
    # without -a only running containers are listed
    assert set(
        out(daemon.docker("ps", "--filter", f"label=it.tag={tag}", "--format", "{{.Names}}")).split()
    ) == {running}


# --- attach and events ---


def test_attach_running_container(daemon: RunningDaemon, names: list[str]) -> None:
    name = run_d(daemon, names, cmd=("sh", "-c", "sleep 1; for i in 1 2 3; do echo line$i; done; exit 4"))
    p = daemon.docker("attach", name, timeout=20)
    assert p.returncode == 4, p.stderr
    assert p.stdout == b"line1\nline2\nline3\n"


def test_attach_streams_live_output(daemon: RunningDaemon, names: list[str], tmp_path: Path) -> None:
    name = run_d(
        daemon, names, cmd=("sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done")
    )
    log = tmp_path / "attach.out"
    env = {"DOCKER_HOST": daemon.host, "DOCKER_CLI_HINTS": "false", "PATH": "/usr/bin:/bin"}
    with open(log, "wb") as f:
        # --sig-proxy=false: ending the CLI must not signal the container
        proc = subprocess.Popen(
            [docker_cli(), "attach", "--sig-proxy=false", name], stdout=f, stderr=subprocess.STDOUT, env=env
        )
        try:
            assert wait_for(lambda: len(re.findall(rb"tick\d+\n", log.read_bytes())) >= 3, timeout=5), (
                log.read_bytes()
            )
        finally:
            proc.kill()
            proc.wait()
    ticks = [int(x) for x in re.findall(rb"tick(\d+)\n", log.read_bytes())]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    assert inspect(daemon, name, "{{.State.Running}}") == "true"


def test_events_since_until_filter(daemon: RunningDaemon, names: list[str]) -> None:
    since = str(int(time.time()) - 1)
    name = uniq()
    names.append(name)
    daemon.docker("run", "--name", name, "busybox", "sh", "-c", "exit 3")
    other = uniq()
    names.append(other)
    ok(daemon, "run", "--name", other, "busybox", "true")
    until = str(int(time.time()) + 1)
    p = daemon.docker(
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        f"container={name}",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        timeout=15,
    )
    assert p.returncode == 0, p.stderr
    got = [line for line in out(p).splitlines() if line.split()[1] in ("create", "start", "die", "destroy")]
    assert got == [f"container {a} {name}" for a in ("create", "start", "die")]
    p = daemon.docker(
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        f"container={name}",
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
        timeout=15,
    )
    assert out(p) == "die 3", p.stderr
    # a window before the containers existed holds none of their events
    p = daemon.docker(
        "events",
        "--since",
        str(int(since) - 120),
        "--until",
        str(int(since) - 60),
        "--filter",
        f"container={name}",
        timeout=15,
    )
    assert (p.returncode, out(p)) == (0, "")
