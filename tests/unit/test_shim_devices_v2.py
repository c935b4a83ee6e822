"""A real container on cgroup v2: the shim, with a V2Manager on the host's cgroup2 mount, runs busybox.

The daemon picks the cgroup version of the host, so on a v1 host no daemon would take this path; the
shim takes the manager as an argument, and the controller-less v2 mount is enough for the device filter.
What Docker gives a container on v2 must hold: its own /dev and a terminal work, mknod works (CAP_MKNOD
is kept), and a device node outside the allow-list cannot be opened.

Needs root, a cgroup2 mount, overlayfs and a static busybox.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.security import process_caps
from daemon.runtime import shimproto, sockpath
from daemon.runtime.cgroups.v2 import unified_mount
from daemon.runtime.spec import MASKED_PATHS, READONLY_PATHS, ContainerSpec, ProcessSpec
from daemon.tools.busybox_rootfs import build_rootfs_tar, busybox_path

CGROUP2 = unified_mount()

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or CGROUP2 is None, reason="needs root and a cgroup2 mount"),
]

RUN_SHIM = (
    "import sys; from pathlib import Path; from daemon.runtime import shim; "
    "from daemon.runtime.cgroups import V2Manager, devicefilter; attach = devicefilter.attach; {tweak}; "
    "shim.main(Path(sys.argv[1]), None, V2Manager(sys.argv[2], attach_devices=attach))"
)


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        busybox_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    top = tmp_path_factory.mktemp("busybox")
    build_rootfs_tar(top / "rootfs.tar")
    with tarfile.open(top / "rootfs.tar") as tar:
        tar.extractall(top / "lower", filter="fully_trusted")
    return top / "lower"


class Container:
    def __init__(self, tmp: Path, lower: Path) -> None:
        self.tmp = tmp
        self.lower = lower
        self.exec_dir = tmp / "exec"
        self.cgroup = f"pydockerd-test-devices-{secrets.token_hex(6)}"
        self.shim: subprocess.Popen[bytes] | None = None

    def spec(self, script: str, tty: bool) -> ContainerSpec:
        for d in ("upper", "work", "exec"):
            (self.tmp / d).mkdir()
        etc = {}
        for name, text in (("hostname", "ctr\n"), ("hosts", "127.0.0.1 localhost\n"), ("resolv.conf", "")):
            (self.tmp / name).write_text(text)
            etc[f"/etc/{name}"] = str(self.tmp / name)
        return ContainerSpec(
            id=secrets.token_hex(32),
            process=ProcessSpec(
                args=["/bin/sh", "-c", script],
                env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                tty=tty,
                caps=process_caps({}, privileged=False),
            ),
            lower_dirs=[str(self.lower)],
            upper_dir=str(self.tmp / "upper"),
            work_dir=str(self.tmp / "work"),
            hostname="ctr",
            etc_files=etc,
            cgroup_name=self.cgroup,
            masked_paths=list(MASKED_PATHS),
            readonly_paths=list(READONLY_PATHS),
            log_path=str(self.exec_dir / "log.json"),
        )

    def _call(self, request: shimproto.Request, answer: type[shimproto.M]) -> shimproto.M:
        with sockpath.usable(self.exec_dir / "shim.sock") as path, socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(path)
            s.sendall(shimproto.encode(request))
            return shimproto.decode_answer(s.makefile("rb").readline(), answer)

    def create(self, script: str, tty: bool = False, tweak: str = "pass") -> dict[str, Any]:
        """Start a shim for the container; its report (the pid, or an error)."""
        spec = self.spec(script, tty)
        (self.exec_dir / "spec.json").write_text(spec.to_json())
        self.shim = subprocess.Popen(
            [sys.executable, "-c", RUN_SHIM.format(tweak=tweak), str(self.exec_dir), str(CGROUP2)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.shim.stdout is not None
        report: dict[str, Any] = json.loads(self.shim.stdout.readline() or b"{}")
        return report

    def run(self, script: str, tty: bool = False) -> str:
        """Create, start and wait for the container; its output, from the json-file log."""
        report = self.create(script, tty)
        assert self.shim is not None and "pid" in report, report
        self._call(shimproto.Start(), shimproto.Started)
        assert self._call(shimproto.Wait(), shimproto.Exited).exit_code == 0
        self.shim.wait(timeout=30)
        lines = (self.exec_dir / "log.json").read_text().splitlines()
        return "".join(json.loads(line)["log"] for line in lines)

    def close(self) -> None:
        if self.shim is not None and self.shim.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.shim.pid, 9)
            self.shim.wait()
        leaf = os.path.join(str(CGROUP2), self.cgroup)
        if os.path.isdir(leaf):
            for pid in Path(leaf, "cgroup.procs").read_text().split():
                with suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            with suppress(OSError):
                os.rmdir(leaf)


@pytest.fixture
def container(tmp_path: Path, lower: Path) -> Iterator[Container]:
    c = Container(tmp_path, lower)
    try:
        yield c
    finally:
        c.close()
        assert not os.path.exists(os.path.join(str(CGROUP2), c.cgroup)), "the shim left its cgroup"


def test_container_on_v2_may_mknod_but_not_open_other_devices(container: Container) -> None:
    out = container.run(
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c; "
        "mknod /tmp/kmsg c 1 11 && echo mknod ok; "
        "mknod /tmp/disk b 7 0 && echo mknod ok; "
        "(exec 3< /tmp/kmsg) 2>&1; (exec 3< /tmp/disk) 2>&1; "
        "echo done"
    )
    assert out.splitlines() == [
        "4",
        "mknod ok",
        "mknod ok",
        "/bin/sh: can't open /tmp/kmsg: Operation not permitted",
        "/bin/sh: can't open /tmp/disk: Operation not permitted",
        "done",
    ]


def test_terminal_container_on_v2(container: Container) -> None:
    out = container.run("tty; echo hi > /dev/tty", tty=True)
    assert out.replace("\r\n", "\n").splitlines() == ["/dev/pts/0", "hi"]


def test_a_filter_the_kernel_refuses_fails_the_start_and_leaves_nothing(container: Container) -> None:
    # "/" is no cgroup: the kernel refuses the program there, as it would without BPF or privilege
    report = container.create("echo never", tweak="attach = lambda d, p: devicefilter.attach('/', p)")
    assert report == {
        "error": "cannot confine the container's devices: the kernel refused the cgroup v2 device filter "
        "(eBPF): listing the BPF programs of a cgroup: Bad file descriptor"
    }
    assert container.shim is not None and container.shim.wait(timeout=30) == 1
    assert not os.path.exists(os.path.join(str(CGROUP2), container.cgroup))
    log = container.exec_dir / "log.json"
    assert not log.exists() or log.read_text() == ""  # the container never ran
