"""What the daemon tells a shim: everything needed to start one container process, as JSON.

The runtime knows nothing of the Docker API: the container service translates Docker's config into this.
"""

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BindMount:
    source: str
    destination: str
    readonly: bool = False


@dataclass
class Rlimit:
    type: str  # "nofile", "nproc", ... (setrlimit's RLIMIT_<TYPE>)
    soft: int  # -1: unlimited
    hard: int


@dataclass
class ProcessSpec:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    user: str = ""  # Docker's "uid[:gid]" or "name[:group]", resolved inside the container
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    caps: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    privileged: bool = False
    rlimits: list[Rlimit] = field(default_factory=list)

    def __post_init__(self) -> None:
        # from JSON (the shim's side) the limits arrive as dicts
        self.rlimits = [Rlimit(**r) if isinstance(r, dict) else r for r in self.rlimits]


@dataclass(frozen=True)
class SeccompProgram:
    """A compiled seccomp filter, as the container's processes load it before execve."""

    program: bytes  # struct sock_filter[], as seccomp(SECCOMP_SET_MODE_FILTER) takes it
    flags: int = 0  # SECCOMP_FILTER_FLAG_*


@dataclass
class ContainerSpec:
    id: str
    process: ProcessSpec
    lower_dirs: list[str]  # top-most first
    upper_dir: str
    work_dir: str
    hostname: str = ""
    domainname: str = ""  # the UTS namespace's NIS domain name (`docker run --domainname`)
    readonly_rootfs: bool = False
    # "private": a namespace of its own (lo, plus what the daemon plumbs in before the first execve);
    # "host": the host's; "join": the one at netns_path (`--network container:<name>`)
    network_mode: str = "private"
    netns_path: str = ""
    mounts: list[BindMount] = field(default_factory=list)
    etc_files: dict[str, str] = field(default_factory=dict)  # container path -> host file bound over it
    cgroup_name: str = ""
    resources: dict[str, Any] = field(default_factory=dict)  # Docker HostConfig resource keys
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    log_path: str = ""
    tty_size: tuple[int, int] | None = None  # rows, cols
    seccomp_filter: str = ""  # base64 of a BPF program the daemon compiled; "" for none
    seccomp_flags: int = 0  # SECCOMP_FILTER_FLAG_* to load it with

    def seccomp(self) -> "SeccompProgram | None":
        if not self.seccomp_filter:
            return None
        return SeccompProgram(base64.b64decode(self.seccomp_filter), self.seccomp_flags)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "ContainerSpec":
        data = json.loads(raw)
        data["process"] = ProcessSpec(**data["process"])
        data["mounts"] = [BindMount(**m) for m in data["mounts"]]
        if data.get("tty_size") is not None:
            data["tty_size"] = tuple(data["tty_size"])
        return cls(**data)


MASKED_PATHS = [  # moby oci/defaults.go: hidden from unprivileged containers
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
# files under /proc that runc lets a bind mount cover (what lxcfs emulates); anything else there is refused
PROC_FILES_ALLOWED = (
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
)
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
