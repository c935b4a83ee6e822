"""What `docker info` says about the host, measured on the host rather than assumed."""

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from daemon.runtime.cgroups import CgroupManager

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def ipv4_forwarding(path: Path = IP_FORWARD) -> bool:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False


def swap_limit(cgroups: CgroupManager, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> bool:
    """Whether a container's swap can be limited: the kernel accounts swap. v1 then shows memory.memsw.*
    files in the memory hierarchy; v2 shows memory.swap.max in cgroups with the memory controller, which
    the root is not, so look in our own cgroup and its ancestors, then in the root's children."""
    root = Path(cgroups.root)
    if cgroups.version == 1:
        return (root / "memory" / "memory.memsw.limit_in_bytes").exists()
    if "memory" not in cgroups.controllers:
        return False
    return any((d / "memory.swap.max").exists() for d in _v2_non_root_cgroups(root, proc_self_cgroup))


def _v2_non_root_cgroups(root: Path, proc_self_cgroup: Path) -> list[Path]:
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for line in proc_self_cgroup.read_text().splitlines():
            if line.startswith("0::/"):
                own = root / line[4:]
                found += [d for d in (own, *own.parents) if d != root and d.is_relative_to(root)]
    with contextlib.suppress(OSError), os.scandir(root) as children:
        found += [root / e.name for e in children if e.is_dir(follow_symlinks=False)]
    return found


Scandir = Callable[[str], AbstractContextManager[Iterable[os.DirEntry[str]]]]


def supports_d_type(directory: Path, scandir: Scandir = os.scandir) -> bool:
    """Whether the file system under `directory` fills in readdir's d_type, which overlayfs needs.

    os.scandir keeps each entry's d_type and only calls lstat when it is DT_UNKNOWN: with the file
    gone before the entry is asked, the answer comes from d_type alone."""
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".d_type-probe-") as probe:
            Path(probe, "file").touch()
            with scandir(probe) as listing:
                entries = list(listing)
            os.unlink(os.path.join(probe, "file"))
            return [e.is_file(follow_symlinks=False) for e in entries] == [True]
    except OSError:
        return False  # no probe, no claim
