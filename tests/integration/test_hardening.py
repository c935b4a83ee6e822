"""Isolation and robustness the review of the first version found missing: each test is a real attack
or failure, run against a real daemon."""

import contextlib
import os
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningDaemon, docker_cli

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture
def name(daemon: RunningDaemon) -> Iterator[str]:
    n = f"hard-{uuid.uuid4().hex[:8]}"
    yield n
    daemon.docker("rm", "-f", n)


def _out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode().strip()


def test_host_network_cannot_write_the_hosts_cgroups(daemon: RunningDaemon) -> None:
    host_links = sorted(os.listdir("/sys/class/net"))
    if host_links == ["lo"]:
        pytest.skip("the host has only lo: its network namespace looks like a new one")
    p = daemon.docker(
        "run", "--rm", "--network", "host", "busybox", "sh", "-c",
        "ls /sys/class/net; mkdir /sys/fs/cgroup/x 2>/dev/null && echo wrote || echo refused",
    )  # fmt: skip
    *links, verdict = _out(p).splitlines()
    assert sorted(links) == host_links, p.stderr  # the fresh sysfs shows the host's namespace
    assert verdict == "refused", p.stderr


def test_state_directories_are_for_root_only(daemon: RunningDaemon, name: str) -> None:
    for d in (daemon.data_root, daemon.exec_root):
        assert stat.S_IMODE(os.stat(d).st_mode) & 0o077 == 0, d
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "30", check=True)
    cid = _out(daemon.docker("inspect", "-f", "{{.Id}}", name))
    spec = daemon.exec_root / "containers" / cid / "spec.json"
    assert stat.S_IMODE(os.stat(spec).st_mode) == 0o600
    # another host user cannot reach what a container's root writes (a setuid file, say)
    daemon.docker("exec", name, "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid", check=True)
    upper = daemon.data_root / "containers" / cid / "rw" / "upper" / "suid"
    assert upper.exists()
    # Open the test's 0700 temp dir above the data root for the check: else it alone would hide the
    # file, whatever modes the daemon gives its own directories.
    mode = stat.S_IMODE(os.stat(daemon.root).st_mode)
    os.chmod(daemon.root, 0o755)
    try:
        for parent in daemon.data_root.parents:
            assert os.stat(parent).st_mode & 0o001, f"{parent} is closed to other users"
        assert _nobody_sees(daemon.root / "daemon.log")  # so a refusal below is the daemon's doing
        assert not _nobody_sees(upper)
    finally:
        os.chmod(daemon.root, mode)


def _nobody_sees(path: Path) -> bool:
    return (
        subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", f"test -e {path}"], check=False).returncode
        == 0
    )


def test_exec_sees_no_other_process_pty(daemon: RunningDaemon, name: str) -> None:
    daemon.docker("run", "-dit", "--name", name, "busybox", "sh", check=True)
    for _ in range(3):
        daemon.docker("exec", "-t", name, "true", check=True)
    fds = _out(daemon.docker("exec", "-u", "65534", name, "ls", "/proc/self/fd")).split()
    assert sorted(fds) == ["0", "1", "2", "3"], fds  # 3: the directory ls is reading


def test_exec_keeps_no_new_privileges(daemon: RunningDaemon, name: str) -> None:
    daemon.docker(
        "run",
        "-d",
        "--name",
        name,
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sleep",
        "30",
        check=True,
    )
    p = daemon.docker("exec", name, "grep", "NoNewPrivs", "/proc/self/status")
    assert _out(p).split() == ["NoNewPrivs:", "1"]


def _cgroup_mount_below_sys_fs() -> str:
    """A writable mount point below /sys/fs, on the host: the cgroup2 root, or v1's pids hierarchy."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    probe = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/pids"
    assert os.path.ismount(probe), f"{probe} is not a mount point"
    return probe


def test_read_only_bind_is_read_only_all_the_way_down(daemon: RunningDaemon) -> None:
    # a mount below the bound /sys/fs, so only a recursive read-only bind refuses the mkdir
    below = _cgroup_mount_below_sys_fs()
    probe = f"{below}/pydockerd-probe-{uuid.uuid4().hex[:8]}"
    inside = "/h" + probe.removeprefix("/sys/fs")
    try:
        p = daemon.docker(
            "run", "--rm", "-v", "/sys/fs:/h:ro", "busybox", "sh", "-c",
            f"mkdir {inside} 2>&1 && echo wrote || echo refused",
        )  # fmt: skip
        assert _out(p).splitlines() == [
            f"mkdir: can't create directory '{inside}': Read-only file system",
            "refused",
        ], p.stderr
        assert not os.path.exists(probe)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(probe)


def test_security_profiles_we_cannot_apply_are_refused(daemon: RunningDaemon) -> None:
    body = {
        "Image": "busybox",
        "Cmd": ["true"],
        "HostConfig": {"SecurityOpt": ["apparmor=docker-default"]},
    }
    status, answer = daemon.api("POST", "/containers/create", body)
    assert status == 501 and "not implemented" in str(answer)
    p = daemon.docker("run", "--rm", "--security-opt", "apparmor=unconfined", "busybox", "echo", "ok")
    assert _out(p) == "ok"


def test_restart_of_an_autoremove_container(daemon: RunningDaemon, name: str) -> None:
    daemon.docker("run", "-d", "--rm", "--name", name, "busybox", "sleep", "30", check=True)
    p = daemon.docker("restart", "-t", "0", name, timeout=30)
    assert p.returncode == 0, p.stderr
    assert _out(daemon.docker("inspect", "-f", "{{.State.Running}}", name)) == "true"


def test_a_killed_shim_takes_its_container_down(daemon: RunningDaemon, name: str) -> None:
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300", check=True)
    cid = _out(daemon.docker("inspect", "-f", "{{.Id}}", name))
    pid = int(_out(daemon.docker("inspect", "-f", "{{.State.Pid}}", name)))
    import json

    state = json.loads((daemon.exec_root / "containers" / cid / "state.json").read_text())
    os.kill(int(state["shim_pid"]), signal.SIGKILL)
    deadline = time.time() + 15
    while (
        time.time() < deadline and _out(daemon.docker("inspect", "-f", "{{.State.Running}}", name)) != "false"
    ):
        time.sleep(0.1)
    assert _out(daemon.docker("inspect", "-f", "{{.State.Running}}", name)) == "false"
    while time.time() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the container's process outlived its shim"


def test_exec_stdin_passes_binary_data_whole(daemon: RunningDaemon, name: str) -> None:
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "30", check=True)
    data = os.urandom(1 << 20)  # random bytes: ctrl-p ctrl-q among them, which only a TTY treats as keys
    p = daemon.docker("exec", "-i", name, "wc", "-c", input=data)
    assert _out(p) == str(len(data)), p.stderr


def test_disconnected_attach_clients_leave_nothing_open(daemon: RunningDaemon, name: str) -> None:
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    cid = _out(daemon.docker("inspect", "-f", "{{.Id}}", name))
    import json

    shim = int(json.loads((daemon.exec_root / "containers" / cid / "state.json").read_text())["shim_pid"])
    before = len(os.listdir(f"/proc/{shim}/fd"))
    for _ in range(10):
        p = subprocess.Popen(
            [docker_cli(), "attach", "--no-stdin", name],
            env={**os.environ, "DOCKER_HOST": daemon.host},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.2)
        p.kill()
        p.wait()
    deadline = time.time() + 10  # the daemon looks for vanished clients every second
    while time.time() < deadline and len(os.listdir(f"/proc/{shim}/fd")) > before + 1:
        time.sleep(0.2)
    assert len(os.listdir(f"/proc/{shim}/fd")) <= before + 1
