"""Capability names and Docker's default set."""

CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

# moby oci/caps/defaults.go: what a container gets unless told otherwise
DEFAULT_CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
]


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def normalize(name: str) -> str:
    """ "cap_net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all mean NET_ADMIN; "ALL" stays ALL."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def resolve(add: list[str], drop: list[str], privileged: bool) -> list[str]:
    """The capability set of a container, Docker's way: defaults, minus drops, plus adds."""
    known = CAPABILITIES[: last_cap() + 1]
    if privileged:
        return list(known)
    adds = [normalize(c) for c in add]
    drops = [normalize(c) for c in drop]
    for cap in adds + drops:
        if cap != "ALL" and cap not in CAPABILITIES:
            raise ValueError(f'unknown capability: "CAP_{cap}"')
    caps = list(known) if "ALL" in adds else list(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    for cap in adds:
        if cap != "ALL" and cap not in caps and cap in known:
            caps.append(cap)
    return caps


def mask(names: list[str]) -> int:
    bits = 0
    for name in names:
        bits |= 1 << CAPABILITIES.index(name)
    return bits
