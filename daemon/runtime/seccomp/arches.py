"""Architectures as Docker's seccomp profiles name them.

A profile names architectures twice over: `architectures`/`archMap` use libseccomp's names
(SCMP_ARCH_X86_64), while the `arches` of `includes`/`excludes` use Go's (amd64), which is what
dockerd compares with its own build. The token is the AUDIT_ARCH_* value a filter checks, which
libseccomp takes to add an architecture.
"""

import platform
from dataclasses import dataclass

_64BIT = 0x80000000
_LE = 0x40000000
_MIPS_N32 = 0x20000000


@dataclass(frozen=True)
class Arch:
    scmp: str  # SCMP_ARCH_X86_64
    go: str  # amd64
    token: int  # AUDIT_ARCH_X86_64


ARCHES = {
    a.scmp: a
    for a in (
        Arch("SCMP_ARCH_X86", "x86", 3 | _LE),
        Arch("SCMP_ARCH_X86_64", "amd64", 62 | _64BIT | _LE),
        Arch("SCMP_ARCH_X32", "x32", 62 | _LE),
        Arch("SCMP_ARCH_ARM", "arm", 40 | _LE),
        Arch("SCMP_ARCH_AARCH64", "arm64", 183 | _64BIT | _LE),
        Arch("SCMP_ARCH_MIPS", "mips", 8),
        Arch("SCMP_ARCH_MIPS64", "mips64", 8 | _64BIT),
        Arch("SCMP_ARCH_MIPS64N32", "mips64n32", 8 | _64BIT | _MIPS_N32),
        Arch("SCMP_ARCH_MIPSEL", "mipsle", 8 | _LE),
        Arch("SCMP_ARCH_MIPSEL64", "mipsel64", 8 | _64BIT | _LE),
        Arch("SCMP_ARCH_MIPSEL64N32", "mips3l64n32", 8 | _64BIT | _LE | _MIPS_N32),
        Arch("SCMP_ARCH_PPC", "ppc", 20),
        Arch("SCMP_ARCH_PPC64", "ppc64", 21 | _64BIT),
        Arch("SCMP_ARCH_PPC64LE", "ppc64le", 21 | _64BIT | _LE),
        Arch("SCMP_ARCH_S390", "s390", 22),
        Arch("SCMP_ARCH_S390X", "s390x", 22 | _64BIT),
        Arch("SCMP_ARCH_PARISC", "parisc", 15),
        Arch("SCMP_ARCH_PARISC64", "parisc64", 15 | _64BIT),
        Arch("SCMP_ARCH_RISCV64", "riscv64", 243 | _64BIT | _LE),
        Arch("SCMP_ARCH_LOONGARCH64", "loong64", 258 | _64BIT | _LE),
    )
}

_MACHINES = {  # uname -m -> the architecture of a process built for this host
    "x86_64": "SCMP_ARCH_X86_64",
    "i386": "SCMP_ARCH_X86",
    "i686": "SCMP_ARCH_X86",
    "aarch64": "SCMP_ARCH_AARCH64",
    "armv7l": "SCMP_ARCH_ARM",
    "armv8l": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "ppc64": "SCMP_ARCH_PPC64",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "loongarch64": "SCMP_ARCH_LOONGARCH64",
}


def native(machine: str | None = None) -> Arch:
    """The host's architecture; ValueError for one we have no name for."""
    machine = machine or platform.machine()
    try:
        return ARCHES[_MACHINES[machine]]
    except KeyError:
        raise ValueError(f"no seccomp architecture known for machine {machine!r}") from None
