"""Shared fixtures: a real pydockerd on a temporary socket, with a busybox image imported into it."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.files.trees import remove_tree

REPO = Path(__file__).resolve().parent.parent


def docker_cli() -> str:
    """The docker CLI on PATH, else the one `make install` puts beside this interpreter (.venv/bin)."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), str(Path(sys.executable).parent)])
    found = shutil.which("docker", path=search)
    if found is None:
        pytest.fail("no docker CLI on PATH or in .venv/bin: `make install` fetches one")
    return found


def is_root() -> bool:
    return os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_root():
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords or "integration" in item.keywords:
            item.add_marker(skip)


def unix_request(
    sock_path: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """A minimal HTTP/1.1 client over a unix socket (Connection: close), for tests and fixtures."""
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(sock_path)
            self.sock = s

    conn = Conn("localhost", timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def pids_holding(prefix: str) -> list[int]:
    """Processes with a file under `prefix` open (a shim holds its exec dir's shim.log)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                    found.append(int(pid))
                    break
            except OSError:
                continue
    return found


class NetSlot:
    """A daemon's own corner of the host's networking, so that daemons of parallel tests never share a
    bridge, a subnet or an iptables chain: slot n has bridge pydt<n> and the subnets 10.(100+n).x.0/24.
    Held with a lock on a file for the daemon's life; a crashed test's slot frees itself."""

    DIR = Path("/run/pydockerd-test-slots")
    SLOTS = 64

    def __init__(self) -> None:
        import fcntl

        self.DIR.mkdir(parents=True, exist_ok=True)
        for n in range(self.SLOTS):
            fd = os.open(self.DIR / f"slot-{n}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.n, self._fd = n, fd
            return
        raise RuntimeError("no free network slot for a test daemon")

    @property
    def bridge(self) -> str:
        return f"pydt{self.n}"

    def subnet(self, k: int) -> str:
        """A /24 of this daemon's own (k from 1 to 255; 0 is its default bridge)."""
        return f"10.{100 + self.n}.{k}.0/24"

    def daemon_args(self, dns: bool = True) -> tuple[str, ...]:
        # no container query may leave the machine: nothing listens on 127.0.0.9, so names that are not
        # the containers' own fail at once (a test that checks forwarding runs its own resolver)
        return (
            "--bridge", self.bridge,
            "--bip", f"10.{100 + self.n}.0.1/24",
            "--default-address-pool", f"base=10.{100 + self.n}.0.0/16,size=24",
        ) + (("--dns", "127.0.0.9") if dns else ())  # fmt: skip

    def release(self) -> None:
        os.close(self._fd)


@dataclass
class RunningDaemon:
    root: Path
    sock: str
    proc: subprocess.Popen[bytes]
    data_root: Path
    exec_root: Path
    pidfile: Path
    cgroup_parent: str
    extra_args: tuple[str, ...] = ()  # more daemon flags
    wrapper: tuple[str, ...] = ()  # a command the daemon runs under, e.g. ("prlimit", "--nofile=64:64", "--")
    net: NetSlot | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def api(
        self,
        method: str,
        path: str,
        body: object = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, object]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        status, _h, out = unix_request(self.sock, method, path, data, hdrs)
        try:
            return status, json.loads(out) if out.strip() else None
        except ValueError:
            return status, out

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CLI_HINTS": "false"}
        return subprocess.run(
            [docker_cli(), *args], input=input, capture_output=True, env=env, timeout=timeout, check=check
        )

    def start(self) -> None:
        self.proc = start_daemon_process(self)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_daemon_process(d: RunningDaemon) -> subprocess.Popen[bytes]:
    log = open(d.root / "daemon.log", "ab")  # noqa: SIM115 - kept open for the daemon's life
    proc = subprocess.Popen(
        [
            *d.wrapper,
            sys.executable,
            "-m",
            "daemon.cli",
            "-H",
            d.host,
            "--data-root",
            str(d.data_root),
            "--exec-root",
            str(d.exec_root),
            "--pidfile",
            str(d.pidfile),
            "--cgroup-parent",
            d.cgroup_parent,
            "--log-level",
            "debug",
            *(d.net.daemon_args(dns="--dns" not in d.extra_args) if d.net else ()),
            *d.extra_args,
        ],
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pydockerd exited: {(d.root / 'daemon.log').read_text()[-3000:]}")
        try:
            if unix_request(d.sock, "GET", "/_ping", timeout=2)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("pydockerd did not answer /_ping within 30 s")


def new_daemon(tmp: Path, extra_args: tuple[str, ...] = (), wrapper: tuple[str, ...] = ()) -> RunningDaemon:
    d = RunningDaemon(
        root=tmp,
        sock=str(tmp / "pyd.sock"),
        proc=None,  # type: ignore[arg-type]
        data_root=tmp / "data",
        exec_root=tmp / "exec",
        pidfile=tmp / "pyd.pid",
        cgroup_parent=f"pydockerd-test-{os.getpid()}-{tmp.name[-6:]}",
        extra_args=extra_args,
        wrapper=wrapper,
        net=NetSlot(),
    )
    try:
        d.start()
    except BaseException:
        d.net.release()  # type: ignore[union-attr]
        raise
    return d


def import_busybox(d: RunningDaemon, repo: str = "busybox", tag: str = "latest") -> str:
    from daemon.tools.busybox_rootfs import build_rootfs_tar

    tar = d.root / "busybox-rootfs.tar"
    if not tar.exists():
        build_rootfs_tar(tar)
    changes = "&".join(f"changes={c}" for c in ["CMD%20%5B%22sh%22%5D"])
    status, _h, out = unix_request(
        d.sock,
        "POST",
        f"/v1.47/images/create?fromSrc=-&repo={repo}&tag={tag}&{changes}",
        tar.read_bytes(),
        {"Content-Type": "application/x-tar"},
    )
    assert status == 200, out
    last = [json.loads(line) for line in out.splitlines() if line.strip()][-1]
    assert "status" in last, out
    return str(last["status"])


def stop_daemon(d: RunningDaemon) -> None:
    # remove every container first so no shim, mount or cgroup outlives the test run
    try:
        status, listing = d.api("GET", "/containers/json?all=1")
        if status == 200 and isinstance(listing, list):
            for c in listing:
                d.api("DELETE", f"/containers/{c['Id']}?force=1")
    except OSError:
        pass
    d.kill()
    subprocess.run(["pkill", "-KILL", "-f", f"daemon.runtime.shim {d.exec_root}"], check=False)
    from daemon.runtime.cgroups import detect

    with contextlib.suppress(OSError):
        detect().remove(d.cgroup_parent)
    if d.net is not None:
        remove_daemon_network(d.net)
        d.net.release()


def remove_daemon_network(net: NetSlot) -> None:
    """What a test daemon leaves of its networking on purpose (its bridges and chains live on after it,
    as dockerd's do): removed with the daemon, so the next test on this slot starts clean."""
    from daemon.daemon import chain_prefix
    from daemon.networks.firewall import IptablesFirewall

    with contextlib.suppress(Exception):
        IptablesFirewall(chain_prefix(net.bridge)).remove_all()
    links = subprocess.run(
        ["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True
    ).stdout
    prefix = f"10.{100 + net.n}."
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        addrs = subprocess.run(
            ["ip", "-o", "-4", "addr", "show", "dev", name], capture_output=True, text=True
        ).stdout
        if name == net.bridge or prefix in addrs:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@contextlib.contextmanager
def daemon_in_new_dir(
    prefix: str, extra_args: tuple[str, ...] = (), wrapper: tuple[str, ...] = (), busybox: bool = True
) -> Iterator[RunningDaemon]:
    """A daemon of its own (with busybox imported unless told not to), in a new short directory (unix
    socket paths are short), stopped and removed afterwards, also when it fails to start."""
    if not is_root():
        pytest.skip("needs root")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        d = new_daemon(tmp, extra_args, wrapper)
        try:
            if busybox:
                import_busybox(d)
            yield d
        finally:
            stop_daemon(d)
    finally:
        with contextlib.suppress(OSError):
            remove_tree(tmp)  # not shutil.rmtree: a test's container may have left a very deep tree


@pytest.fixture(scope="session")
def daemon() -> Iterator[RunningDaemon]:
    with daemon_in_new_dir("pydockerd-test-") as d:
        yield d


@pytest.fixture
def names(daemon: RunningDaemon) -> Iterator[list[str]]:
    """Names of containers a test creates on the shared daemon; all force-removed afterwards."""
    created: list[str] = []
    yield created
    if created:
        daemon.docker("rm", "-f", *created)


@pytest.fixture
def fresh_daemon() -> Iterator[RunningDaemon]:
    """A daemon of the test's own, for tests that kill or restart it."""
    with daemon_in_new_dir("pyd-") as d:
        yield d
