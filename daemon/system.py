"""`/version` and `/info`: real figures about this daemon and its host."""

import os
import platform
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from daemon import __version__
from daemon.apiversion import API_VERSION, MIN_API_VERSION
from daemon.containers.service import ContainerService
from daemon.containers.state import Status
from daemon.events.bus import EventBus
from daemon.hostinfo import ipv4_forwarding, supports_d_type, swap_limit
from daemon.runtime.cgroups import CgroupManager
from daemon.timefmt import rfc3339_nano

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value.strip().strip('"')
    except OSError:
        pass
    return out


DOCKER_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}  # as Docker names them


def backing_filesystem(path: Path) -> str:
    """The type of the file system holding `path`: the longest mount point above it."""
    best, fstype = "", "unknown"
    target = str(path.resolve())
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return fstype
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, fields[2]
    return DOCKER_FS_NAMES.get(fstype, fstype)


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ImageCount(Protocol):
    def count(self) -> int: ...


class SystemService:
    def __init__(
        self,
        containers: ContainerService,
        images: ImageCount,
        cgroups: CgroupManager,
        events: EventBus,
        data_root: Path,
        exec_root: Path,
        warnings: Callable[[], list[str]] = list,
    ) -> None:
        self.containers = containers
        self.images = images
        self.cgroups = cgroups
        self.events = events
        self.data_root = data_root
        self.exec_root = exec_root
        self.warnings = warnings  # what `docker info` warns about (e.g. the network service's firewall)
        self.started = time.time()
        self._d_type: bool | None = None  # probed once: the data root's file system does not change

    def version(self) -> dict[str, Any]:
        uname = platform.uname()
        arch = GOARCH.get(uname.machine, uname.machine)
        return {
            "Platform": {"Name": "pydockerd"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": __version__,
                    "Details": {
                        "ApiVersion": API_VERSION,
                        "MinAPIVersion": MIN_API_VERSION,
                        "Os": "linux",
                        "Arch": arch,
                        "KernelVersion": uname.release,
                        "PythonVersion": platform.python_version(),
                    },
                }
            ],
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "python" + platform.python_version(),
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": uname.release,
            "BuildTime": "",
        }

    def info(self) -> dict[str, Any]:
        all_ = self.containers.all()
        running = sum(1 for c in all_ if c.status == Status.RUNNING)
        paused = sum(1 for c in all_ if c.status == Status.PAUSED)
        uname = platform.uname()
        release = _os_release()
        return {
            "ID": self._daemon_id(),
            "Containers": len(all_),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": len(all_) - running - paused,
            "Images": self.images.count(),
            "Driver": "overlay2",
            "DriverStatus": [
                ["Backing Filesystem", backing_filesystem(self.data_root)],
                ["Supports d_type", str(self._supports_d_type()).lower()],
            ],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["host", "null"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": swap_limit(self.cgroups),
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": ipv4_forwarding(),
            "Debug": False,
            "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": False,
            "NGoroutines": 0,
            "SystemTime": rfc3339_nano(time.time_ns()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": str(self.cgroups.version),
            "NEventsListener": self.events.listener_count,
            "KernelVersion": uname.release,
            "OperatingSystem": release.get("PRETTY_NAME", "Linux"),
            "OSVersion": release.get("VERSION_ID", ""),
            "OSType": "linux",
            "Architecture": uname.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "DockerRootDir": str(self.data_root),
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {"pydockerd": {"path": "daemon.runtime.shim"}},
            "DefaultRuntime": "pydockerd",
            "Swarm": {
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "NodeID": "",
                "NodeAddr": "",
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": self._security_options(),
            "Warnings": self.warnings() or None,
        }

    def _supports_d_type(self) -> bool:
        if self._d_type is None:
            self._d_type = supports_d_type(self.data_root)
        return self._d_type

    def _security_options(self) -> list[str]:
        """As dockerd lists them: its default seccomp profile is "builtin"."""
        options = []
        if self.containers.seccomp.enabled:
            options.append("name=seccomp,profile=builtin")
        if os.path.exists("/proc/self/ns/cgroup"):
            options.append("name=cgroupns")
        return options

    def _daemon_id(self) -> str:
        path = self.data_root / "engine-id"
        try:
            return path.read_text().strip()
        except OSError:
            import uuid

            from daemon.files.atomic import write_bytes_atomic

            value = str(uuid.uuid4())
            write_bytes_atomic(path, value.encode())
            return value
