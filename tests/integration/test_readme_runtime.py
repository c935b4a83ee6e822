"""The README's runtime claims, each checked where the kernel keeps it, through a real daemon and the
docker CLI: the device allow-list, resource limits, capabilities, rlimits, the network namespace."""

import os
import re
import uuid
from pathlib import Path

import pytest

from daemon.runtime import bpf
from tests.conftest import RunningDaemon, daemon_in_new_dir
from tests.integration.test_cli_containers import cgroup_file

pytestmark = [pytest.mark.root, pytest.mark.integration]

V2_HOST = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
V1_DEVICES = os.path.isfile("/sys/fs/cgroup/devices/devices.list")
NOFILE_DOCKER = 1048576  # what Docker gives a container without a nofile ulimit
CAP_NET_ADMIN = 12


def ok(d: RunningDaemon, *args: str) -> str:
    p = d.docker(*args)
    assert p.returncode == 0, (args, p.stderr.decode())
    return p.stdout.decode().strip()


def run_detached(d: RunningDaemon, names: list[str], *args: str) -> int:
    """Start `sleep 300` with these options; the container's host PID."""
    name = f"rm-{uuid.uuid4().hex[:10]}"
    names.append(name)
    ok(d, "run", "-d", "--name", name, *args, "busybox", "sleep", "300")
    return int(ok(d, "inspect", "-f", "{{.State.Pid}}", name))


# --- devices -----------------------------------------------------------------------------------

# A device node outside Docker's list that root may otherwise open: /dev/kmsg (CAP_SYSLOG given, so
# only the device rules stand in the way), and a loop device that need not exist for the refusal.
DEVICE_PROBE = (
    "mknod /tmp/kmsg c 1 11 && echo mknod ok; mknod /tmp/loop b 7 0 && echo mknod ok; "
    "(exec 3< /tmp/kmsg) 2>&1; (exec 3< /tmp/loop) 2>&1; head -c 3 /dev/zero | wc -c"
)


def test_devices_outside_the_list_can_be_made_but_not_opened(daemon: RunningDaemon) -> None:
    out = ok(daemon, "run", "--rm", "--cap-add", "SYSLOG", "busybox", "sh", "-c", DEVICE_PROBE)
    assert out.splitlines() == [
        "mknod ok",
        "mknod ok",
        "sh: can't open /tmp/kmsg: Operation not permitted",
        "sh: can't open /tmp/loop: Operation not permitted",
        "3",
    ]
    # the control: without the list (privileged) the same node opens, so the list refused it above
    out = ok(
        daemon,
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mknod /k c 1 11 && (exec 3< /k) && echo opened",
    )
    assert out == "opened"


@pytest.mark.skipif(not V1_DEVICES or V2_HOST, reason="needs the cgroup v1 devices controller")
def test_v1_devices_cgroup_holds_dockers_list(daemon: RunningDaemon, names: list[str]) -> None:
    pid = run_detached(daemon, names)
    rules = cgroup_file(pid, "devices", "devices.list", "").splitlines()
    assert sorted(rules) == sorted(
        [
            "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
            "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
        ]
    )  # fmt: skip
    pid = run_detached(daemon, names, "--privileged")
    assert cgroup_file(pid, "devices", "devices.list", "") == "a *:* rwm"


@pytest.mark.skipif(not V2_HOST, reason="cgroup v2 only: /sys/fs/cgroup has no v2 controllers on this host")
def test_v2_container_cgroup_has_one_device_filter(daemon: RunningDaemon, names: list[str]) -> None:
    pid = run_detached(daemon, names)
    own = next(
        line[3:] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::")
    )
    fd = os.open(f"/sys/fs/cgroup{own}", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.prog_query(fd, bpf.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(fd)


# --- resources ---------------------------------------------------------------------------------


def test_cpus_pids_and_cpuset_reach_the_kernel(daemon: RunningDaemon, names: list[str]) -> None:
    pid = run_detached(daemon, names, "--cpus", "0.5", "--pids-limit", "20", "--cpuset-cpus", "0")
    if V2_HOST:
        assert cgroup_file(pid, "cpu", "", "cpu.max") == "50000 100000"
    else:
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "") == "50000"
        assert cgroup_file(pid, "cpu", "cpu.cfs_period_us", "") == "100000"
    assert cgroup_file(pid, "pids", "pids.max", "pids.max") == "20"
    assert cgroup_file(pid, "cpuset", "cpuset.cpus", "cpuset.cpus") == "0"
    assert os.sched_getaffinity(pid) == {0}


# --- capabilities --------------------------------------------------------------------------------


def _effective_caps(d: RunningDaemon, *options: str) -> int:
    out = ok(d, "run", "--rm", *options, "busybox", "grep", "CapEff", "/proc/self/status")
    return int(out.split()[1], 16)


def test_cap_add_gives_the_capability(daemon: RunningDaemon) -> None:
    assert not _effective_caps(daemon) & (1 << CAP_NET_ADMIN)
    assert _effective_caps(daemon, "--cap-add", "NET_ADMIN") & (1 << CAP_NET_ADMIN)
    script = "ip link set lo down 2>&1 && echo done"
    refused = daemon.docker("run", "--rm", "busybox", "sh", "-c", script)
    assert refused.stdout.decode().strip() == "ip: SIOCSIFFLAGS: Operation not permitted"
    assert ok(daemon, "run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c", script) == "done"


# --- rlimits -------------------------------------------------------------------------------------


def _nofile(d: RunningDaemon, *options: str) -> tuple[int, int]:
    soft, hard = ok(d, "run", "--rm", *options, "busybox", "sh", "-c", "ulimit -Sn; ulimit -Hn").split()
    return int(soft), int(hard)


def _hard_nofile(pid: int) -> int:
    limits = Path(f"/proc/{pid}/limits").read_text()
    m = re.search(r"^Max open files\s+\d+\s+(\d+|unlimited)", limits, re.M)
    assert m, limits
    return 1 << 62 if m.group(1) == "unlimited" else int(m.group(1))


def test_nofile_is_dockers_clamped_to_the_hosts_hard_limit(daemon: RunningDaemon) -> None:
    expected = min(NOFILE_DOCKER, _hard_nofile(daemon.proc.pid))
    assert _nofile(daemon) == (expected, expected)


def test_nofile_under_a_low_hard_limit_and_an_explicit_ulimit() -> None:
    with daemon_in_new_dir("pyd-rl-", wrapper=("prlimit", "--nofile=3000:3000", "--")) as d:
        assert _hard_nofile(d.proc.pid) == 3000
        assert _nofile(d) == (3000, 3000)
        assert _nofile(d, "--ulimit", "nofile=100:200") == (100, 200)


# --- network -------------------------------------------------------------------------------------


def test_network_none_namespace_holds_only_lo(daemon: RunningDaemon, names: list[str]) -> None:
    assert ok(daemon, "run", "--rm", "busybox", "ls", "/sys/class/net").split() == ["eth0", "lo"]
    assert ok(daemon, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net") == "lo"
    pid = run_detached(daemon, names, "--network", "none")
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    links = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]  # the namespace's, seen from here
    assert [line.split(":")[0].strip() for line in links] == ["lo"]
