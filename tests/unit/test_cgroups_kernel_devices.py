"""Device confinement against the real kernel.

cgroup v2: a cgroup made for the test on the host's cgroup2 mount (on a v1 host the controller-less
mount at /sys/fs/cgroup/unified is enough: device programs need no controller), the generated program
attached by V2Manager, and a child moved into the cgroup that tries mknod and open.
cgroup v1: the same rules written to a devices cgroup must read back as DevicePolicy says.

Needs root; each part is skipped where the host lacks its hierarchy.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from daemon.runtime import bpf
from daemon.runtime.cgroups import DevicePolicy, DeviceRule, Resources, V1Manager, V2Manager
from daemon.runtime.cgroups.devicefilter import program
from daemon.runtime.cgroups.devices import DEFAULT_DEVICE_RULES, container_device_rules

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def _mount_of(fstype: str, options: str = "") -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == fstype and (not options or options in fields[sep + 3].split(",")):
                return fields[4]
    return None


CGROUP2 = _mount_of("cgroup2")
V1_DEVICES = _mount_of("cgroup", "devices")
needs_v2 = pytest.mark.skipif(CGROUP2 is None, reason="no cgroup2 mount")
needs_v1 = pytest.mark.skipif(V1_DEVICES is None, reason="no cgroup v1 devices hierarchy")

# The child waits until it is in the cgroup, then runs each operation and reports "ok" or the errno name.
CHILD = r"""
import errno, json, os, stat, sys
sys.stdin.readline()
out = []
for op, path, *rest in json.loads(sys.argv[1]):
    try:
        if op == "mknod":
            kind = stat.S_IFBLK if rest[0] == "b" else stat.S_IFCHR
            os.mknod(path, kind | 0o600, os.makedev(rest[1], rest[2]))
        else:
            os.close(os.open(path, {"r": os.O_RDONLY, "rw": os.O_RDWR}[op]))
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(json.dumps(out))
"""


class V2Cgroup:
    def __init__(self, manager: V2Manager, name: str, nodes: Path) -> None:
        self.m, self.name, self.nodes = manager, name, nodes
        self.leaf = os.path.join(manager.root, name)

    def run(self, *ops: tuple[object, ...]) -> list[str]:
        """Run ops in a child that is inside the cgroup before it does anything."""
        p = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(ops)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            self.m.add_process(self.name, p.pid)
            out, _ = p.communicate(b"go\n", timeout=30)
        finally:
            with suppress(ProcessLookupError):
                p.kill()
            p.wait()
        return list(json.loads(out))

    def node(self, name: str, kind: str, major: int, minor: int) -> str:
        """A device node made by the test itself (outside the cgroup)."""
        path = self.nodes / name
        mode = stat.S_IFBLK if kind == "b" else stat.S_IFCHR
        os.mknod(path, mode | 0o600, os.makedev(major, minor))
        return str(path)

    def programs(self) -> list[int]:
        fd = os.open(self.leaf, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return bpf.prog_query(fd, bpf.BPF_CGROUP_DEVICE)
        finally:
            os.close(fd)


@pytest.fixture
def cg(tmp_path: Path) -> Iterator[V2Cgroup]:
    assert CGROUP2 is not None
    m = V2Manager(CGROUP2)
    name = f"pydockerd-test-devices-{secrets.token_hex(6)}"
    m.create(name, Resources())
    nodes = tmp_path / "nodes"  # on the test's own file system, which must not be nodev: checked below
    nodes.mkdir()
    try:
        yield V2Cgroup(m, name, nodes)
    finally:
        m.remove(name)
        assert not os.path.exists(os.path.join(CGROUP2, name))


@needs_v2
def test_default_filter_allows_the_list_and_denies_other_devices(cg: V2Cgroup) -> None:
    kmsg = cg.node("kmsg", "c", 1, 11)
    disk = cg.node("disk", "b", 7, 0)
    # without a filter the node opens: the test's file system is not nodev, the kernel lets us
    assert cg.run(("r", kmsg)) == ["ok"]

    cg.m.restrict_devices(cg.name, container_device_rules(privileged=False))

    made_mem, made_sda = str(cg.nodes / "mem"), str(cg.nodes / "sda")
    assert cg.run(
        ("rw", "/dev/null"),
        ("r", "/dev/zero"),
        ("r", kmsg),
        ("r", disk),
        ("mknod", made_mem, "c", 1, 1),  # mknod of any device is allowed, as in Docker
        ("mknod", made_sda, "b", 8, 0),
        ("r", made_mem),
        ("rw", made_sda),
    ) == ["ok", "ok", "EPERM", "EPERM", "ok", "ok", "EPERM", "EPERM"]
    assert len(cg.programs()) == 1


@needs_v2
def test_rules_without_mknod_refuse_mknod(cg: V2Cgroup) -> None:
    rules = [DeviceRule.parse("a", allow=False), DeviceRule.parse("c 1:3 rw")]
    cg.m.restrict_devices(cg.name, rules)
    assert cg.run(
        ("mknod", str(cg.nodes / "mem"), "c", 1, 1),
        ("mknod", str(cg.nodes / "null"), "c", 1, 3),  # listed, but without m
        ("rw", "/dev/null"),
        ("r", "/dev/zero"),
    ) == ["EPERM", "EPERM", "ok", "EPERM"]


@needs_v2
def test_reattaching_replaces_the_program_and_allow_all_removes_it(cg: V2Cgroup) -> None:
    kmsg = cg.node("kmsg", "c", 1, 11)
    cg.m.restrict_devices(cg.name, container_device_rules(privileged=False))
    first = cg.programs()
    cg.m.restrict_devices(cg.name, container_device_rules(privileged=False))
    second = cg.programs()
    assert len(first) == len(second) == 1 and first != second
    assert cg.run(("r", kmsg)) == ["EPERM"]

    cg.m.restrict_devices(cg.name, container_device_rules(privileged=True))
    assert cg.programs() == []
    assert cg.run(("r", kmsg)) == ["ok"]


@needs_v2
def test_the_kernel_verifier_accepts_every_generated_program() -> None:
    rng = random.Random(7)
    policies = [DevicePolicy.from_rules(DEFAULT_DEVICE_RULES)]
    for _ in range(40):
        rules = [DeviceRule.parse("a", rng.random() < 0.5)]
        for _ in range(rng.randint(0, 12)):
            kind, major, minor = (
                rng.choice("bc"),
                rng.choice(["*", "1", "4095"]),
                rng.choice(["*", "0", "1048575"]),
            )
            letters = "".join(ch for ch in "rwm" if rng.random() < 0.5) or "r"
            rules.append(DeviceRule.parse(f"{kind} {major}:{minor} {letters}", rng.random() < 0.5))
        policies.append(DevicePolicy.from_rules(rules))
    for policy in policies:
        fd = bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, program(policy), "Apache-2.0")
        os.close(fd)


@needs_v2
def test_a_refused_program_comes_with_the_verifier_log() -> None:
    exit_without_r0 = bytes([0x95]) + bytes(7)
    with pytest.raises(bpf.BpfError) as info:
        bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, exit_without_r0, "Apache-2.0")
    assert "R0 !read_ok" in info.value.log


@needs_v1
def test_v1_devices_list_matches_the_policy() -> None:
    assert V1_DEVICES is not None
    m = V1Manager(os.path.dirname(V1_DEVICES), {"devices": V1_DEVICES})
    top = f"pydockerd-test-devices-{secrets.token_hex(6)}"
    rng = random.Random(11)
    try:
        for i in range(40):
            rules = []
            for _ in range(rng.randint(1, 8)):
                allow = rng.random() < 0.6
                if rng.random() < 0.15:
                    rules.append(DeviceRule.parse("a", allow))
                    continue
                letters = "".join(ch for ch in "rwm" if rng.random() < 0.5) or "m"
                numbers = f"{rng.choice(['*', '1', '5'])}:{rng.choice(['*', '3', '9'])}"
                text = f"{rng.choice('bc')} {numbers} {letters}"
                rules.append(DeviceRule.parse(text, allow))
            name = f"{top}/{i}"
            m.create(name, Resources())
            m.restrict_devices(name, rules)
            listing = Path(V1_DEVICES, top, str(i), "devices.list").read_text().splitlines()
            assert listing == DevicePolicy.from_rules(rules).v1_list(), rules
    finally:
        m.remove(top)
