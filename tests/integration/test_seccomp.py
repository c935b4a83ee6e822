"""Seccomp, against a real daemon and the real kernel: each attack Docker's default profile stops is
made from a container, by default (it fails) and with seccomp=unconfined (it works, so the filter is
what stops it); capabilities, --privileged and user profiles change the filter as they do in Docker.

busybox has `unshare` but no keyctl, perf or io_uring tool: tests/probes/syscalls.c is built static
and bind-mounted into the containers for those."""

import ctypes
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyseccomp
import pytest

from tests.conftest import REPO, RunningDaemon

pytestmark = [pytest.mark.root, pytest.mark.integration]

EPERM, ENOSYS, EINVAL = 1, 38, 22
DEFAULT_PROFILE = REPO / "daemon" / "runtime" / "seccomp" / "default.json"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the syscall probe (make install brings it)"
    out = tmp_path_factory.mktemp("probe") / "syscalls"
    subprocess.run(
        [gcc, "-static", "-O1", "-o", str(out), str(REPO / "tests" / "probes" / "syscalls.c")],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def name(daemon: RunningDaemon) -> Iterator[str]:
    n = f"scmp-{uuid.uuid4().hex[:8]}"
    yield n
    daemon.docker("rm", "-f", n)


def run_probe(daemon: RunningDaemon, probe: Path, *ops: str, opts: tuple[str, ...] = ()) -> dict[str, str]:
    """{op: "ok <detail>" | "errno <n>"} for each operation, run in a new container with `opts`."""
    p = daemon.docker("run", "--rm", *opts, "-v", f"{probe}:/probe:ro", "busybox", "/probe", *ops)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == len(ops), (p.stdout, p.stderr)
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in lines}


def sh(daemon: RunningDaemon, script: str, *opts: str) -> str:
    p = daemon.docker("run", "--rm", *opts, "busybox", "sh", "-c", script)
    return p.stdout.decode().strip()


# --- the host root's keyrings ----------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_ADD_KEY = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "add_key")
SYS_KEYCTL = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "keyctl")
KEY_SPEC_USER_KEYRING = -4
KEYCTL_SEARCH, KEYCTL_INVALIDATE = 10, 21


def _arg(value: object) -> object:
    return ctypes.c_long(value) if isinstance(value, int) else value


def _syscall(number: int, *args: object) -> int:
    return int(_libc.syscall(ctypes.c_long(number), *[_arg(a) for a in args]))


def find_user_key(desc: str) -> int:
    """The serial of a "user" key in root's user keyring, or -1."""
    return _syscall(SYS_KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", desc.encode(), 0)


def drop_user_key(desc: str) -> None:
    serial = find_user_key(desc)
    if serial > 0:
        _syscall(SYS_KEYCTL, KEYCTL_INVALIDATE, serial)


@pytest.fixture
def host_secret() -> Iterator[tuple[str, str]]:
    """A key in the host root's user keyring, as a host service might keep a credential there."""
    if not Path("/proc/sys/kernel/keys").exists():
        pytest.skip("no kernel keyrings")
    desc, secret = f"pydockerd-test-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    serial = _syscall(
        SYS_ADD_KEY, b"user", desc.encode(), secret.encode(), len(secret), KEY_SPEC_USER_KEYRING
    )
    assert serial > 0, ctypes.get_errno()
    try:
        yield desc, secret
    finally:
        drop_user_key(desc)


def test_container_root_cannot_read_or_add_the_host_roots_keys(
    daemon: RunningDaemon, probe: Path, host_secret: tuple[str, str]
) -> None:
    desc, secret = host_secret
    planted = f"{desc}-planted"
    try:
        got = run_probe(daemon, probe, f"keysteal:{desc}", f"addkey:{planted}:x")
        assert got == {"keysteal": f"errno {EPERM}", "addkey": f"errno {EPERM}"}
        assert find_user_key(planted) == -1, "a container added a key to the host root's keyring"
        # without the filter both attacks work: keyrings are not namespaced, the filter is the defence
        got = run_probe(
            daemon,
            probe,
            f"keysteal:{desc}",
            f"addkey:{planted}:x",
            opts=("--security-opt", "seccomp=unconfined"),
        )
        assert got["keysteal"] == f"ok {secret}"
        assert got["addkey"].startswith("ok") and find_user_key(planted) > 0
    finally:
        drop_user_key(planted)


def test_each_container_joins_a_session_keyring_of_its_own(
    daemon: RunningDaemon, probe: Path, name: str
) -> None:
    daemon.docker(
        "run", "-d", "--name", name, "--security-opt", "seccomp=unconfined",
        "-v", f"{probe}:/probe:ro", "busybox", "sleep", "60", check=True,
    )  # fmt: skip
    cid = daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
    first = daemon.docker("exec", name, "/probe", "session").stdout.decode().strip()
    assert first.startswith("session ok keyring;") and first.endswith(f";_ses.{cid}"), first
    # an exec joins the container's keyring (runc's way), never the daemon's
    assert daemon.docker("exec", name, "/probe", "session").stdout.decode().strip() == first


# --- namespaces, perf, io_uring, personality, vsock --------------------------------------------------


def test_default_profile_blocks_what_dockers_blocks(daemon: RunningDaemon, probe: Path) -> None:
    # clonens before unshare-user: a process in a user namespace without a mapping cannot make another
    ops = ("clonens", "unshare-user", "clone3", "perf", "iouring", "personality:6", "vsock")
    assert run_probe(daemon, probe, *ops) == {
        "unshare-user": f"errno {EPERM}",
        "clonens": f"errno {EPERM}",
        "clone3": f"errno {ENOSYS}",  # libc then falls back to clone, whose flags the filter checks
        "perf": f"errno {EPERM}",
        "iouring": f"errno {EPERM}",
        "personality": f"errno {EPERM}",  # 6: BSD emulation
        "vsock": f"errno {EPERM}",
    }
    assert run_probe(daemon, probe, "personality:ffffffff") == {"personality": "ok"}  # a query: allowed
    assert run_probe(daemon, probe, *ops, opts=("--security-opt", "seccomp=unconfined")) == {
        "unshare-user": "ok",
        "clonens": "ok",
        "clone3": f"errno {EINVAL}",  # the kernel's own answer to a clone3 without arguments
        "perf": "ok",
        "iouring": "ok",
        "personality": "ok",
        "vsock": "ok",
    }


def test_unshare_and_mounts_in_a_user_namespace(daemon: RunningDaemon) -> None:
    script = "unshare -U -r -m sh -c 'mount -t tmpfs t /tmp && echo mounted' 2>/dev/null || echo refused"
    assert sh(daemon, "unshare -U -r id -u 2>/dev/null || echo refused") == "refused"
    assert sh(daemon, script) == "refused"
    assert sh(daemon, script, "--security-opt", "seccomp=unconfined") == "mounted"
    # CAP_SYS_ADMIN re-enables namespaces and mounts, as Docker's profile does
    assert sh(daemon, script, "--cap-add", "SYS_ADMIN") == "mounted"


def test_cap_sys_admin_opens_namespaces_but_never_the_keyrings(daemon: RunningDaemon, probe: Path) -> None:
    got = run_probe(daemon, probe, "clonens", "clone3", "session", opts=("--cap-add", "SYS_ADMIN"))
    assert got == {"clonens": "ok", "clone3": f"errno {EINVAL}", "session": f"errno {EPERM}"}


# --- who gets which filter ------------------------------------------------------------------------


def test_filter_mode_by_option(daemon: RunningDaemon, name: str) -> None:
    grep = "grep ^Seccomp: /proc/self/status | cut -f2"
    assert sh(daemon, grep) == "2"
    assert sh(daemon, grep, "--security-opt", "seccomp=builtin") == "2"
    assert sh(daemon, grep, "--security-opt", "seccomp=unconfined") == "0"
    assert sh(daemon, grep, "--privileged") == "0"
    # Docker gives a privileged container no filter even when a profile is named
    assert sh(daemon, grep, "--privileged", "--security-opt", f"seccomp={DEFAULT_PROFILE}") == "0"
    assert sh(daemon, grep, "-u", "65534", "--security-opt", "no-new-privileges") == "2"
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    for user in ("0", "65534"):
        p = daemon.docker("exec", "-u", user, name, "sh", "-c", grep)
        assert p.stdout.decode().strip() == "2", p.stderr  # execs get the container's filter


def test_a_users_profile_file_is_loaded(daemon: RunningDaemon, tmp_path: Path, name: str) -> None:
    no_mkdir = tmp_path / "no-mkdir.json"
    no_mkdir.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
            }
        )
    )
    script = "mkdir /made 2>&1; touch /touched && echo touched"
    out = sh(daemon, script, "--security-opt", f"seccomp={no_mkdir}")
    assert out.splitlines() == ["mkdir: can't create directory '/made': Permission denied", "touched"]
    # a profile in Docker's full format (archMap, includes/excludes, args): our own default as a file
    p = daemon.docker(
        "run", "--name", name, "--security-opt", f"seccomp={DEFAULT_PROFILE}", "busybox",
        "sh", "-c", "unshare -U -r true 2>/dev/null || echo refused",
    )  # fmt: skip
    assert p.stdout.decode().strip() == "refused", p.stderr
    # inspect shows the option as the CLI sent it: the profile's compact JSON
    opts = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", name).stdout)
    assert len(opts) == 1 and opts[0].startswith('seccomp={"defaultAction":"SCMP_ACT_ERRNO"')


def test_everyday_tools_work_under_the_default_profile(daemon: RunningDaemon, name: str) -> None:
    script = (
        "ping -c1 -W2 127.0.0.1 >/dev/null && echo ping; "
        "ps >/dev/null && echo ps; top -bn1 >/dev/null && echo top; "
        "mkdir /d && chown 65534 /d && chmod 700 /d && ln -s /d /l && mkfifo /f && rm -r /d /l /f "
        "&& echo files; "
        "su -s /bin/sh nobody -c 'id -u'; "
        "(sleep 0.1 & wait) && echo jobs"
    )
    assert sh(daemon, script).splitlines() == ["ping", "ps", "top", "files", "65534", "jobs"]
    daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    assert "sleep 60" in daemon.docker("exec", name, "ps").stdout.decode()
    assert daemon.docker("exec", "-t", name, "echo", "tty").stdout.decode().strip() == "tty"
    assert "sleep 60" in daemon.docker("top", name).stdout.decode()


# --- refusals and what docker info says ------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "status", "words"),
    [
        ('{"defaultAction":"SCMP_ACT_FOO"}', 400, "unknown action 'SCMP_ACT_FOO'"),
        ('{"defaultAction":"SCMP_ACT_ALLOW","syscals":[]}', 400, "unknown field 'syscals'"),
        ("/etc/seccomp.json", 400, "Decoding seccomp profile failed"),  # an API client sending a path
        ('{"defaultAction":"SCMP_ACT_NOTIFY"}', 501, "not implemented"),
        (
            '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_LOONGARCH64"]}',
            400,
            "seccomp architecture SCMP_ARCH_LOONGARCH64 is not supported here",
        ),
    ],
)
def test_bad_profiles_are_refused_at_create(
    daemon: RunningDaemon, profile: str, status: int, words: str
) -> None:
    before = daemon.api("GET", "/containers/json?all=1")[1]
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": [f"seccomp={profile}"]}}
    got, answer = daemon.api("POST", "/containers/create", body)
    assert got == status and words in str(answer), answer
    assert daemon.api("GET", "/containers/json?all=1")[1] == before  # nothing was created


def test_info_lists_the_builtin_seccomp_profile(daemon: RunningDaemon) -> None:
    status, info = daemon.api("GET", "/info")
    assert status == 200 and isinstance(info, dict)
    assert "name=seccomp,profile=builtin" in info["SecurityOptions"]
    out = daemon.docker("info").stdout.decode()
    assert "  seccomp\n   Profile: builtin\n" in out
