"""A DevicePolicy as a cgroup v2 device filter: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

The kernel runs the program on every mknod and every open of a device node by a process in the
cgroup, with r1 pointing at struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}, where
access_type = (access << 16) | type (the same bit values as devices.MKNOD/READ/WRITE and
BLOCK/CHAR); the program returns 1 to allow, 0 to deny (EPERM). It is written out here from the
kernel's documented instruction encoding (struct bpf_insn: u8 opcode, u4 dst, u4 src, s16 off, s32 imm).

Shape of the program (one block per exception, in the policy's order; any match decides):

    r2 = ctx->access_type; r3 = r2 >> 16 (access); r2 &= 0xffff (type)
    r4 = ctx->major; r5 = ctx->minor
    for each exception:
        if r2 != type goto next; [if r4 != major goto next;] [if r5 != minor goto next;]
        default deny:  r1 = r3 & ~access; if r1 != 0 goto next   (it must cover all the access asked)
        default allow: r1 = r3 & access;  if r1 == 0 goto next   (it must share a letter with it)
        r0 = not default; exit
      next:
    r0 = default; exit
"""

from __future__ import annotations

import functools
import struct
import sys
from typing import NamedTuple

from daemon.runtime import bpf
from daemon.runtime.cgroups.devices import ALL_ACCESS, TYPES, DevicePolicy
from daemon.runtime.cgroups.errors import CgroupError

# opcodes: class | size/op | source (linux/bpf_common.h, linux/bpf.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
ALU64_MOV_K = 0xB7  # dst = imm
ALU64_MOV_X = 0xBF  # dst = src
ALU64_AND_K = 0x57  # dst &= imm
ALU64_RSH_K = 0x77  # dst >>= imm
JMP_JEQ_K = 0x15  # if dst == imm: pc += off
JMP_JNE_K = 0x55  # if dst != imm: pc += off
JMP_EXIT = 0x95  # return r0

R0, R1, R2, R3, R4, R5 = range(6)
CTX_ACCESS_TYPE, CTX_MAJOR, CTX_MINOR = 0, 4, 8  # offsets in struct bpf_cgroup_dev_ctx

# the kernel reads the license only to decide whether GPL-only helpers may be called; ours calls none
LICENSE = "Apache-2.0"


class Insn(NamedTuple):
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        # dst_reg and src_reg are 4-bit fields of one byte; which nibble holds which follows the
        # byte order (the kernel's __LITTLE_ENDIAN_BITFIELD / __BIG_ENDIAN_BITFIELD)
        regs = (self.src << 4 | self.dst) if sys.byteorder == "little" else (self.dst << 4 | self.src)
        return struct.pack("=BBhi", self.code, regs, self.off, self.imm)


def _block(policy: DevicePolicy, index: int) -> list[Insn]:
    """The test of one exception; its jumps say "skip to the next block" as off=-1, fixed up after."""
    rule = policy.exceptions[index]
    skip = -1
    out = [Insn(JMP_JNE_K, R2, off=skip, imm=TYPES[rule.type])]
    if rule.major is not None:
        out.append(Insn(JMP_JNE_K, R4, off=skip, imm=rule.major))
    if rule.minor is not None:
        out.append(Insn(JMP_JNE_K, R5, off=skip, imm=rule.minor))
    if policy.default_allow:  # a deny exception bites if it shares any letter with the access
        out += [
            Insn(ALU64_MOV_X, R1, R3),
            Insn(ALU64_AND_K, R1, imm=rule.access),
            Insn(JMP_JEQ_K, R1, off=skip),
        ]
    elif rule.access != ALL_ACCESS:  # an allow exception must cover all of the access asked
        out += [
            Insn(ALU64_MOV_X, R1, R3),
            Insn(ALU64_AND_K, R1, imm=ALL_ACCESS & ~rule.access),
            Insn(JMP_JNE_K, R1, off=skip),
        ]
    out += [Insn(ALU64_MOV_K, R0, imm=int(rule.allow)), Insn(JMP_EXIT)]
    # every skip lands just past this block
    return [i._replace(off=len(out) - n - 1) if i.off == skip else i for n, i in enumerate(out)]


def instructions(policy: DevicePolicy) -> list[Insn]:
    prog = [
        Insn(LDX_MEM_W, R2, R1, CTX_ACCESS_TYPE),
        Insn(ALU64_MOV_X, R3, R2),
        Insn(ALU64_RSH_K, R3, imm=16),
        Insn(ALU64_AND_K, R2, imm=0xFFFF),
        Insn(LDX_MEM_W, R4, R1, CTX_MAJOR),
        Insn(LDX_MEM_W, R5, R1, CTX_MINOR),
    ]
    for index in range(len(policy.exceptions)):
        prog += _block(policy, index)
    prog += [Insn(ALU64_MOV_K, R0, imm=int(policy.default_allow)), Insn(JMP_EXIT)]
    return prog


@functools.lru_cache(maxsize=16)
def program(policy: DevicePolicy) -> bytes:
    """The program's bytes, as BPF_PROG_LOAD takes them; one build per distinct policy."""
    return b"".join(i.encode() for i in instructions(policy))


def attach(cgroup_dir: str, policy: DevicePolicy) -> None:
    """Make policy the device filter of the cgroup, replacing one attached before.

    A policy that allows everything (a privileged container) needs no program: the one attached
    before goes, and what the cgroup's parents attached still applies, as it would to an allow-all
    program. When the kernel refuses (no BPF, no privilege) the container must not start.
    """
    insns = None if policy.allows_everything else program(policy)
    try:
        bpf.replace_cgroup_programs(
            cgroup_dir, bpf.BPF_PROG_TYPE_CGROUP_DEVICE, bpf.BPF_CGROUP_DEVICE, insns, LICENSE
        )
    except bpf.BpfError as e:
        why = f" (verifier: {e.log.splitlines()[-1]})" if e.log else ""
        raise CgroupError(
            f"cannot confine the container's devices: the kernel refused the cgroup v2 device filter "
            f"(eBPF): {e.strerror}{why}",
            e.errno or 0,
            cgroup_dir,
        ) from e
