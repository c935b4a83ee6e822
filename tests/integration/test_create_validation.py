"""Create refuses what dockerd refuses (400, its words) and what we do not implement (501), leaving
nothing behind; what it accepts is honoured: ulimits are set in the container and its execs, a
StopSignal Docker knows is the one `docker stop` sends."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningDaemon
from tests.integration.test_bad_input import assert_no_new_traces, assert_no_traces_of, traces
from tests.integration.test_cli_containers import cgroup_file

pytestmark = [pytest.mark.root, pytest.mark.integration]

RESTART_ONE_OF = "use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
MIB = 1024 * 1024


@pytest.fixture
def d(daemon: RunningDaemon) -> Iterator[RunningDaemon]:
    """The session daemon; the containers a test made are force-removed afterwards."""
    before = container_ids(daemon)
    yield daemon
    for cid in container_ids(daemon) - before:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def container_ids(d: RunningDaemon) -> set[str]:
    status, listing = d.api("GET", "/containers/json?all=1")
    assert status == 200 and isinstance(listing, list), listing
    return {c["Id"] for c in listing}


def create(d: RunningDaemon, body: dict[str, Any]) -> tuple[int, Any]:
    return d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body})


def refused(d: RunningDaemon, body: dict[str, Any]) -> tuple[int, str]:
    """Create with `body`: the status and message, after checking that nothing was made."""
    before, ids = traces(d), container_ids(d)
    status, out = create(d, body)
    assert isinstance(out, dict) and isinstance(out.get("message"), str), (status, out)
    assert container_ids(d) == ids, "a container was made"
    assert_no_new_traces(d, before)  # no record directory, exec dir, shim, mount or cgroup
    return status, out["message"]


def hc(**host_config: Any) -> dict[str, Any]:
    return {"HostConfig": host_config}


REFUSALS = [
    ({"StopSignal": "SIGNOPE"}, "invalid signal: SIGNOPE"),
    (
        hc(RestartPolicy={"Name": "sometimes"}),
        f"invalid restart policy: unknown policy 'sometimes'; {RESTART_ONE_OF}",
    ),
    (
        hc(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": -2}),
        "invalid restart policy: maximum retry count cannot be negative",
    ),
    (
        hc(AutoRemove=True, RestartPolicy={"Name": "always"}),
        "can't create 'AutoRemove' container with restart policy",
    ),
    (hc(MemoryReservation=MIB), "Minimum memory reservation allowed is 6MB"),
    (
        hc(Memory=64 * MIB, MemorySwap=32 * MIB),
        "Minimum memoryswap limit should be larger than memory limit, see usage",
    ),
    (
        hc(Memory=8 * MIB, MemoryReservation=16 * MIB),
        "Minimum memory limit can not be less than memory reservation limit, see usage",
    ),
    (hc(MemorySwappiness=200), "Invalid value: 200, valid memory swappiness range is 0-100"),
    (hc(CpuShares=-1), "invalid CPU shares (-1): value must be a positive integer"),
    (hc(CpuShares=1), "the minimum allowed cpu-shares is 2"),
    (hc(CpuShares=262_145), "the maximum allowed cpu-shares is 262144"),
    ({"Hostname": "h" * 65}, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
    ({"WorkingDir": "work"}, "the working directory 'work' is invalid, it needs to be an absolute path"),
    (
        hc(Binds=["/tmp:/proc"]),
        "invalid volume specification: '/tmp:/proc': \"/proc\" cannot be mounted because it is not "
        "of type proc",
    ),
    (
        hc(Binds=["/tmp:/proc/sys/kernel"]),
        "invalid volume specification: '/tmp:/proc/sys/kernel': \"/proc/sys/kernel\" cannot be "
        "mounted because "
        "it is inside /proc",
    ),
    ({"ExposedPorts": {"http/tcp": {}}}, "invalid JSON: invalid port 'http': invalid syntax"),
    (
        {"ExposedPorts": ["80/tcp"]},
        "invalid JSON: json: cannot unmarshal array into Go struct field "
        "CreateRequest.ExposedPorts of type nat.PortSet",
    ),
    (
        {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000}},
        "Interval in Healthcheck cannot be less than 1ms",
    ),
    ({"Healthcheck": {"Retries": -3}}, "Retries in Healthcheck cannot be negative"),
    (
        {"Healthcheck": {"Interval": "30s"}},
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "HealthcheckConfig.Healthcheck.Interval "
        "of type time.Duration",
    ),
    (hc(Ulimits=[{"Name": "openfiles", "Soft": 1, "Hard": 1}]), "invalid ulimit type: openfiles"),
    (
        hc(Ulimits=[{"Name": "nofile", "Soft": 4096, "Hard": 1024}]),
        "ulimit soft limit must be less than or equal to hard limit: 4096 > 1024",
    ),
    (
        hc(Ulimits=[{"Name": "nofile", "Soft": "1024"}]),
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "Ulimit.HostConfig.Ulimits.Soft of type int64",
    ),
    ({"Env": ["=oops"]}, "invalid environment variable: =oops"),
    (hc(IpcMode="everything"), "invalid IPC mode: everything"),
    (hc(OomScoreAdj=2000), "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    (hc(LogConfig={"Type": "carrier-pigeon"}), "logger: no log driver named 'carrier-pigeon' is registered"),
]


@pytest.mark.parametrize(("body", "message"), REFUSALS, ids=[m[:40] for _, m in REFUSALS])
def test_create_refuses_with_dockers_words_and_makes_nothing(
    d: RunningDaemon, body: dict[str, Any], message: str
) -> None:
    assert refused(d, body) == (400, message)


NOT_IMPLEMENTED = [
    (hc(Init=True), "HostConfig.Init is not implemented in pydockerd yet"),
    (
        hc(ShmSize=256 * MIB),
        "HostConfig.ShmSize (a /dev/shm other than 64MB) is not implemented in pydockerd yet",
    ),
    (hc(MaskedPaths=[]), "HostConfig.MaskedPaths is not implemented in pydockerd yet"),
    (hc(OomKillDisable=True), "HostConfig.OomKillDisable is not implemented in pydockerd yet"),
    (hc(PidMode="host"), "HostConfig.PidMode 'host' is not implemented in pydockerd yet"),
    (
        hc(LogConfig={"Type": "json-file", "Config": {"max-size": "10m"}}),
        "log option max-size is not implemented in pydockerd yet",
    ),
    ({"Volumes": {"/data": {}}}, "anonymous volumes are not implemented in pydockerd yet: /data"),
]


@pytest.mark.parametrize(("body", "message"), NOT_IMPLEMENTED, ids=[m[:40] for _, m in NOT_IMPLEMENTED])
def test_create_refuses_what_we_would_ignore_with_501(
    d: RunningDaemon, body: dict[str, Any], message: str
) -> None:
    assert refused(d, body) == (501, message)


CLI_REFUSALS = [
    (["--cpu-shares", "1"], "the minimum allowed cpu-shares is 2"),
    (["--hostname", "h" * 65], "is too long (maximum 64 bytes)"),
    (["--workdir", "work"], "the working directory 'work' is invalid, it needs to be an absolute path"),
    (["--stop-signal", "SIGNOPE"], "invalid signal: SIGNOPE"),
    (["--restart", "sometimes"], "invalid restart policy: unknown policy 'sometimes'"),
    (
        ["-v", "/tmp:/proc/sysrq-trigger"],
        '"/proc/sysrq-trigger" cannot be mounted because it is inside /proc',
    ),
    (
        ["--health-cmd", "true", "--health-interval", "10us"],
        "Interval in Healthcheck cannot be less than 1ms",
    ),
    (["--init"], "HostConfig.Init is not implemented in pydockerd yet"),
]


@pytest.mark.parametrize(("args", "words"), CLI_REFUSALS, ids=[a[0] for a, _ in CLI_REFUSALS])
def test_cli_run_is_refused_before_anything_runs(d: RunningDaemon, args: list[str], words: str) -> None:
    before, ids = traces(d), container_ids(d)
    p = d.docker("run", *args, "busybox", "true")
    assert p.returncode == 125, p
    assert words in p.stderr.decode(), p.stderr
    assert container_ids(d) == ids
    assert_no_new_traces(d, before)


# --- what is accepted is honoured ---------------------------------------------------------------


def _limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/<pid>/limits -> {"Max open files": (soft, hard), ...}"""
    out = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


@pytest.fixture
def name(d: RunningDaemon) -> Iterator[str]:
    n = f"val-{uuid.uuid4().hex[:8]}"
    yield n
    d.docker("rm", "-f", n)


def test_ulimits_are_set_in_the_container_and_in_its_execs(d: RunningDaemon, name: str) -> None:
    d.docker(
        "run", "-d", "--name", name,
        "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=500:600", "--ulimit", "core=-1",
        "busybox", "sleep", "60",
        check=True,
    )  # fmt: skip
    for pid in ("1", "self"):  # the first process, then an exec
        p = d.docker("exec", name, "cat", f"/proc/{pid}/limits")
        limits = _limits(p.stdout.decode())
        assert limits["Max open files"] == ("1024", "2048"), limits
        assert limits["Max processes"] == ("500", "600"), limits
        assert limits["Max core file size"] == ("unlimited", "unlimited"), limits


def test_without_a_nofile_ulimit_the_hosts_hard_limit_is_kept(d: RunningDaemon) -> None:
    daemon_hard = _limits(Path(f"/proc/{d.proc.pid}/limits").read_text())["Max open files"][1]
    p = d.docker("run", "--rm", "busybox", "cat", "/proc/self/limits")
    soft, hard = _limits(p.stdout.decode())["Max open files"]
    wanted = "1048576" if daemon_hard == "unlimited" else str(min(1048576, int(daemon_hard)))
    assert (soft, hard) == (wanted, wanted)


def test_a_ulimit_the_kernel_refuses_fails_the_start_and_leaves_nothing(d: RunningDaemon) -> None:
    too_many = int(Path("/proc/sys/fs/nr_open").read_text()) + 1  # beyond it even root is refused
    status, out = create(d, hc(Ulimits=[{"Name": "nofile", "Soft": too_many, "Hard": too_many}]))
    assert status == 201, out
    cid = out["Id"]
    before = traces(d)
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert status == 500, out
    assert "error setting rlimit type nofile: operation not permitted" in out["message"]
    state = d.api("GET", f"/containers/{cid}/json")[1]["State"]
    assert (state["Running"], state["ExitCode"]) == (False, 128), state
    assert_no_traces_of(d, cid)
    assert_no_new_traces(d, before)


def test_a_stop_signal_docker_knows_is_the_one_stop_sends(d: RunningDaemon, name: str) -> None:
    # RTMIN+3 is 37 in Docker's table; the shell exits 7 when it gets it, and only then
    d.docker(
        "run", "-d", "--name", name, "--stop-signal", "RTMIN+3",
        "busybox", "sh", "-c", "trap 'exit 7' 37; while true; do sleep 0.1; done",
        check=True,
    )  # fmt: skip
    p = d.docker("stop", "-t", "20", name)
    assert p.returncode == 0, p.stderr
    state = d.docker("inspect", "-f", "{{.State.ExitCode}} {{.Config.StopSignal}}", name)
    assert state.stdout.decode().split() == ["7", "RTMIN+3"]


def test_hostname_and_domainname_are_set_in_the_container(d: RunningDaemon) -> None:
    p = d.docker(
        "run", "--rm", "--hostname", "h" * 64, "--domainname", "example.internal",
        "busybox", "sh", "-c", "hostname; cat /proc/sys/kernel/domainname",
    )  # fmt: skip
    assert p.stdout.decode().split() == ["h" * 64, "example.internal"], p.stderr
    before = traces(d)
    p = d.docker("run", "--rm", "--domainname", "d" * 65, "busybox", "true")
    assert p.returncode == 125 and "is too long (maximum 64 bytes)" in p.stderr.decode(), p
    assert_no_new_traces(d, before)


def test_what_create_keeps(d: RunningDaemon) -> None:
    status, out = create(
        d,
        {
            "WorkingDir": "//srv/./app/../data/",
            "ExposedPorts": {"80": {}, "53/UDP": {}},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000, "Retries": 0},
            "StopSignal": "sigusr1",
            "HostConfig": {"KernelMemory": 64 * MIB},
        },
    )
    assert status == 201, out
    assert out["Warnings"] == [
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded."
    ]
    config = d.api("GET", f"/containers/{out['Id']}/json")[1]["Config"]
    assert config["WorkingDir"] == "/srv/data"
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000}
    assert config["StopSignal"] == "sigusr1"


def test_update_refuses_cpu_shares_the_kernel_would_clamp(d: RunningDaemon) -> None:
    status, out = create(d, hc(CpuShares=512))
    assert status == 201, out
    cid = out["Id"]
    status, out = d.api("POST", f"/containers/{cid}/update", {"CpuShares": 1})
    assert (status, out["message"]) == (400, "the minimum allowed cpu-shares is 2")
    assert d.api("GET", f"/containers/{cid}/json")[1]["HostConfig"]["CpuShares"] == 512


def test_sdk_run_with_ulimits(d: RunningDaemon) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=d.host, version="auto")
    try:
        out = client.containers.run(
            "busybox",
            ["sh", "-c", "ulimit -Sn; ulimit -Hn"],
            ulimits=[docker.types.Ulimit(name="nofile", soft=256, hard=512)],
            remove=True,
        )
        assert out.decode().split() == ["256", "512"]
        with pytest.raises(docker.errors.APIError, match="invalid ulimit type: fds"):
            client.containers.create(
                "busybox", "true", ulimits=[docker.types.Ulimit(name="fds", soft=1, hard=1)]
            )
    finally:
        client.close()


# --- update -------------------------------------------------------------------------------------


def test_update_of_the_restart_policy_keeps_the_limits(d: RunningDaemon, name: str) -> None:
    # the CLI sends every resource key, zero when not given: zero means "unchanged"
    d.docker(
        "run", "-d", "--name", name, "-m", "64m", "--cpu-shares", "512", "busybox", "sleep", "60", check=True
    )
    p = d.docker("update", "--restart", "on-failure:3", name)
    assert p.returncode == 0, p.stderr
    pid = int(d.docker("inspect", "-f", "{{.State.Pid}}", name).stdout)
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max") == str(64 * MIB)
    got = d.docker(
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} "
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        name,
    )
    assert got.stdout.decode().strip() == f"{64 * MIB} 512 on-failure:3"


def test_update_refuses_a_bad_restart_policy(d: RunningDaemon) -> None:
    status, out = create(d, {})
    assert status == 201, out
    cid = out["Id"]
    status, out = d.api("POST", f"/containers/{cid}/update", {"RestartPolicy": {"Name": "sometimes"}})
    assert (status, out["message"]) == (
        400,
        f"invalid restart policy: unknown policy 'sometimes'; {RESTART_ONE_OF}",
    )
    status, out = d.api("POST", f"/containers/{cid}/update", {"Memory": "64m"})
    assert (status, out["message"]) == (
        400,
        "invalid JSON: json: cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64",
    )
    status, out = create(d, hc(AutoRemove=True))
    assert status == 201, out
    auto = out["Id"]
    status, out = d.api("POST", f"/containers/{auto}/update", {"RestartPolicy": {"Name": "always"}})
    assert (status, out["message"]) == (
        409,
        f"Cannot update container {auto}: Restart policy cannot be updated because AutoRemove is enabled for "
        "the container",
    )
    for c in (cid, auto):
        assert d.api("GET", f"/containers/{c}/json")[1]["HostConfig"]["RestartPolicy"] == {
            "Name": "no",
            "MaximumRetryCount": 0,
        }
