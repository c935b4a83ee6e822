"""HostConfig.SecurityOpt: what we honour, and Docker-style refusals for what we cannot yet."""

from typing import Any

from daemon.errors import InvalidParameter, NotImplementedYet
from daemon.runtime import caps

ACCEPTED_UNCONFINED = {"seccomp=unconfined", "apparmor=unconfined", "label=disable", "label:disable"}


def _normal(opt: str) -> str:
    key, sep, value = opt.partition("=") if "=" in opt else opt.partition(":")
    return f"{key}={value}" if sep else key


def no_new_privileges(host_config: dict[str, Any]) -> bool:
    return any(
        _normal(o) in ("no-new-privileges", "no-new-privileges=true")
        for o in host_config.get("SecurityOpt") or []
    )


def check_security_opts(opts: list[str]) -> None:
    """Refuse what we would otherwise silently ignore: a seccomp or AppArmor profile we do not apply."""
    for opt in opts:
        normal = _normal(opt)
        key = normal.split("=", 1)[0]
        if normal in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges=false"):
            continue
        if normal in ACCEPTED_UNCONFINED or opt in ACCEPTED_UNCONFINED:
            continue  # we apply no seccomp, AppArmor or SELinux policy yet: unconfined is what you get
        if key in ("seccomp", "apparmor", "label", "systempaths"):
            raise NotImplementedYet(f"security option {opt!r} is not implemented in pydockerd yet")
        raise InvalidParameter(f"Invalid --security-opt: {opt!r}")


def process_caps(host_config: dict[str, Any], privileged: bool) -> list[str]:
    """The capability set (Docker's defaults keep CAP_MKNOD: the device cgroup, or on v2 its eBPF
    filter, decides which device nodes a container may use)."""
    return caps.resolve(host_config.get("CapAdd") or [], host_config.get("CapDrop") or [], privileged)
