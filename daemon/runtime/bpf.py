"""The bpf(2) calls a cgroup v2 device filter needs: load a program, attach it to a cgroup, find and
detach the programs attached before. Thin ctypes wrappers that raise OSError with errno, like os does.

union bpf_attr is passed as a zeroed buffer with the fields of one command packed at their offsets
(linux/bpf.h); the kernel requires the bytes past the fields it knows to be zero, which they are.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

from daemon.runtime import linux

# enum bpf_cmd
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_MULTI = 1 << 1

_ATTR_SIZE = 128  # bigger than every field we set, smaller than a page
_LOG_SIZE = 64 * 1024
_MAX_QUERY = 64  # programs a cgroup may carry before we give up on it


class BpfError(OSError):
    """A bpf(2) call failed; for a load the kernel's verifier log, when it gave one, is in .log."""

    def __init__(self, err: int, message: str, log: str = "") -> None:
        super().__init__(err, message)
        self.log = log


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    try:
        result = linux.raw_syscall("bpf", ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    except OSError:  # no syscall number for this architecture
        raise BpfError(38, f"{what}: bpf(2) on {platform.machine()} is not supported") from None
    if result < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"{what}: {os.strerror(err)}")
    return int(result)


def _attr(fmt: str, *values: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=" + fmt, buf, 0, *values)
    return buf


def _addr(buf: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf)


def prog_load(prog_type: int, insns: bytes, license: str) -> int:
    """Load a program and return its fd (close-on-exec, as every bpf fd is).

    On a refusal we load again with the verifier's log on, to say why.
    """
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())

    def load(log_level: int, log: ctypes.Array[ctypes.c_char] | None) -> int:
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
        attr = _attr(
            "IIQQIIQ",
            prog_type,
            len(insns) // 8,
            _addr(code),
            _addr(lic),
            log_level,
            len(log) if log is not None else 0,
            _addr(log) if log is not None else 0,
        )
        return _bpf(BPF_PROG_LOAD, attr, "loading the BPF program")

    try:
        return load(0, None)
    except BpfError as first:
        log = ctypes.create_string_buffer(_LOG_SIZE)
        try:
            return load(1, log)
        except BpfError as e:
            text = log.value.decode(errors="replace").strip()
            raise BpfError(e.errno or 0, e.strerror or "", text) from first


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int) -> None:
    # target_fd, attach_bpf_fd, attach_type, attach_flags
    _bpf(BPF_PROG_ATTACH, _attr("IIII", target_fd, prog_fd, attach_type, flags), "attaching the BPF program")


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(BPF_PROG_DETACH, _attr("III", target_fd, prog_fd, attach_type), "detaching a BPF program")


def prog_query(target_fd: int, attach_type: int) -> list[int]:
    """IDs of the programs attached to the target itself (not those inherited from its parents)."""
    ids = (ctypes.c_uint32 * _MAX_QUERY)()
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    attr = _attr("IIIIQI", target_fd, attach_type, 0, 0, ctypes.addressof(ids), _MAX_QUERY)
    _bpf(BPF_PROG_QUERY, attr, "listing the BPF programs of a cgroup")
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(ids[: min(count, _MAX_QUERY)])


def prog_fd_by_id(prog_id: int) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr("I", prog_id), f"opening BPF program {prog_id}")


def replace_cgroup_programs(
    cgroup_dir: str, prog_type: int, attach_type: int, insns: bytes | None, license: str
) -> None:
    """Make insns (or nothing, when None) the only program of attach_type on the cgroup itself.

    The new program is attached before the old ones go, so the cgroup is never without a filter.
    """
    dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = prog_query(dir_fd, attach_type)
        if insns is not None:
            prog_fd = prog_load(prog_type, insns, license)
            try:
                # the cgroup holds a reference now: our fd can go once attached
                prog_attach(dir_fd, prog_fd, attach_type, BPF_F_ALLOW_MULTI)
            finally:
                os.close(prog_fd)
        for prog_id in old:
            try:
                old_fd = prog_fd_by_id(prog_id)
            except BpfError:
                continue  # detached by someone else meanwhile
            try:
                prog_detach(dir_fd, old_fd, attach_type)
            except BpfError as e:
                if e.errno != errno.ENOENT:  # ENOENT: no longer attached here
                    raise
            finally:
                os.close(old_fd)
    finally:
        os.close(dir_fd)
