"""Unit tests of the create checks: one rule each, with the words dockerd (or runc, or go-units) uses."""

import re
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.model import parse_create
from daemon.containers.record import merge_exposed_ports, merge_healthcheck
from daemon.containers.signals import parse_signal
from daemon.containers.ulimits import rlimits
from daemon.containers.update_body import parse_update
from daemon.containers.validate import check_create, go_quote, is_procfs_root
from daemon.errors import Conflict, DaemonError, InvalidParameter, NotImplementedYet
from daemon.runtime.cgroups import Resources, validate
from daemon.runtime.spec import ProcessSpec, Rlimit


def refused(body: dict[str, Any]) -> DaemonError:
    with pytest.raises(DaemonError) as info:
        check_create(parse_create(body), body, 2)
    return info.value


def accepted(body: dict[str, Any]) -> list[str]:
    return check_create(parse_create(body), body, 2)


def hc(**host_config: Any) -> dict[str, Any]:
    return {"Image": "busybox", "HostConfig": host_config}


# --- what the docker CLI sends by default passes -----------------------------------------------

CLI_DEFAULT_BODY: dict[str, Any] = {  # `docker create busybox` from docker CLI 28.2.2, as it went out
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": True,
    "AttachStderr": True,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "busybox",
    "Volumes": {},
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": {},
    "HostConfig": {
        "Binds": None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": [0, 0],
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": None,
        "GroupAdd": None,
        "IpcMode": "",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": False,
        "SecurityOpt": None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": -1,
        "OomKillDisable": False,
        "PidsLimit": 0,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
    },
    "NetworkingConfig": {"EndpointsConfig": {"default": {}}},
}


def test_the_cli_default_body_passes_without_warnings() -> None:
    assert accepted(CLI_DEFAULT_BODY) == []


# --- wrong types: Go's words, as dockerd wraps them ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            hc(Memory="lots"),
            "cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64",
        ),
        ({"Tty": "yes"}, "cannot unmarshal string into Go struct field CreateRequest.Tty of type bool"),
        ({"Cmd": 5}, "cannot unmarshal number into Go struct field CreateRequest.Cmd of type string"),
        ({"Env": [1]}, "cannot unmarshal number into Go struct field CreateRequest.Env of type string"),
        (
            {"Healthcheck": {"Interval": "5s"}},
            "cannot unmarshal string into Go struct field HealthcheckConfig.Healthcheck.Interval of type "
            "time.Duration",
        ),
        (
            {"Healthcheck": {"Test": "CMD true"}},
            "cannot unmarshal string into Go struct field HealthcheckConfig.Healthcheck.Test of type "
            "[]string",
        ),
        (
            {"ExposedPorts": ["80/tcp"]},
            "cannot unmarshal array into Go struct field CreateRequest.ExposedPorts of type nat.PortSet",
        ),
        (
            {"ExposedPorts": {"80/tcp": 1}},
            "cannot unmarshal number into Go struct field CreateRequest.ExposedPorts of type struct {}",
        ),
        (
            hc(Ulimits={"nofile": 5}),
            "cannot unmarshal object into Go struct field HostConfig.HostConfig.Ulimits of type "
            "[]*units.Ulimit",
        ),
        (
            hc(Ulimits=[{"Name": "nofile", "Soft": "5"}]),
            "cannot unmarshal string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64",
        ),
        (
            hc(Memory=2**64),
            f"cannot unmarshal number {2**64} into Go struct field HostConfig.HostConfig.Memory",
        ),
        (
            hc(OomScoreAdj="x"),
            "cannot unmarshal string into Go struct field HostConfig.HostConfig.OomScoreAdj",
        ),
    ],
)
def test_wrong_types_get_gos_words(body: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        check_create(parse_create(body), body, 2)
    assert info.value.message.startswith("invalid JSON: json: " + words)


def test_a_body_that_is_not_an_object() -> None:
    with pytest.raises(
        InvalidParameter, match=r"^invalid JSON: json: cannot unmarshal array into Go value of type "
    ):
        parse_create([])
    with pytest.raises(InvalidParameter, match=r"^config cannot be empty in order to create a container$"):
        parse_create(None)


# --- the container config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"StopSignal": "FOO"}, "invalid signal: FOO"),
        ({"StopSignal": "0"}, "invalid signal: 0"),
        ({"StopSignal": "65"}, "invalid signal: 65"),
        ({"StopSignal": " TERM"}, "invalid signal:  TERM"),
        (
            {"WorkingDir": "rel/dir"},
            "the working directory 'rel/dir' is invalid, it needs to be an absolute path",
        ),
        ({"Env": ["=x"]}, "invalid environment variable: =x"),
        ({"Env": ["A=1", ""]}, "invalid environment variable: "),
        ({"Hostname": "h" * 65}, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
        ({"Hostname": "é" * 33}, f'hostname "{"é" * 33}" is too long (maximum 64 bytes)'),  # 66 bytes
        ({"Domainname": "d" * 65}, f'domainname "{"d" * 65}" is too long (maximum 64 bytes)'),
        ({"Healthcheck": {"Interval": 999_999}}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"Timeout": 1}}, "Timeout in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"StartPeriod": -1}}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"StartInterval": 5}}, "StartInterval in Healthcheck cannot be less than 1ms"),
        ({"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
        ({"ExposedPorts": {"abc/tcp": {}}}, "invalid JSON: invalid port 'abc': invalid syntax"),
        ({"ExposedPorts": {"70000": {}}}, "invalid JSON: invalid port '70000': value out of range"),
        ({"ExposedPorts": {"80-90/tcp": {}}}, "invalid JSON: invalid port '80-90': invalid syntax"),
        ({"ExposedPorts": {"/udp": {}}}, "invalid JSON: invalid port '': value is empty"),
        ({"ExposedPorts": {"": {}}}, "invalid JSON: invalid port: value is empty"),
    ],
)
def test_container_config_refusals(body: dict[str, Any], message: str) -> None:
    error = refused({"Image": "busybox", **body})
    assert isinstance(error, InvalidParameter)
    assert error.message == message


def test_container_config_accepted() -> None:
    body = {
        "Image": "busybox",
        "StopSignal": "sigrtmin+3",
        "WorkingDir": "/a/../b/",
        "Env": ["A=1", "B"],
        "Hostname": "h" * 64,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000, "Retries": 0},
        "ExposedPorts": {"80": {}, "53/UDP": None, "0/tcp": {}},
    }
    assert accepted(body) == []


def test_signals_like_dockers_map() -> None:
    assert parse_signal("KILL") == 9 and parse_signal("sigterm") == 15 and parse_signal("+2") == 2
    assert parse_signal("RTMIN") == 34 and parse_signal("RTMIN+15") == 49
    assert parse_signal("SIGRTMAX-14") == 50 and parse_signal("RTMAX") == 64
    for bad in ("RTMIN+16", "SIGSIGTERM", "", "1_0", "9 ", "-1", "NOPE"):
        with pytest.raises(ValueError, match=r"^invalid signal: "):
            parse_signal(bad)


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\tnul\x00é\u200b") == '"tab\\tnul\\x00é\\u200b"'


# --- the host config ---------------------------------------------------------------------------

RESTART_ONE_OF = "use one of 'no', 'always', 'on-failure', or 'unless-stopped'"


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        (
            {"RestartPolicy": {"Name": "sometimes"}},
            f"invalid restart policy: unknown policy 'sometimes'; {RESTART_ONE_OF}",
        ),
        (
            {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            {"RestartPolicy": {"Name": "no", "MaximumRetryCount": -1}},
            "invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot "
            "be negative",
        ),
        (
            {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}},
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            {"AutoRemove": True, "RestartPolicy": {"Name": "unless-stopped"}},
            "can't create 'AutoRemove' container with restart policy",
        ),
        (
            {"Binds": ["/tmp:/proc"]},
            "invalid volume specification: '/tmp:/proc': \"/proc\" cannot be mounted because it is not "
            "of type proc",
        ),
        (
            {"Binds": ["/tmp:/proc/sys/kernel:ro"]},
            "invalid volume specification: '/tmp:/proc/sys/kernel:ro': \"/proc/sys/kernel\" cannot be "
            "mounted "
            "because it is inside /proc",
        ),
        (
            {"Binds": ["/tmp://proc/./sys"]},  # what the container's resolution would make of it
            "invalid volume specification: '/tmp://proc/./sys': \"/proc/sys\" cannot be mounted "
            "because it is "
            "inside /proc",
        ),
        (
            {"Binds": ["/tmp:/x/../proc/sysrq-trigger"]},
            "invalid volume specification: '/tmp:/x/../proc/sysrq-trigger': \"/proc/sysrq-trigger\" "
            "cannot be "
            "mounted because it is inside /proc",
        ),
        (
            {"Annotations": {"": "x"}},
            "invalid Annotations: the empty string is not permitted as an annotation key",
        ),
        ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: nofiles"),
        ({"Ulimits": [{"Soft": 1, "Hard": 1}]}, "invalid ulimit type: "),
        (
            {"Ulimits": [{"Name": "nofile", "Soft": 3, "Hard": 2}]},
            "ulimit soft limit must be less than or equal to hard limit: 3 > 2",
        ),
        (
            {"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": 2}]},
            "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 2",
        ),
        (
            {"Ulimits": [{"Name": "core", "Soft": -2, "Hard": -1}]},
            "invalid ulimit value for core: -2 (use -1 for unlimited)",
        ),
        ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
        ({"MemorySwappiness": -2}, "Invalid value: -2, valid memory swappiness range is 0-100"),
        ({"OomScoreAdj": -1001}, "Invalid value -1001, range for oom score adj is [-1000, 1000]"),
        ({"ShmSize": -1}, "SHM size can not be less than 0"),
        ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
        ({"IpcMode": "weird"}, "invalid IPC mode: weird"),
        ({"PidMode": "container:"}, "invalid PID mode: container:"),
        ({"UTSMode": "private"}, "invalid UTS mode: private"),
        ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
        ({"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
        (
            {"IOMaximumBandwidth": 1},
            "invalid option: QoS maximum bandwidth configuration is not supported on linux",
        ),
        ({"IOMaximumIOps": 1}, "invalid option: QoS maximum IOPs configuration is not supported on linux"),
        (
            {"CpuRealtimePeriod": 10, "CpuRealtimeRuntime": 20},
            "cpu real-time runtime cannot be higher than cpu real-time period",
        ),
        ({"Runtime": "kata"}, "unknown or invalid runtime name: kata"),
        ({"LogConfig": {"Type": "nosuch"}}, "logger: no log driver named 'nosuch' is registered"),
        (
            {"LogConfig": {"Type": "json-file", "Config": {"size": "1"}}},
            "unknown log opt 'size' for json-file log driver",
        ),
        ({"LogConfig": {"Config": {"mode": "fast"}}}, "logger: logging mode not supported: fast"),
    ],
)
def test_host_config_refusals(host_config: dict[str, Any], message: str) -> None:
    error = refused(hc(**host_config))
    assert isinstance(error, InvalidParameter)
    assert error.message == message


def test_uts_host_with_a_hostname_conflicts() -> None:
    error = refused({"Image": "busybox", "Hostname": "h", "HostConfig": {"UTSMode": "host"}})
    assert error.message == "conflicting options: hostname and the UTS mode"


def test_host_config_accepted() -> None:
    assert (
        accepted(
            hc(
                RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3},
                Binds=["/tmp/cpuinfo:/proc/cpuinfo:ro", "/tmp:/data", "/tmp:/procfs"],
                Ulimits=[
                    {"Name": "nofile", "Soft": 1024, "Hard": 2048},
                    {"Name": "core", "Soft": -1, "Hard": -1},
                ],
                MemorySwappiness=-1,
                IpcMode="shareable",
                CgroupnsMode="private",
                UsernsMode="host",
                Isolation="Default",
                Runtime="runc",
                ShmSize=64 * 1024 * 1024,
                LogConfig={"Type": "json-file", "Config": {"mode": "blocking", "max-size": ""}},
                Annotations={"a": "b"},
            )
        )
        == []
    )
    assert accepted(hc(AutoRemove=True, RestartPolicy={"Name": "no"})) == []
    assert accepted(hc(AutoRemove=True, RestartPolicy={"Name": ""})) == []


def test_a_real_procfs_may_cover_proc(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
        "23 1 0:22 /sub /mnt/procsub rw shared:13 - proc proc rw\n"
        "24 1 0:23 / /tmp rw shared:14 - tmpfs tmpfs rw\n"
    )
    assert is_procfs_root("/proc", str(mountinfo))
    assert not is_procfs_root("/mnt/procsub", str(mountinfo))  # not the root of its procfs
    assert not is_procfs_root("/tmp", str(mountinfo))
    assert not is_procfs_root("/proc/self", str(mountinfo))
    assert accepted(hc(Binds=["/proc:/proc"])) == []  # the host's real one


def test_kernel_memory_is_discarded_with_a_warning() -> None:
    assert accepted(hc(KernelMemory=10 * 1024 * 1024)) == [
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded."
    ]
    assert accepted(hc(CpuPercent=50)) == ["linux does not support CPU percent. Percent discarded."]


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (hc(Init=True), "HostConfig.Init"),
        (hc(OomKillDisable=True), "HostConfig.OomKillDisable"),
        (hc(OomScoreAdj=500), "HostConfig.OomScoreAdj"),
        (hc(MemorySwappiness=10), "HostConfig.MemorySwappiness"),
        (hc(ShmSize=1024), "HostConfig.ShmSize (a /dev/shm other than 64MB)"),
        (hc(MaskedPaths=[]), "HostConfig.MaskedPaths"),
        (hc(ReadonlyPaths=["/proc/x"]), "HostConfig.ReadonlyPaths"),
        (hc(GroupAdd=["audio"]), "HostConfig.GroupAdd"),
        (hc(Sysctls={"net.ipv4.ip_forward": "1"}), "HostConfig.Sysctls"),
        (hc(StorageOpt={"size": "1G"}), "HostConfig.StorageOpt"),
        (hc(DeviceRequests=[{"Count": -1}]), "HostConfig.DeviceRequests"),
        (hc(CgroupParent="mine"), "HostConfig.CgroupParent"),
        (hc(VolumeDriver="local"), "HostConfig.VolumeDriver"),
        (hc(BlkioWeight=500), "HostConfig.BlkioWeight"),
        (hc(KernelMemoryTCP=1 << 20), "HostConfig.KernelMemoryTCP"),
        (hc(IpcMode="host"), "HostConfig.IpcMode 'host'"),
        (hc(PidMode="host"), "HostConfig.PidMode 'host'"),
        (hc(UTSMode="host"), "HostConfig.UTSMode 'host'"),
        (hc(CgroupnsMode="host"), "HostConfig.CgroupnsMode 'host'"),
        (hc(LogConfig={"Type": "syslog"}), "log driver 'syslog'"),
        (hc(LogConfig={"Config": {"max-size": "10m"}}), "log option max-size"),
        (hc(LogConfig={"Config": {"mode": "non-blocking"}}), "log option mode=non-blocking"),
    ],
)
def test_options_we_do_not_implement_are_501(body: dict[str, Any], what: str) -> None:
    error = refused(body)
    assert isinstance(error, NotImplementedYet)
    assert error.message == f"{what} is not implemented in pydockerd yet"


def test_anonymous_volumes_are_501() -> None:
    error = refused({"Image": "busybox", "Volumes": {"/data": {}, "/cache": {}}})
    assert isinstance(error, NotImplementedYet)
    assert error.message == "anonymous volumes are not implemented in pydockerd yet: /cache, /data"


# --- CPU shares (the resource checks, shared with `docker update`) -----------------------------


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        (-5, "invalid CPU shares (-5): value must be a positive integer"),
        (1, "the minimum allowed cpu-shares is 2"),
        (262_145, "the maximum allowed cpu-shares is 262144"),
    ],
)
def test_cpu_shares_out_of_the_kernels_range(shares: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate(Resources(cpu_shares=shares), ncpu=2)
    for fine in (0, 2, 1024, 262_144):
        validate(Resources(cpu_shares=fine), ncpu=2)


# --- what is stored -----------------------------------------------------------------------------


def test_exposed_ports_are_normalised_and_merged_with_the_images() -> None:
    assert merge_exposed_ports({"80": {}, "53/UDP": None}, {"8080/tcp": {}, "80/tcp": {}}) == {
        "80/tcp": {},
        "53/udp": {},
        "8080/tcp": {},
    }
    assert merge_exposed_ports(None, None) is None


def test_healthcheck_is_merged_with_the_images_like_docker() -> None:
    image = {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 30_000_000_000, "Retries": 3}
    user = parse_create({"Healthcheck": {"Timeout": 5_000_000_000}}).Healthcheck
    assert merge_healthcheck(user, image) == {
        "Test": ["CMD-SHELL", "curl -f localhost"],
        "Interval": 30_000_000_000,
        "Timeout": 5_000_000_000,
        "Retries": 3,
    }
    assert merge_healthcheck(None, image) == image
    none = parse_create({"Healthcheck": {"Test": ["NONE"]}}).Healthcheck
    assert merge_healthcheck(none, image) == {"Test": ["NONE"], "Interval": 30_000_000_000, "Retries": 3}


def test_ulimits_become_the_processes_rlimits() -> None:
    stored = {"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}, {"Name": "nofile", "Soft": 3, "Hard": 4}]}
    assert rlimits(stored) == [Rlimit("nofile", 3, 4)]  # the last one wins, as in runc
    assert rlimits({"Ulimits": None}) == []
    spec = ProcessSpec(args=["true"], env=[], rlimits=[{"type": "core", "soft": -1, "hard": -1}])  # type: ignore[list-item]
    assert spec.rlimits == [Rlimit("core", -1, -1)]


# --- update ---------------------------------------------------------------------------------------


def test_update_changes_only_what_is_set() -> None:
    cli_body = {  # `docker update --cpu-shares 512 x` from docker CLI 28.2.2 (abridged: zero keys)
        "CpuShares": 512,
        "Memory": 0,
        "NanoCpus": 0,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpusetCpus": "",
        "MemorySwap": 0,
        "MemoryReservation": 0,
        "PidsLimit": None,
        "BlkioWeight": 0,
        "Ulimits": None,
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }
    update = parse_update(cli_body, "c" * 64, auto_remove=False)
    assert update.resources == {"CpuShares": 512}
    assert update.restart_policy is None
    assert parse_update({"PidsLimit": -1}, "c", False).resources == {"PidsLimit": 0}  # lifted
    assert parse_update({"RestartPolicy": {"Name": "always"}}, "c", False).restart_policy == {
        "Name": "always",
        "MaximumRetryCount": 0,
    }


def test_update_refusals() -> None:
    with pytest.raises(InvalidParameter, match=r"Go struct field UpdateConfig\.Memory of type int64$"):
        parse_update({"Memory": "64m"}, "c", False)
    with pytest.raises(InvalidParameter, match=r"^invalid JSON: json: cannot unmarshal array into Go value"):
        parse_update([], "c", False)
    with pytest.raises(InvalidParameter, match=r"^invalid restart policy: unknown policy 'often'"):
        parse_update({"RestartPolicy": {"Name": "often"}}, "c", False)
    with pytest.raises(Conflict, match=r"^Cannot update container c: Restart policy cannot be updated"):
        parse_update({"RestartPolicy": {"Name": "always"}}, "c", True)
    assert parse_update({"RestartPolicy": {"Name": "no"}}, "c", True).restart_policy == {
        "Name": "no",
        "MaximumRetryCount": 0,
    }
    with pytest.raises(NotImplementedYet, match=r"^updating BlkioWeight is not implemented"):
        parse_update({"BlkioWeight": 300}, "c", False)
