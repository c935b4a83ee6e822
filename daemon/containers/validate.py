"""What dockerd refuses in a create body, refused before anything is made, with dockerd's words (400).

One function per rule, run by check_create in dockerd's order: its JSON decoder's checks
(runconfig.decodeContainerConfig), then verifyContainerSettings (daemon/container.go) and
verifyPlatformContainerSettings (daemon/daemon_unix.go). Resource limits are checked by
daemon.runtime.cgroups.validate, keys we do not implement by unsupported.py.
"""

import os
import posixpath
import re
from typing import Any

from daemon.containers import bind_specs, unsupported
from daemon.containers.model import CreateBody, HealthcheckBody, RestartPolicyBody
from daemon.containers.security import check_security_opts
from daemon.containers.signals import parse_signal
from daemon.containers.ulimits import check_ulimits
from daemon.errors import InvalidParameter
from daemon.gojson import check_int, check_map, check_str
from daemon.runtime import caps
from daemon.runtime.cgroups import Resources, validate
from daemon.runtime.spec import PROC_FILES_ALLOWED

MAX_HOSTNAME = 64  # HOST_NAME_MAX: sethostname(2) refuses more
MIN_HEALTH_DURATION = 1_000_000  # 1ms in ns (container.MinimumDuration)
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def check_create(req: CreateBody, body: dict[str, Any], ncpu: int) -> list[str]:
    """Raise InvalidParameter (400) or NotImplementedYet (501) for a body dockerd or we refuse.

    Returns the warnings to send back with the created container.
    """
    hc = body.get("HostConfig") or {}
    model = req.HostConfig_
    warnings: list[str] = []
    # the decoder's checks
    check_uts_mode(hc, req.Hostname or "")
    check_isolation(hc)
    check_qos(hc)
    check_realtime(hc)
    # the container config
    check_working_dir(req.WorkingDir or "")
    check_stop_signal(req.StopSignal or "")
    check_env(req.Env or [])
    check_healthcheck(req.Healthcheck)
    check_exposed_ports(req.ExposedPorts or {})
    # the host config
    check_restart_policy(model.RestartPolicy if model else None, bool(model and model.AutoRemove))
    check_binds_outside_proc(model.Binds if model else None)
    check_annotations(hc)
    check_ulimits(model.Ulimits if model else None)
    check_resources(hc, ncpu)
    check_caps(hc)
    check_security_opts(hc.get("SecurityOpt") or [])
    # the platform's checks
    check_hostname(req.Hostname or "")
    check_domainname(req.Domainname or "")
    check_memory_swappiness(hc)
    warnings += kernel_memory_warnings(hc)
    check_namespace_modes(hc)
    check_shm_size(hc)
    check_oom_score_adj(hc)
    check_blkio_weight(hc)
    check_runtime(hc)
    warnings += unsupported.check(req, hc)
    return warnings


# --- the decoder's checks -----------------------------------------------------------------------


def check_uts_mode(hc: dict[str, Any], hostname: str) -> None:
    mode = check_str(hc, "UTSMode", "container.UTSMode")
    if mode not in ("", "host"):
        raise InvalidParameter(f"invalid UTS mode: {mode}")
    if mode == "host" and hostname:
        raise InvalidParameter("conflicting options: hostname and the UTS mode")


def check_isolation(hc: dict[str, Any]) -> None:
    isolation = check_str(hc, "Isolation", "container.Isolation")
    if isolation and isolation.lower() != "default":
        raise InvalidParameter(f"invalid isolation ({isolation}): linux only supports 'default'")


def check_qos(hc: dict[str, Any]) -> None:
    if check_int(hc, "IOMaximumBandwidth", "uint64"):
        raise InvalidParameter(
            "invalid option: QoS maximum bandwidth configuration is not supported on linux"
        )
    if check_int(hc, "IOMaximumIOps", "uint64"):
        raise InvalidParameter("invalid option: QoS maximum IOPs configuration is not supported on linux")


def check_realtime(hc: dict[str, Any]) -> None:
    period = check_int(hc, "CpuRealtimePeriod")
    runtime = check_int(hc, "CpuRealtimeRuntime")
    if period and runtime and runtime > period:
        raise InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")


# --- the container config ----------------------------------------------------------------------


def clean_path(path: str) -> str:
    """Go's path.Clean for an absolute path: no "//" at the front either (POSIX normpath keeps it)."""
    return "/" + posixpath.normpath(path).lstrip("/")


def check_working_dir(working_dir: str) -> None:
    if working_dir and not working_dir.startswith("/"):
        raise InvalidParameter(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )


def check_stop_signal(stop_signal: str) -> None:
    if stop_signal:
        try:
            parse_signal(stop_signal)
        except ValueError as e:
            raise InvalidParameter(str(e)) from None


def check_env(env: list[str]) -> None:
    for entry in env:
        if entry.split("=", 1)[0] == "":
            raise InvalidParameter(f"invalid environment variable: {entry}")


def check_healthcheck(health: HealthcheckBody | None) -> None:
    """Durations are nanoseconds: 0 means "inherit or default", anything else must be at least 1ms."""
    if health is None:
        return
    for field in ("Interval", "Timeout"):
        value = getattr(health, field) or 0
        if value != 0 and value < MIN_HEALTH_DURATION:
            raise InvalidParameter(f"{field} in Healthcheck cannot be less than 1ms")
    if (health.Retries or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")
    for field in ("StartPeriod", "StartInterval"):
        value = getattr(health, field) or 0
        if value != 0 and value < MIN_HEALTH_DURATION:
            raise InvalidParameter(f"{field} in Healthcheck cannot be less than 1ms")


def parse_exposed_port(key: str) -> str:
    """ "80", "80/TCP", "53/udp" -> "80/tcp", "53/udp"; ValueError with Docker's words otherwise.

    Docker 29's network.ParsePort, which its JSON decoder applies to the keys (Docker 28 took anything
    and published port 0 for what it could not read).
    """
    if key == "":
        raise ValueError("invalid port: value is empty")
    number, _, proto = key.partition("/")
    if number == "":
        raise ValueError(f"invalid port '{number}': value is empty")
    if not re.fullmatch(r"\+?[0-9]+", number):
        raise ValueError(f"invalid port '{number}': invalid syntax")
    if int(number) > 65535:
        raise ValueError(f"invalid port '{number}': value out of range")
    return f"{int(number)}/{proto.lower() or 'tcp'}"


def check_exposed_ports(ports: dict[str, Any]) -> None:
    for key in ports:
        try:
            parse_exposed_port(key)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None


# --- the host config ---------------------------------------------------------------------------


def check_restart_policy(policy: RestartPolicyBody | None, auto_remove: bool) -> None:
    name = (policy.Name if policy else "") or ""
    retries = (policy.MaximumRetryCount if policy else 0) or 0
    if auto_remove and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if name in ("always", "unless-stopped", "no"):
        if retries != 0:
            message = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            raise InvalidParameter(message + (" and cannot be negative" if retries < 0 else ""))
    elif name == "on-failure":
        if retries < 0:
            raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    elif name != "":  # "" is what clients before Docker 25 sent for "no"
        raise InvalidParameter(
            f"invalid restart policy: unknown policy '{name}'; use one of "
            + ", ".join(f"'{p}'" for p in RESTART_POLICIES[:-1])
            + f", or '{RESTART_POLICIES[-1]}'"
        )


def check_resources(hc: dict[str, Any], ncpu: int) -> None:
    try:
        validate(Resources.from_host_config(hc), ncpu)
    except ValueError as e:
        raise InvalidParameter(str(e)) from e


def check_caps(hc: dict[str, Any]) -> None:
    try:
        caps.resolve(hc.get("CapAdd") or [], hc.get("CapDrop") or [], bool(hc.get("Privileged")))
    except ValueError as e:
        raise InvalidParameter(str(e)) from e


def check_binds_outside_proc(binds: list[str] | None) -> None:
    """runc's rule (checkProcMount): nothing may be mounted over /proc or inside it, except a real
    procfs over /proc and a few files lxcfs emulates. Checked here on the path as given; a symlink in
    the image is resolved, and must be checked again, where the mount is made."""
    for spec in binds or []:
        bind = bind_specs.parse_bind(spec)
        dest = clean_path(bind.destination)
        if dest == "/proc":
            if not is_procfs_root(bind.source):
                raise InvalidParameter(
                    f"invalid volume specification: '{spec}': \"{dest}\" cannot be mounted because it is "
                    "not of type proc"
                )
        elif dest.startswith("/proc/") and dest not in PROC_FILES_ALLOWED:
            raise InvalidParameter(
                f"invalid volume specification: '{spec}': \"{dest}\" cannot be mounted because it is "
                "inside /proc"
            )


def is_procfs_root(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Is `path` the root of a mounted procfs (what runc accepts to bind over /proc)?"""
    try:
        real = os.path.realpath(path)
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) >= 5 and rest.split(" ", 1)[0] == "proc" and parts[3] == "/" and parts[4] == real:
            return True
    return False


def check_annotations(hc: dict[str, Any]) -> None:
    if "" in check_map(hc, "Annotations", "map[string]string"):
        raise InvalidParameter("invalid Annotations: the empty string is not permitted as an annotation key")


# --- the platform's checks ---------------------------------------------------------------------


def check_hostname(hostname: str) -> None:
    if len(hostname.encode()) > MAX_HOSTNAME:
        raise InvalidParameter(f"hostname {go_quote(hostname)} is too long (maximum {MAX_HOSTNAME} bytes)")


def check_domainname(domainname: str) -> None:
    """The kernel's limit for setdomainname(2) too (dockerd does not check it: runc fails at start)."""
    if len(domainname.encode()) > MAX_HOSTNAME:
        raise InvalidParameter(
            f"domainname {go_quote(domainname)} is too long (maximum {MAX_HOSTNAME} bytes)"
        )


GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def go_quote(text: str) -> str:
    """Go's %q (strconv.Quote): printable characters kept, the rest escaped."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in GO_ESCAPES:
            out.append(GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def check_memory_swappiness(hc: dict[str, Any]) -> None:
    if hc.get("MemorySwappiness") is None:
        return
    swappiness = check_int(hc, "MemorySwappiness")
    if swappiness != -1 and not 0 <= swappiness <= 100:  # -1: the kernel's default
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")


def kernel_memory_warnings(hc: dict[str, Any]) -> list[str]:
    """dockerd ignores KernelMemory since API 1.42 (the kernel deprecated it); we say so."""
    if check_int(hc, "KernelMemory") > 0:
        return [
            "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
            "Limitation discarded."
        ]
    return []


def check_namespace_modes(hc: dict[str, Any]) -> None:
    ipc = check_str(hc, "IpcMode", "container.IpcMode")
    if not (ipc in ("", "none", "private", "shareable", "host") or ipc.startswith("container:")):
        raise InvalidParameter(f"invalid IPC mode: {ipc}")
    pid = check_str(hc, "PidMode", "container.PidMode")
    if not (pid in ("", "host") or (pid.startswith("container:") and pid != "container:")):
        raise InvalidParameter(f"invalid PID mode: {pid}")
    cgroupns = check_str(hc, "CgroupnsMode", "container.CgroupnsMode")
    if cgroupns not in ("", "private", "host"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")


def check_shm_size(hc: dict[str, Any]) -> None:
    if check_int(hc, "ShmSize") < 0:
        raise InvalidParameter("SHM size can not be less than 0")


def check_oom_score_adj(hc: dict[str, Any]) -> None:
    adj = check_int(hc, "OomScoreAdj", "int")
    if not -1000 <= adj <= 1000:
        raise InvalidParameter(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")


def check_blkio_weight(hc: dict[str, Any]) -> None:
    weight = check_int(hc, "BlkioWeight", "uint16")
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")


def check_runtime(hc: dict[str, Any]) -> None:
    runtime = check_str(hc, "Runtime")
    if runtime not in ("", "runc"):  # "runc" is dockerd's default name: clients send it
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
