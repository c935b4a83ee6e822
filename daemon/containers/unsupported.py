"""Create options we do not implement yet: refused with 501 and a message, never accepted and ignored.

A key is refused only when it asks for something (a value other than what clients send by default);
the docker CLI sends most keys with their zero value on every create.
"""

from typing import Any

from daemon.containers.model import CreateBody
from daemon.errors import InvalidParameter, NotImplementedYet
from daemon.gojson import check_bool, check_int, check_list, check_map, check_str

DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # the size of our /dev/shm, Docker's default too
LOG_DRIVERS = (  # Docker's own drivers: known, but not ours yet
    "none",
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "gcplogs",
    "etwlogs",
    "logentries",
)
JSON_FILE_OPTIONS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag")

# key -> Go type, for list and map keys refused when not empty
NOT_EMPTY = {
    "BlkioWeightDevice": "[]*blkiodev.WeightDevice",
    "BlkioDeviceReadBps": "[]*blkiodev.ThrottleDevice",
    "BlkioDeviceWriteBps": "[]*blkiodev.ThrottleDevice",
    "BlkioDeviceReadIOps": "[]*blkiodev.ThrottleDevice",
    "BlkioDeviceWriteIOps": "[]*blkiodev.ThrottleDevice",
    "DeviceCgroupRules": "[]string",
    "DeviceRequests": "[]container.DeviceRequest",
    "GroupAdd": "[]string",
    "Sysctls": "map[string]string",
    "StorageOpt": "map[string]string",
}
# volumes and devices, coming in their own issues: refused when they ask for anything
NOT_YET = ("VolumesFrom", "Devices", "Mounts", "Tmpfs")
NOT_SET = {  # string keys refused when not empty
    "CgroupParent": "string",
    "Cgroup": "container.CgroupSpec",
    "VolumeDriver": "string",
}
NOT_NONZERO = ("KernelMemoryTCP", "CpuRealtimePeriod", "CpuRealtimeRuntime", "BlkioWeight")


def _refuse(what: str) -> NotImplementedYet:
    return NotImplementedYet(f"{what} is not implemented in pydockerd yet")


def check(req: CreateBody, hc: dict[str, Any]) -> list[str]:
    """Raise NotImplementedYet for an option we would otherwise ignore; return warnings for options
    Docker itself discards on Linux."""
    check_str(hc, "NetworkMode")  # its value is the network service's to check
    for key in NOT_YET:
        if hc.get(key):
            raise _refuse(f"HostConfig.{key}")
    for key, go_type in NOT_EMPTY.items():
        value = check_map(hc, key, go_type) if go_type.startswith("map") else check_list(hc, key, go_type)
        if value:
            raise _refuse(f"HostConfig.{key}")
    for key, go_type in NOT_SET.items():
        if check_str(hc, key, go_type):
            raise _refuse(f"HostConfig.{key}")
    for key in NOT_NONZERO:
        if check_int(hc, key, "uint16" if key == "BlkioWeight" else "int64"):
            raise _refuse(f"HostConfig.{key}")
    for key in ("OomKillDisable", "Init"):
        if check_bool(hc, key):
            raise _refuse(f"HostConfig.{key}")
    if check_int(hc, "OomScoreAdj", "int"):
        raise _refuse("HostConfig.OomScoreAdj")
    if hc.get("MemorySwappiness") not in (None, -1):
        raise _refuse("HostConfig.MemorySwappiness")
    if check_int(hc, "ShmSize") not in (0, DEFAULT_SHM_SIZE):
        raise _refuse("HostConfig.ShmSize (a /dev/shm other than 64MB)")
    for key in ("MaskedPaths", "ReadonlyPaths"):
        if hc.get(key) is not None:
            check_list(hc, key, "[]string")
            raise _refuse(f"HostConfig.{key}")
    _check_namespaces(hc)
    _check_log_config(hc)
    if req.Volumes:
        raise NotImplementedYet(
            f"anonymous volumes are not implemented in pydockerd yet: {', '.join(sorted(req.Volumes))}"
        )
    warnings = []
    if check_int(hc, "CpuPercent"):
        warnings.append("linux does not support CPU percent. Percent discarded.")
    if check_int(hc, "CpuCount"):
        warnings.append("linux does not support CPU count. Count discarded.")
    return warnings


def _check_namespaces(hc: dict[str, Any]) -> None:
    """What we make: private IPC, PID, UTS and cgroup namespaces, and no user namespace."""
    modes = {
        "IpcMode": ("", "private", "shareable"),  # nobody can join ours yet: shareable is private
        "PidMode": ("",),
        "UTSMode": ("",),
        "CgroupnsMode": ("", "private"),
        "UsernsMode": ("", "host"),
    }
    for key, ours in modes.items():
        value = check_str(hc, key)
        if value not in ours:
            raise _refuse(f"HostConfig.{key} {value!r}")


def _check_log_config(hc: dict[str, Any]) -> None:
    """Logs are json-file, kept whole: a driver or an option we do not apply is refused."""
    log_config = hc.get("LogConfig") or {}
    driver = log_config.get("Type") or "json-file"
    options = log_config.get("Config") or {}
    if driver != "json-file":
        if driver in LOG_DRIVERS:
            raise _refuse(f"log driver {driver!r}")
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    mode = options.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidParameter(f"logger: logging mode not supported: {mode}")
    for key, value in options.items():
        if key in ("mode", "max-buffer-size"):
            if key == "max-buffer-size" or value == "non-blocking":
                raise _refuse(f"log option {key}={value}")
            continue
        if key not in JSON_FILE_OPTIONS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
        if value != "":
            raise _refuse(f"log option {key}")
