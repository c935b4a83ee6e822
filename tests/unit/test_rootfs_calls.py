"""The container's root file system set-up (rootfs.build_root), on a recording fake of its system calls:
which mounts it makes, in which order, with which flags, and what it masks. Runs without root: the fake
mounts nothing, and the paths it probes are made in a temp directory."""

import errno
import os
import stat
from pathlib import Path

import pytest

from daemon.runtime import fdmount, rootfs
from daemon.runtime.linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_STRICTATIME,
)
from daemon.runtime.process import StartError
from daemon.runtime.safepath import Root
from daemon.runtime.spec import MASKED_PATHS, READONLY_PATHS, BindMount, ContainerSpec, ProcessSpec
from tests.fakes.syscalls import RecordingSyscalls

FS_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC
# what a fresh /proc and /sys would show of Docker's masked and read-only paths; the others are absent
PROC_SYS_DIRS = ["proc/acpi", "proc/scsi", "proc/bus", "proc/fs", "proc/irq", "proc/sys", "sys/firmware"]
PROC_SYS_FILES = ["proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug", "proc/sysrq-trigger"]


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """The test's host: `rootfs` (the merged overlay, with /proc and /sys as the kernel would fill them),
    `ro` and `rw` (bind sources) and `etc` (the daemon's /etc files for the container)."""
    host = Path(os.path.realpath(tmp_path))
    for d in ["rootfs/bin", "rootfs/etc", "ro/sub", "rw", "etc", *("rootfs/" + p for p in PROC_SYS_DIRS)]:
        (host / d).mkdir(parents=True)
    for f in ["etc/hosts", "etc/hostname", *("rootfs/" + p for p in PROC_SYS_FILES)]:
        (host / f).write_text("")
    return host


def make_spec(host: Path, **overrides: object) -> ContainerSpec:
    spec = ContainerSpec(
        id="c1",
        process=ProcessSpec(args=["sh"], env=[]),
        lower_dirs=["/layers/2", "/layers/1"],
        upper_dir="/c1/upper",
        work_dir="/c1/work",
        mounts=[
            BindMount(str(host / "ro"), "/srv/ro", readonly=True),
            BindMount(str(host / "rw"), "/srv/rw"),
        ],
        etc_files={"/etc/hosts": str(host / "etc/hosts"), "/etc/hostname": str(host / "etc/hostname")},
        masked_paths=list(MASKED_PATHS),
        readonly_paths=list(READONLY_PATHS),
    )
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec


def build(
    host: Path,
    spec: ContainerSpec | None = None,
    *,
    mount_setattr: bool = True,
    failing: dict[tuple[str, str], int] | None = None,
) -> RecordingSyscalls:
    syscalls = RecordingSyscalls(host, host / "rootfs", mount_setattr=mount_setattr, failing=failing)
    rootfs.build_root(spec or make_spec(host), str(host / "rootfs"), syscalls)
    return syscalls


def target(call: tuple[object, ...]) -> object:
    """Where a mount or make_tree_readonly call acts."""
    return call[2] if call[0] == "mount" else call[1]


def mounted(syscalls: RecordingSyscalls) -> list[tuple[object, ...]]:
    """Each mount as (source, target, fstype), and each other mount table step as it was called."""
    steps = ("mount", "make_tree_readonly", "fchdir", "pivot_root", "umount2", "chdir")
    return [c[1:4] if c[0] == "mount" else c for c in syscalls.of(*steps)]


def test_the_mounts_come_in_order_and_end_in_pivot_root(host: Path) -> None:
    assert mounted(build(host)) == [
        (None, "/", None),  # the mount table made private first: nothing below leaks to the host
        ("overlay", "/", "overlay"),
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("tmpfs", "/dev", "tmpfs"),
        ("devpts", "/dev/pts", "devpts"),
        ("shm", "/dev/shm", "tmpfs"),
        ("mqueue", "/dev/mqueue", "mqueue"),
        (str(host / "ro"), "/srv/ro", None),
        ("make_tree_readonly", "/srv/ro"),
        (str(host / "rw"), "/srv/rw", None),
        (str(host / "etc/hosts"), "/etc/hosts", None),
        (str(host / "etc/hostname"), "/etc/hostname", None),
        ("tmpfs", "/proc/acpi", "tmpfs"),
        ("/dev/null", "/proc/kcore", None),
        ("/dev/null", "/proc/keys", None),
        ("/dev/null", "/proc/timer_list", None),
        ("/dev/null", "/proc/sched_debug", None),
        ("tmpfs", "/proc/scsi", "tmpfs"),
        ("tmpfs", "/sys/firmware", "tmpfs"),
        ("/proc/bus", "/proc/bus", None),
        ("make_tree_readonly", "/proc/bus"),
        ("/proc/fs", "/proc/fs", None),
        ("make_tree_readonly", "/proc/fs"),
        ("/proc/irq", "/proc/irq", None),
        ("make_tree_readonly", "/proc/irq"),
        ("/proc/sys", "/proc/sys", None),
        ("make_tree_readonly", "/proc/sys"),
        ("/proc/sysrq-trigger", "/proc/sysrq-trigger", None),
        ("make_tree_readonly", "/proc/sysrq-trigger"),
        ("fchdir", "/"),  # into the new root, stack it over the old one, and detach the old one
        ("pivot_root", ".", "."),
        ("umount2", ".", MNT_DETACH),
        ("chdir", "/"),
    ]


def test_each_file_system_has_docker_flags_and_options(host: Path) -> None:
    syscalls = build(host)
    assert syscalls.calls[0] == ("mount", None, "/", None, MS_REC | MS_PRIVATE, None)
    file_systems = [c[2:] for c in syscalls.of("mount") if c[3] is not None]
    assert file_systems[:7] == [
        ("/", "overlay", 0, "lowerdir=/layers/2:/layers/1,upperdir=/c1/upper,workdir=/c1/work"),
        ("/proc", "proc", FS_FLAGS, None),
        ("/sys", "sysfs", FS_FLAGS | MS_RDONLY, None),
        ("/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        ("/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("/dev/shm", "tmpfs", FS_FLAGS, "mode=1777,size=65536k"),
        ("/dev/mqueue", "mqueue", FS_FLAGS, None),
    ]


def test_dev_gets_its_device_nodes_mode_0666_and_its_links(host: Path) -> None:
    syscalls = build(host)
    char_0666 = stat.S_IFCHR | 0o666
    assert syscalls.of("mknod", "chmod", "symlink") == [
        ("mknod", "/dev/null", char_0666, os.makedev(1, 3)),
        ("chmod", "/dev/null", 0o666),  # after mknod, which the umask trims
        ("mknod", "/dev/zero", char_0666, os.makedev(1, 5)),
        ("chmod", "/dev/zero", 0o666),
        ("mknod", "/dev/full", char_0666, os.makedev(1, 7)),
        ("chmod", "/dev/full", 0o666),
        ("mknod", "/dev/random", char_0666, os.makedev(1, 8)),
        ("chmod", "/dev/random", 0o666),
        ("mknod", "/dev/urandom", char_0666, os.makedev(1, 9)),
        ("chmod", "/dev/urandom", 0o666),
        ("mknod", "/dev/tty", char_0666, os.makedev(5, 0)),
        ("chmod", "/dev/tty", 0o666),
        ("symlink", "/proc/self/fd", "/dev/fd"),
        ("symlink", "/proc/self/fd/0", "/dev/stdin"),
        ("symlink", "/proc/self/fd/1", "/dev/stdout"),
        ("symlink", "/proc/self/fd/2", "/dev/stderr"),
        ("symlink", "pts/ptmx", "/dev/ptmx"),
        ("symlink", "/proc/kcore", "/dev/core"),
    ]
    # the nodes go on the fresh tmpfs, made before the mounts below /dev
    first_node = syscalls.calls.index(syscalls.of("mknod")[0])
    assert syscalls.calls[first_node - 1][:3] == ("mount", "tmpfs", "/dev")


def test_masked_paths_hide_what_exists_directories_under_a_read_only_tmpfs(host: Path) -> None:
    masks = [c[1:5] for c in build(host).of("mount") if c[1] == "/dev/null" or c[4] == MS_RDONLY]
    assert masks == [
        ("tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY),
        ("/dev/null", "/proc/kcore", None, MS_BIND),  # not recursive: a file has nothing below it
        ("/dev/null", "/proc/keys", None, MS_BIND),
        ("/dev/null", "/proc/timer_list", None, MS_BIND),
        ("/dev/null", "/proc/sched_debug", None, MS_BIND),
        ("tmpfs", "/proc/scsi", "tmpfs", MS_RDONLY),
        ("tmpfs", "/sys/firmware", "tmpfs", MS_RDONLY),
    ]
    absent = {"/proc/asound", "/proc/interrupts", "/proc/latency_stats", "/proc/timer_stats"}
    assert absent | {"/sys/devices/virtual/powercap"} == set(MASKED_PATHS) - {m[1] for m in masks}


def test_read_only_paths_are_bound_onto_themselves_and_made_read_only_below(host: Path) -> None:
    syscalls = build(host)
    proc_binds = [c for c in syscalls.of("mount", "make_tree_readonly") if str(c[1]).startswith("/proc/")]
    docker_read_only = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    expected: list[tuple[object, ...]] = []
    for path in docker_read_only:
        expected += [("mount", path, path, None, MS_BIND | MS_REC, None), ("make_tree_readonly", path)]
    assert proc_binds == expected


def test_binds_recursive_and_read_only_as_asked_etc_files_alone(host: Path) -> None:
    syscalls = build(host)
    binds = [
        c for c in syscalls.of("mount", "make_tree_readonly") if str(target(c)).startswith(("/srv", "/etc"))
    ]
    assert binds == [
        ("mount", str(host / "ro"), "/srv/ro", None, MS_BIND | MS_REC, None),
        ("make_tree_readonly", "/srv/ro"),
        ("mount", str(host / "rw"), "/srv/rw", None, MS_BIND | MS_REC, None),
        # the daemon's /etc files: not recursive, never read-only
        ("mount", str(host / "etc/hosts"), "/etc/hosts", None, MS_BIND, None),
        ("mount", str(host / "etc/hostname"), "/etc/hostname", None, MS_BIND, None),
    ]
    ro = syscalls.calls.index(binds[0])
    assert syscalls.calls[ro + 1] == binds[1]  # right after its bind, before anything else is mounted


def test_without_mount_setattr_read_only_binds_are_remounted_at_the_top(host: Path) -> None:
    spec = make_spec(host, masked_paths=[], readonly_paths=["/proc/sys"])
    spec.mounts.append(BindMount(str(host / "etc/hosts"), "/srv/file", readonly=True))
    spec.etc_files = {}
    syscalls = build(host, spec, mount_setattr=False)
    remount = MS_BIND | MS_REMOUNT | MS_RDONLY
    read_only = ("/srv/ro", "/srv/file", "/proc/sys")
    assert [c for c in syscalls.of("mount", "make_tree_readonly") if target(c) in read_only] == [
        ("mount", str(host / "ro"), "/srv/ro", None, MS_BIND | MS_REC, None),
        ("make_tree_readonly", "/srv/ro"),  # tried first: ENOSYS on a kernel before 5.12
        ("mount", None, "/srv/ro", None, remount, None),
        ("mount", str(host / "etc/hosts"), "/srv/file", None, MS_BIND | MS_REC, None),
        ("make_tree_readonly", "/srv/file"),
        ("mount", None, "/srv/file", None, remount, None),
        ("mount", "/proc/sys", "/proc/sys", None, MS_BIND | MS_REC, None),
        ("make_tree_readonly", "/proc/sys"),
        ("mount", None, "/proc/sys", None, remount, None),
    ]


def test_a_read_only_root_is_remounted_after_pivot_root(host: Path) -> None:
    syscalls = build(host, make_spec(host, readonly_rootfs=True))
    assert syscalls.calls[-5:] == [
        ("fchdir", "/"),
        ("pivot_root", ".", "."),
        ("umount2", ".", MNT_DETACH),
        ("chdir", "/"),
        ("mount", None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),  # "/" is the container's now
    ]


def test_privileged_containers_get_a_writable_sysfs(host: Path) -> None:
    spec = make_spec(host, process=ProcessSpec(args=["sh"], env=[], privileged=True))
    sysfs = [c for c in build(host, spec).of("mount") if c[3] == "sysfs"]
    assert sysfs == [("mount", "sysfs", "/sys", "sysfs", FS_FLAGS, None)]


def test_a_failing_mount_is_a_start_error_naming_source_and_destination(host: Path) -> None:
    with pytest.raises(StartError) as caught:
        build(host, failing={("mount", "/proc"): errno.EPERM})
    assert str(caught.value) == (
        'error during container init: error mounting "proc" to rootfs at "/proc": operation not permitted'
    )


def test_the_fake_refuses_the_top_of_a_target_nothing_was_mounted_on(host: Path) -> None:
    """The mount-id check stays real on the fake: without a recorded mount there is no new top."""
    syscalls = RecordingSyscalls(host, host / "rootfs")
    with Root(str(host / "rootfs")) as root, root.mkdir_all("/dev") as target:
        with pytest.raises(OSError) as caught:
            fdmount.open_top(target, syscalls=syscalls)
        assert caught.value.errno == errno.EBUSY
        fdmount.mount_fs("tmpfs", target, syscalls=syscalls)
        os.close(fdmount.open_top(target, syscalls=syscalls))
