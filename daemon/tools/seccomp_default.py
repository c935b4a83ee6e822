"""`python -m daemon.tools.seccomp_default [--check]`: write daemon/runtime/seccomp/default.json.

Our default seccomp profile, derived from the behaviour Docker documents for its own ("Seccomp security
profiles for Docker": the syscalls it blocks and why, the argument rules for clone, clone3, unshare,
personality and socket, the syscalls a capability re-enables) and from the syscall names libseccomp
knows for x86-64, x86, x32, AArch64 and ARM. It is an allow-list, as Docker's is: everything named
here is allowed, a syscall missing from it (a newer one, say) gets EPERM.

Run it again when libseccomp learns new names; the allow-list is every known name that is neither
blocked nor gated below, so a new syscall is allowed unless it is added to those tables first.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent.parent / "runtime" / "seccomp" / "default.json"

# Blocked whatever the capabilities: the reason, for whoever reads this.
BLOCKED = {
    "add_key": "kernel keyrings are not namespaced: container root would reach the host root's keys",
    "keyctl": "kernel keyrings are not namespaced",
    "request_key": "kernel keyrings are not namespaced",
    "io_uring_setup": "io_uring: a large attack surface that also bypasses syscall filtering",
    "io_uring_enter": "io_uring",
    "io_uring_register": "io_uring",
    "kexec_load": "loading a new kernel",
    "kexec_file_load": "loading a new kernel",
    "move_pages": "NUMA placement of another process's memory",
    "migrate_pages": "NUMA placement of another process's memory",
    "pivot_root": "changing the root is the runtime's job, never the container's",
    "swapon": "swap is host-wide",
    "swapoff": "swap is host-wide",
    "userfaultfd": "user space page fault handling, a tool for kernel exploits",
    "vm86": "in-kernel x86 real mode virtual machine",
    "vm86old": "in-kernel x86 real mode virtual machine",
    "pciconfig_iobase": "PCI configuration space (ARM)",
    "pciconfig_read": "PCI configuration space (ARM)",
    "pciconfig_write": "PCI configuration space (ARM)",
    "uselib": "obsolete shared library loading",
    "sysfs": "obsolete",
    "ustat": "obsolete",
    "_sysctl": "obsolete, replaced by /proc/sys",
    "bdflush": "obsolete",
    "nfsservctl": "removed from Linux 3.1",
    "create_module": "removed kernel module interface",
    "get_kernel_syms": "removed kernel module interface",
    "query_module": "removed kernel module interface",
}
NEVER_IMPLEMENTED = [  # reserved numbers Linux never implemented: ENOSYS anyway, denied like the rest
    "afs_syscall", "break", "epoll_ctl_old", "epoll_wait_old", "ftime", "getpmsg", "gtty", "idle",
    "lock", "mpx", "prof", "profil", "putpmsg", "security", "stty", "tuxcall", "ulimit", "vserver",
]  # fmt: skip

# Allowed only with a capability (Docker's "also gated by CAP_..."): what the capability is for.
CAP_GATED = {
    "CAP_SYS_ADMIN": [
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "open_tree_attr", "perf_event_open", "quotactl",
        "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ],
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": [
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
    ],
    "CAP_SYS_RAWIO": ["ioperm", "iopl"],
    "CAP_SYS_TIME": [
        "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime",
    ],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}  # fmt: skip

# Allowed without the capability when the kernel is safe: tracing one's own children. Before 4.8 a
# tracer could change a syscall after seccomp had checked it.
SAFE_SINCE_4_8 = ["process_vm_readv", "process_vm_writev", "ptrace"]

# Syscalls of the kernel's tables that libseccomp 2.5.4 does not know yet, and arch-specific ones of
# architectures not enumerated below: allowed, so a newer libseccomp filters them as we mean.
EXTRA_ALLOWED = [
    "file_getattr", "file_setattr", "getxattrat", "listmount", "listxattrat", "mseal", "removexattrat",
    "setxattrat", "statmount", "uretprobe",
    "riscv_flush_icache", "riscv_hwprobe", "s390_pci_mmio_read", "s390_pci_mmio_write",
    "s390_runtime_instr", "swapcontext", "sync_file_range2",
]  # fmt: skip

NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
CLONE_NEWTIME = 0x80  # unshare only: in clone()'s first argument these bits are the exit signal
AF_VSOCK = 40  # host/guest sockets, not namespaced
PERSONALITIES = [  # what glibc and setarch use; not the BSD/SVr4 emulations
    0x0,  # PER_LINUX
    0x8,  # PER_LINUX32
    0x20000,  # UNAME26
    0x20008,  # PER_LINUX32 | UNAME26
    0xFFFFFFFF,  # query the current persona
]

ENUMERATED = {  # pyseccomp Arch attribute -> syscall number offset
    "X86_64": 0,
    "X86": 0,
    "X32": 0x40000000,
    "AARCH64": 0,
    "ARM": 0,
}
ARM_PRIVATE = range(0xF0000, 0xF0010)


def known_names() -> set[str]:
    import pyseccomp

    names: set[str] = set()
    for arch_name, offset in ENUMERATED.items():
        arch = getattr(pyseccomp.Arch, arch_name)
        numbers = list(range(1100)) + (list(ARM_PRIVATE) if arch_name == "ARM" else [])
        for n in numbers:
            try:
                names.add(pyseccomp.resolve_syscall(arch, offset + n).decode())
            except ValueError:
                continue
    return names


def _entry(names: list[str], action: str = "SCMP_ACT_ALLOW", **extra: Any) -> dict[str, Any]:
    return {"names": sorted(set(names)), "action": action, **extra}


def _masked_zero(index: int, mask: int) -> list[dict[str, Any]]:
    return [{"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]


def build(names: set[str]) -> dict[str, Any]:
    gated = {n for group in CAP_GATED.values() for n in group}
    arg_ruled = {"clone", "clone3", "unshare", "personality", "socket"}
    denied = set(BLOCKED) | set(NEVER_IMPLEMENTED) | gated | arg_ruled
    allowed = (names | set(EXTRA_ALLOWED)) - denied
    no_admin = {"caps": ["CAP_SYS_ADMIN"]}
    s390 = ["s390", "s390x"]
    syscalls = [
        _entry(sorted(allowed)),
        _entry(SAFE_SINCE_4_8, includes={"minKernel": "4.8"}),
        *(
            _entry(["personality"], args=[{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}])
            for p in PERSONALITIES
        ),
        _entry(["socket"], args=[{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]),
        _entry(["clone"], args=_masked_zero(0, NAMESPACE_FLAGS), excludes={**no_admin, "arches": s390}),
        _entry(
            ["clone"],
            args=_masked_zero(1, NAMESPACE_FLAGS),
            comment="s390 passes clone's flags second",
            includes={"arches": s390},
            excludes=no_admin,
        ),
        _entry(
            ["clone3"],
            "SCMP_ACT_ERRNO",
            errnoRet=38,
            comment="ENOSYS, so that libc falls back to clone, whose flags can be checked",
            excludes=no_admin,
        ),
        _entry(["unshare"], args=_masked_zero(0, NAMESPACE_FLAGS | CLONE_NEWTIME), excludes=no_admin),
        *(_entry(group, includes={"caps": [cap]}) for cap, group in CAP_GATED.items()),
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
        ],
        "syscalls": syscalls,
    }


def render(profile: dict[str, Any]) -> str:
    return json.dumps(profile, indent=1) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    a = parser.parse_args()
    text = render(build(known_names()))
    if a.check:
        same = TARGET.read_text() == text
        print("up to date" if same else f"{TARGET} differs from what this libseccomp gives")
        return 0 if same else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
