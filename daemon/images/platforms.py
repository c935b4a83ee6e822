"""Platforms in Go's (GOOS/GOARCH) words: "linux/amd64", "linux/arm64/v8"."""

import platform
from dataclasses import dataclass

from daemon.errors import InvalidParameter

# uname machine -> (GOARCH, variant)
_MACHINES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64", None),
    "loongarch64": ("loong64", None),
}
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None


def host_platform() -> Platform:
    machine = platform.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def parse_platform(value: str | None) -> Platform:
    """An API `platform` value; empty means this machine. Only Linux images can run here."""
    if not value:
        return host_platform()
    parts = value.strip().lower().split("/")
    if not parts[0] or len(parts) > 3:
        raise InvalidParameter(f"invalid platform: {value!r}")
    os_name = parts[0]
    if os_name != "linux":
        raise InvalidParameter(f"operating system is not supported: {os_name}")
    host = host_platform()
    if len(parts) == 1:
        return host
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else (host.variant if arch == host.architecture else None)
    return Platform(os_name, arch, variant)
