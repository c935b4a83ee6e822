"""Compiled seccomp filters in a real kernel: a child process loads one (as a container's process does,
with linux.seccomp_set_filter) and tries syscalls; the errno each gets is what the filter decided."""

import base64
import errno
import json
import subprocess
import sys

import pytest

from daemon.runtime import caps
from daemon.runtime.seccomp import ProfileError, default_profile_text
from daemon.runtime.seccomp.compiler import NO_FILTER, FilterCache

# Runs in a fresh interpreter: resolve the numbers first, load the filter, then make each call.
PROBE = r"""
import ctypes, json, sys, base64
import pyseccomp
from daemon.runtime import linux
req = json.loads(sys.stdin.read())
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
calls = [(label, pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name), args)
         for label, name, args in req["calls"]]
linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
linux.seccomp_set_filter(base64.b64decode(req["program"]), req["flags"])
out = {}
for label, number, args in calls:
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    out[label] = 0 if rc >= 0 else ctypes.get_errno()
print(json.dumps(out))
"""

CLONE_FILES = 0x400
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
AF_UNIX, AF_INET, AF_INET6, AF_VSOCK = 1, 2, 10, 40
SOCK_STREAM, SOCK_DGRAM = 1, 2
KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING = 0, -4


def run_probe(program: bytes, calls: list[tuple[str, str, list[int]]], flags: int = 0) -> dict[str, int]:
    req = {"program": base64.b64encode(program).decode(), "flags": flags, "calls": calls}
    p = subprocess.run(
        [sys.executable, "-c", PROBE], input=json.dumps(req).encode(), capture_output=True, timeout=60
    )
    assert p.returncode == 0, p.stderr.decode()
    return {k: int(v) for k, v in json.loads(p.stdout).items()}


DOCKER_BLOCKS = [
    ("keyctl", "keyctl", [KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0]),
    ("add_key", "add_key", [0, 0, 0, 0, 0]),
    ("request_key", "request_key", [0, 0, 0, 0]),
    ("unshare-user", "unshare", [CLONE_NEWUSER]),
    ("unshare-uts", "unshare", [CLONE_NEWUTS]),
    ("clone-user", "clone", [CLONE_NEWUSER, 0, 0, 0, 0]),
    ("perf_event_open", "perf_event_open", [0, 0, -1, -1, 0]),
    ("io_uring_setup", "io_uring_setup", [1, 0]),
    ("vsock", "socket", [AF_VSOCK, SOCK_STREAM, 0]),
    ("bsd-personality", "personality", [0x6]),
    ("mount", "mount", [0, 0, 0, 0, 0]),
    ("bpf", "bpf", [0, 0, 0]),
    ("userfaultfd", "userfaultfd", [0]),
]
STILL_WORKS = [
    ("getpid", "getpid", []),
    ("unix-socket", "socket", [AF_UNIX, SOCK_STREAM, 0]),
    ("unshare-files", "unshare", [CLONE_FILES]),
    ("query-personality", "personality", [0xFFFFFFFF]),
]


@pytest.fixture(scope="module")
def cache() -> FilterCache:
    return FilterCache()


@pytest.mark.root
def test_default_filter_blocks_what_docker_blocks(cache: FilterCache) -> None:
    compiled = cache.build(default_profile_text(), caps.DEFAULT_CAPS)
    got = run_probe(compiled.program, DOCKER_BLOCKS + STILL_WORKS + [("clone3", "clone3", [0, 0])])
    assert {c[0]: got[c[0]] for c in DOCKER_BLOCKS} == {c[0]: errno.EPERM for c in DOCKER_BLOCKS}
    assert [got[c[0]] for c in STILL_WORKS] == [0, 0, 0, 0]
    assert got["clone3"] == errno.ENOSYS  # so that libc falls back to clone, whose flags the filter sees


@pytest.mark.root
def test_cap_sys_admin_reenables_namespaces_and_mounts_as_in_docker(cache: FilterCache) -> None:
    compiled = cache.build(default_profile_text(), [*caps.DEFAULT_CAPS, "SYS_ADMIN"])
    got = run_probe(
        compiled.program,
        [("unshare-uts", "unshare", [CLONE_NEWUTS]), ("keyctl", "keyctl", [0, KEY_SPEC_USER_KEYRING, 0])],
    )
    assert got == {"unshare-uts": 0, "keyctl": errno.EPERM}  # a capability never opens the keyrings


def test_argument_rules_and_within_a_rule_or_across_rules(cache: FilterCache) -> None:
    def socket_rule(*args: dict[str, object]) -> dict[str, object]:
        return {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES, "args": list(args)}

    def eq(index: int, value: int) -> dict[str, object]:
        return {"index": index, "value": value, "op": "SCMP_CMP_EQ"}

    profile = {  # everything allowed but (unix and stream) sockets and inet or inet6 ones
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP},
            socket_rule(eq(0, AF_UNIX), eq(1, SOCK_STREAM)),  # different arguments: both must hold
            socket_rule(eq(0, AF_INET), eq(0, AF_INET6)),  # one argument twice: either will do
        ],
    }
    compiled = cache.build(json.dumps(profile), [])
    got = run_probe(
        compiled.program,
        [
            ("unix-stream", "socket", [AF_UNIX, SOCK_STREAM, 0]),
            ("unix-dgram", "socket", [AF_UNIX, SOCK_DGRAM, 0]),
            ("inet", "socket", [AF_INET, SOCK_DGRAM, 0]),
            ("inet6", "socket", [AF_INET6, SOCK_DGRAM, 0]),
            ("getpid", "getpid", []),
        ],
    )
    assert got == {
        "unix-stream": errno.EACCES,
        "unix-dgram": 0,
        "inet": errno.EACCES,
        "inet6": errno.EACCES,
        "getpid": errno.ENOTSUP,  # errnoRet
    }


def test_a_profile_with_unknown_syscall_names_still_compiles(cache: FilterCache) -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert cache.build(text, []).program


def test_cache_keys_on_profile_and_capabilities(cache: FilterCache) -> None:
    text = default_profile_text()
    small = FilterCache(size=2)
    assert small.get(text, ["CHOWN"]) is None
    built = small.build(text, ["CHOWN"])
    assert small.get(text, ["CHOWN"]) is built
    assert small.get(text, ["CHOWN", "SYS_ADMIN"]) is None
    admin = small.build(text, ["SYS_ADMIN", "CHOWN"])
    assert admin.program != built.program  # the SYS_ADMIN rules are in
    small.build("{}", [])
    assert small.get(text, ["CHOWN"]) is None  # the oldest went: the cache stays small
    assert small.get("{}", []) is NO_FILTER


def test_flags_and_refusals_at_compile_time(cache: FilterCache) -> None:
    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]})
    assert cache.build(text, []).flags == 2
    with pytest.raises(ProfileError, match="not supported here"):
        cache.build(
            json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_LOONGARCH64"]}), []
        )
