"""Device rules and the cgroup v2 device filter generated from them.

The generated program is run here by a tiny eBPF interpreter (only the instructions the generator may
emit, with the checks of the kernel's verifier that matter for them) and compared, request by request,
with the v1 devices controller, transcribed below from its documented behaviour
(Documentation/admin-guide/cgroup-v1/devices.rst, security/device_cgroup.c).
"""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.runtime.cgroups import (
    CgroupError,
    DevicePolicy,
    DeviceRule,
    InvalidDeviceRule,
    Resources,
    V1Manager,
    V2Manager,
    container_device_rules,
    fs,
    v1,
)
from daemon.runtime.cgroups.devicefilter import program
from daemon.runtime.cgroups.devices import DEFAULT_DEVICE_RULES

MKNOD, READ, WRITE = 1, 2, 4
BLOCK, CHAR = 1, 2

# --- the v1 devices controller, as the kernel documents and implements it ---------------------------


class V1Devices:
    """One v1 devices cgroup below a parent that allows everything."""

    def __init__(self) -> None:
        self.default_allow = True
        self.exceptions: list[list[int]] = []  # [type, major (-1: any), minor (-1: any), access]

    def write(self, allow: bool, line: str) -> None:
        if line.split()[0] == "a":  # any "a" rule: the new default, no exceptions
            self.default_allow = allow
            self.exceptions = []
            return
        kind, numbers, letters = line.split()
        major, minor = (-1 if n == "*" else int(n) for n in numbers.split(":"))
        access = sum({"m": MKNOD, "r": READ, "w": WRITE}[ch] for ch in set(letters))
        ex = [BLOCK if kind == "b" else CHAR, major, minor, access]
        same = [e for e in self.exceptions if e[:3] == ex[:3]]
        if allow != self.default_allow:  # dev_exception_add: merge into an identical one
            if same:
                same[0][3] |= access
            else:
                self.exceptions.append(ex)
        elif same:  # dev_exception_rm: only an identical one loses the letters
            same[0][3] &= ~access
            if not same[0][3]:
                self.exceptions.remove(same[0])

    def allows(self, kind: int, major: int, minor: int, access: int) -> bool:
        for t, ma, mi, acc in self.exceptions:
            if t != kind or ma not in (-1, major) or mi not in (-1, minor):
                continue
            if self.default_allow and access & acc:  # match_exception_partial
                return False
            if not self.default_allow and not access & ~acc:  # match_exception
                return True
        return self.default_allow

    def listing(self) -> list[str]:
        if self.default_allow:
            return ["a *:* rwm"]
        out = []
        for t, ma, mi, acc in self.exceptions:
            letters = "".join(ch for ch, bit in (("r", READ), ("w", WRITE), ("m", MKNOD)) if acc & bit)
            out.append(
                f"{'b' if t == BLOCK else 'c'} {'*' if ma < 0 else ma}:{'*' if mi < 0 else mi} {letters}"
            )
        return out


# --- a small eBPF interpreter ------------------------------------------------------------------------

MASK = (1 << 64) - 1


class Refused(Exception):
    """What the kernel's verifier would refuse (or a program that would misbehave)."""


def _sext(imm: int) -> int:
    return imm & MASK  # a 32-bit signed immediate, sign-extended to 64 bits


def run(prog: bytes, kind: int, major: int, minor: int, access: int) -> int:
    """Run a cgroup device program over struct bpf_cgroup_dev_ctx; returns r0."""
    if len(prog) % 8 or not prog:
        raise Refused("program is not a whole number of instructions")
    ctx = struct.pack("=III", (access << 16) | kind, major, minor)
    regs: list[int | None] = [None] * 11
    regs[1] = -1  # the ctx pointer: only loads through it are allowed
    n = len(prog) // 8
    pc = steps = 0
    while True:
        if not 0 <= pc < n:
            raise Refused(f"jump or fall-through out of the program at {pc}")
        steps += 1
        if steps > 10_000:
            raise Refused("no exit")
        code, regs_byte, off, imm = struct.unpack_from("=BBhi", prog, pc * 8)
        if sys.byteorder == "little":
            dst, src = regs_byte & 0xF, regs_byte >> 4
        else:
            dst, src = regs_byte >> 4, regs_byte & 0xF

        def get(r: int, at: int = pc) -> int:
            value = regs[r]
            if value is None:
                raise Refused(f"insn {at}: r{r} read before it is written")
            if value < 0:
                raise Refused(f"insn {at}: the context pointer used as a number")
            return value

        pc += 1
        if code == 0x61:  # ldxw dst, [src + off]
            if regs[src] != -1 or off not in (0, 4, 8):
                raise Refused(f"insn {pc - 1}: load from outside the context")
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif code == 0xB7:  # mov dst, imm
            regs[dst] = _sext(imm)
        elif code == 0xBF:  # mov dst, src
            regs[dst] = get(src)
        elif code == 0x57:  # and dst, imm
            regs[dst] = get(dst) & _sext(imm)
        elif code == 0x77:  # rsh dst, imm
            regs[dst] = get(dst) >> imm
        elif code in (0x15, 0x55):  # jeq / jne dst, imm, +off
            if off < 0:
                raise Refused("backward jump")
            if (get(dst) == _sext(imm)) == (code == 0x15):
                pc += off
        elif code == 0x95:  # exit
            return get(0)
        else:
            raise Refused(f"insn {pc - 1}: opcode {code:#x} is not one the generator may emit")


# --- cases --------------------------------------------------------------------------------------------


def requests(rules: Sequence[DeviceRule]) -> list[tuple[int, int, int, int]]:
    """Every (type, major, minor, access) that could tell two policies over these rules apart."""
    majors = {0, 1, 7} | {r.major for r in rules if r.major is not None}
    minors = {0, 3, 99} | {r.minor for r in rules if r.minor is not None}
    return [
        (kind, ma, mi, acc)
        for kind in (BLOCK, CHAR)
        for ma in sorted(majors)
        for mi in sorted(minors)
        for acc in range(1, 8)
    ]


def check_against_v1(rules: Sequence[DeviceRule]) -> None:
    v1 = V1Devices()
    for r in rules:
        v1.write(r.allow, r.v1())
    policy = DevicePolicy.from_rules(rules)
    assert policy.v1_list() == v1.listing()
    prog = program(policy)
    for req in requests(rules):
        assert run(prog, *req) == int(v1.allows(*req)), (rules, req)


def random_rules(rng: random.Random) -> list[DeviceRule]:
    out = []
    for _ in range(rng.randint(0, 8)):
        allow = rng.random() < 0.6
        if rng.random() < 0.15:
            out.append(DeviceRule.parse("a", allow))
            continue
        kind = rng.choice("bc")
        major = rng.choice(["*", "1", "5", "136"])
        minor = rng.choice(["*", "3", "5", "9"])
        letters = "".join(ch for ch in "rwm" if rng.random() < 0.5) or "m"
        out.append(DeviceRule.parse(f"{kind} {major}:{minor} {letters}", allow))
    return out


def test_parse_reads_v1_syntax() -> None:
    assert DeviceRule.parse("c 1:3 rwm") == DeviceRule(True, "c", 1, 3, MKNOD | READ | WRITE)
    assert DeviceRule.parse("b *:* m", allow=False) == DeviceRule(False, "b", None, None, MKNOD)
    assert DeviceRule.parse("c 136:* wr") == DeviceRule(True, "c", 136, None, READ | WRITE)
    assert DeviceRule.parse("c 136:* wr").v1() == "c 136:* rw"
    # like v1, any "a" rule resets, whatever numbers it names
    assert DeviceRule.parse("a") == DeviceRule.parse("a 7:* r") == DeviceRule(True, "a")
    assert DeviceRule.parse("a", allow=False).v1() == "a"


@pytest.mark.parametrize(
    "text",
    ["", "c", "c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c 1:3 rwmr", "c -1:3 r", "c 4096:0 r",
     "c 1:1048576 r", "c 1:3 rwm extra", "c \u0661:3 r"],
)  # fmt: skip
def test_parse_refuses_what_is_not_a_rule(text: str) -> None:
    with pytest.raises(InvalidDeviceRule, match="invalid device rule"):
        DeviceRule.parse(text)


def test_default_policy_is_docker_s_allow_list() -> None:
    policy = DevicePolicy.from_rules(container_device_rules(privileged=False))
    assert not policy.default_allow
    assert policy.v1_list() == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    ]  # fmt: skip
    assert DevicePolicy.from_rules(container_device_rules(privileged=True)).allows_everything


def test_extra_rules_come_after_the_defaults() -> None:
    extra = (DeviceRule.parse("c 10:229 rw"), DeviceRule.parse("c 1:3 w", allow=False))
    policy = DevicePolicy.from_rules(container_device_rules(False, extra))
    listing = policy.v1_list()
    assert "c 10:229 rw" in listing
    assert "c 1:3 rm" in listing  # a deny takes its letters from the identical exception


def test_default_program_against_v1() -> None:
    check_against_v1(DEFAULT_DEVICE_RULES)
    prog = program(DevicePolicy.from_rules(DEFAULT_DEVICE_RULES))
    assert run(prog, CHAR, 1, 3, READ | WRITE) == 1  # /dev/null
    assert run(prog, CHAR, 1, 1, READ) == 0  # /dev/mem
    assert run(prog, CHAR, 1, 1, MKNOD) == 1  # but it may be made
    assert run(prog, BLOCK, 8, 0, READ) == 0
    assert run(prog, CHAR, 136, 12345, READ | WRITE) == 1  # any pts


@pytest.mark.parametrize(
    "lines",
    [
        [],  # a new cgroup: everything
        [(False, "a")],  # nothing
        [(True, "a")],
        [(False, "a"), (True, "c 1:3 r"), (True, "c 1:3 w")],  # merged: rw together is allowed
        [(False, "a"), (True, "c 1:* r"), (True, "c 1:3 w")],  # no one rule covers rw of 1:3
        [(False, "a"), (True, "c 1:3 rwm"), (False, "c 1:3 w")],  # a deny takes w away
        [(False, "a"), (True, "c 1:3 rwm"), (False, "c 1:* rwm")],  # a wider deny changes nothing
        [(True, "a"), (False, "b *:* rw"), (False, "c 1:3 m")],  # deny list
        [(True, "a"), (False, "c 1:3 rw"), (True, "c 1:3 r")],  # an allow in allow mode removes letters
        [(False, "a"), (True, "c 1:3 r"), (True, "a"), (False, "c 5:* r"), (False, "a"), (True, "b 7:0 m")],
    ],
)
def test_hand_picked_rules_against_v1(lines: list[tuple[bool, str]]) -> None:
    check_against_v1([DeviceRule.parse(text, allow) for allow, text in lines])


def test_random_rules_against_v1() -> None:
    rng = random.Random(5)  # fixed: a failure must be reproducible
    for _ in range(150):
        check_against_v1(random_rules(rng))


def test_program_is_built_once_per_policy() -> None:
    a = program(DevicePolicy.from_rules(DEFAULT_DEVICE_RULES))
    b = program(DevicePolicy.from_rules(container_device_rules(False)))
    assert a is b


def test_v2_manager_attaches_the_policy(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    attached: list[tuple[str, DevicePolicy]] = []
    m = V2Manager(str(tmp_path), attach_devices=lambda d, p: attached.append((d, p)))
    m.create("pydockerd/abc", Resources())
    m.restrict_devices("pydockerd/abc", container_device_rules(False))
    m.restrict_devices("pydockerd/abc", container_device_rules(True))
    leaf = str(tmp_path / "pydockerd" / "abc")
    assert attached == [
        (leaf, DevicePolicy.from_rules(DEFAULT_DEVICE_RULES)),
        (leaf, DevicePolicy(default_allow=True)),
    ]
    with pytest.raises(CgroupError, match="does not exist"):
        m.restrict_devices("pydockerd/gone", container_device_rules(False))


def test_v1_manager_writes_the_rules_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "cgroup.procs").write_text("")
    m = V1Manager(str(tmp_path))
    rules = (DeviceRule.parse("a", False), DeviceRule.parse("c 1:3 rw"), DeviceRule.parse("c 1:3 w", False))
    written: list[tuple[str, str]] = []
    (devices / "x").mkdir()

    def record(path: str, value: str, what: str = "", action: str = "") -> None:
        written.append((Path(path).name, value))
        fs.write(path, value, what, action)

    monkeypatch.setattr(v1, "write", record)
    m.restrict_devices("x", rules)
    assert written == [("devices.deny", "a"), ("devices.allow", "c 1:3 rw"), ("devices.deny", "c 1:3 w")]


def test_v1_without_devices_controller_refuses_to_confine(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "cgroup.procs").write_text("")
    m = V1Manager(str(tmp_path))
    with pytest.raises(
        CgroupError,
        match="devices: the devices cgroup controller is not mounted",
    ):
        m.restrict_devices("x", container_device_rules(False))
    m.restrict_devices("x", container_device_rules(True))  # nothing to confine: fine


@pytest.mark.parametrize(
    "fields",
    [
        ("x", 1, 3, 7),
        ("c", 1, 3, 0),
        ("c", 1, 3, 8),
        ("c", -1, 3, 7),
        ("b", 1, 1 << 20, 7),
        ("c", 4096, 0, 7),
    ],
)
def test_a_rule_made_in_code_is_checked_too(fields: tuple[str, int, int, int]) -> None:
    with pytest.raises(InvalidDeviceRule):
        DeviceRule(True, *fields)
