"""A container must never be able to harm the daemon (issue 5): deep trees, huge directories, clients
that give up, execs nobody reads. Each test makes the real fault against a real daemon."""

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    RunningDaemon,
    docker_cli,
    import_busybox,
    is_root,
    new_daemon,
    stop_daemon,
    unix_request,
)
from tests.deep_trees import DEEP_SH, make_chain

pytestmark = [pytest.mark.root, pytest.mark.integration]

# 1,500 levels: past Python's recursion limit; 2,100 levels of "dd": 6,300 bytes of path, past PATH_MAX
DEEP_CMD = f"{DEEP_SH}; (deep 1500 d) && (deep 2100 dd)"


@pytest.fixture
def name(daemon: RunningDaemon) -> Iterator[str]:
    n = f"life-{uuid.uuid4().hex[:8]}"
    yield n
    daemon.docker("rm", "-f", n)


def _out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode().strip()


def _cid(d: RunningDaemon, ref: str) -> str:
    return _out(d.docker("inspect", "-f", "{{.Id}}", ref, check=True))


def _send(d: RunningDaemon, method: str, path: str) -> socket.socket:
    """A request on a raw connection, left for the caller to read or to abandon."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n".encode())
    return s


def _status(s: socket.socket, timeout: float) -> int | None:
    """The status code of the answer on `s`, or None when none came within `timeout`."""
    s.settimeout(timeout)
    try:
        head = s.recv(4096)
    except TimeoutError:
        return None
    return int(head.split()[1]) if head else None


def _wait_for_event(d: RunningDaemon, cid: str, action: str) -> None:
    filters = urllib.parse.quote(json.dumps({"container": [cid], "event": [action]}))
    for _ in range(300):
        _st, _h, body = unix_request(d.sock, "GET", f"/events?since=0&until={time.time()}&filters={filters}")
        if body.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {action} event for {cid}")


def _log_from(d: RunningDaemon, offset: int) -> str:
    with open(d.root / "daemon.log", "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _log_size(d: RunningDaemon) -> int:
    return (d.root / "daemon.log").stat().st_size


# --- deep trees ---------------------------------------------------------------------------------


def test_a_deep_tree_is_measured_and_removed(daemon: RunningDaemon, name: str) -> None:
    p = daemon.docker("run", "--name", name, "busybox", "sh", "-c", DEEP_CMD, timeout=300)
    assert p.returncode == 0, p.stderr
    cid = _cid(daemon, name)
    p = daemon.docker("ps", "-as", "--filter", f"name={name}", "--format", "{{.Size}}")
    assert p.returncode == 0 and _out(p).startswith("4B (virtual "), p.stderr  # the two files "x\n"
    # as Docker counts it, the root file system is the image's layers plus the writable layer
    status, image = daemon.api("GET", "/images/busybox/json")
    assert status == 200 and isinstance(image, dict) and image["Size"] > 0, image
    status, info = daemon.api("GET", f"/containers/{name}/json?size=1")
    assert status == 200 and isinstance(info, dict), info
    assert (info["SizeRw"], info["SizeRootFs"]) == (4, image["Size"] + 4), info
    p = daemon.docker("rm", name)
    assert p.returncode == 0, p.stderr
    assert not (daemon.data_root / "containers" / cid).exists()
    assert os.listdir(daemon.data_root / "trash") == []


def test_run_rm_with_a_deep_tree_returns(daemon: RunningDaemon, name: str) -> None:
    p = daemon.docker("run", "--rm", "--name", name, "busybox", "sh", "-c", DEEP_CMD, timeout=300)
    assert p.returncode == 0, p.stderr
    assert daemon.docker("inspect", name).returncode == 1
    assert os.listdir(daemon.data_root / "trash") == []


def test_the_daemon_starts_with_deep_leftovers(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    d.kill()
    # a container directory whose record is gone (a crash during its removal) and a layer in the trash
    leftovers = [d.data_root / "containers" / ("0" * 64), d.data_root / "image" / "trash" / "deep-layer"]
    for top in leftovers:
        upper = top / "rw" / "upper"
        upper.mkdir(parents=True)
        (upper / "a").mkdir()
        (upper / "b").mkdir()
        make_chain(upper / "a", 1500)
        make_chain(upper / "b", 2100, name="dd")
    d.start()  # raises if the daemon dies at start
    assert d.docker("ps", "-a").returncode == 0
    for _ in range(600):
        if not any(top.exists() for top in leftovers) and os.listdir(d.data_root / "trash") == []:
            break
        time.sleep(0.1)
    assert not any(top.exists() for top in leftovers)
    assert os.listdir(d.data_root / "trash") == []
    assert "Traceback" not in (d.root / "daemon.log").read_text()


# --- a size walk over many files ----------------------------------------------------------------


@pytest.fixture
def tmpfs_daemon() -> Iterator[RunningDaemon]:
    """A daemon whose data root is a tmpfs: 300,000 files are made in seconds there, not minutes."""
    if not is_root():
        pytest.skip("needs root")
    tmp = Path(tempfile.mkdtemp(prefix="pyd-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0700", "tmpfs", str(tmp)], check=True)
    try:
        d = new_daemon(tmp)
        try:
            import_busybox(d)
            yield d
        finally:
            stop_daemon(d)
    finally:
        subprocess.run(["umount", "-l", str(tmp)], check=False)
        with contextlib.suppress(OSError):
            tmp.rmdir()


def test_ps_size_over_300000_files_does_not_stall_other_clients(tmpfs_daemon: RunningDaemon) -> None:
    d = tmpfs_daemon
    p = d.docker(
        "run", "--name", "many", "busybox", "sh", "-c", "mkdir /m && cd /m && seq 300000 | xargs touch",
        timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    cid = _cid(d, "many")
    offset = _log_size(d)
    listing: list[object] = []

    def ps_size() -> None:
        listing.append(unix_request(d.sock, "GET", "/containers/json?all=1&size=1", timeout=300))

    ps = threading.Thread(target=ps_size)
    ps.start()
    # once the walk has begun (the daemon says so at debug level; at most a second), ping it
    for _ in range(10):
        if f"measuring the size of container {cid[:12]}" in _log_from(d, offset):
            break
        time.sleep(0.1)
    answered_meanwhile = 0
    while ps.is_alive():
        status, _h, body = unix_request(d.sock, "GET", "/_ping", timeout=300)
        assert (status, body) == (200, b"OK")
        if ps.is_alive():
            answered_meanwhile += 1
        time.sleep(0.01)
    ps.join()
    status, _h, body = listing[0]  # type: ignore[misc]
    assert status == 200
    assert [c["SizeRw"] for c in json.loads(body)] == [0]
    # the walk takes seconds: other clients were answered all along, not once it was over
    assert answered_meanwhile >= 3


# --- clients that give up -----------------------------------------------------------------------


def test_an_abandoned_stop_does_not_block_rm_force(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = _out(d.docker("run", "-d", "busybox", "sleep", "300", check=True))
    stop = _send(d, "POST", f"/containers/{cid}/stop?t=-1")  # sleep as PID 1 ignores SIGTERM
    _wait_for_event(d, cid, "kill")
    stop.close()  # the client gave up
    p = d.docker("rm", "-f", cid, timeout=30)
    assert p.returncode == 0, p.stderr
    assert d.docker("inspect", cid).returncode == 1


def test_kill_pre_empts_a_pending_stop(daemon: RunningDaemon, name: str) -> None:
    cid = _out(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300", check=True))
    stop = _send(daemon, "POST", f"/containers/{cid}/stop?t=-1")
    try:
        _wait_for_event(daemon, cid, "kill")
        p = daemon.docker("kill", name, timeout=30)
        assert p.returncode == 0, p.stderr
        assert _status(stop, 30) == 204
    finally:
        stop.close()
    assert _out(daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)) == "exited 137"


def test_a_request_whose_client_left_does_not_run_later(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = _out(d.docker("run", "-d", "busybox", "sleep", "300", check=True))
    stop = _send(d, "POST", f"/containers/{cid}/stop?t=-1")
    _wait_for_event(d, cid, "kill")
    stop.close()
    restart = _send(d, "POST", f"/containers/{cid}/restart?t=0")
    restarted = _status(restart, 30)  # before: queued behind the stop's lock, forever
    restart.close()  # its client gives up (it is done already, or it waits in vain)
    assert d.docker("kill", cid, timeout=30).returncode == 0
    assert _out(d.docker("wait", cid, timeout=30)) == "137"
    # a restart that replayed now would have started the container again: then rm refuses
    p = d.docker("rm", cid, timeout=30)
    assert restarted == 204
    assert p.returncode == 0, p.stderr


def test_clients_that_leave_leave_no_traceback(daemon: RunningDaemon, name: str) -> None:
    offset = _log_size(daemon)
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    cid = _out(
        daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo hi; sleep 2", check=True)
    )
    followers = [
        subprocess.Popen([docker_cli(), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for args in (["logs", "-f", name], ["events", "--filter", f"container={cid}"])
    ]
    time.sleep(1)
    for f in followers:
        f.kill()
        f.wait()
    assert _out(daemon.docker("wait", name, timeout=30)) == "0"
    # `run -d` drops its wait request: the container's exit used to be written to a closed transport
    gone = [f"/containers/{cid}/wait: the client went away", "/logs: the", "/events: the client went away"]
    for _ in range(100):
        log = _log_from(daemon, offset)
        if "Traceback" in log or all(marker in log for marker in gone):
            break
        time.sleep(0.1)
    assert "Traceback" not in log, log
    assert all(marker in log for marker in gone), log


# --- execs nobody reads -------------------------------------------------------------------------


def _shim_pid(d: RunningDaemon, cid: str) -> int:
    return int(json.loads((d.exec_root / "containers" / cid / "state.json").read_text())["shim_pid"])


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _child_named(parent: int, comm: str) -> int:
    for _ in range(300):
        for task in os.listdir(f"/proc/{parent}/task"):
            with contextlib.suppress(OSError):
                for child in Path(f"/proc/{parent}/task/{task}/children").read_text().split():
                    if Path(f"/proc/{child}/comm").read_text().strip() == comm:
                        return int(child)
        time.sleep(0.1)
    raise AssertionError(f"no {comm} under {parent}")


def _bytes_written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar")


def test_an_exec_whose_client_left_blocks_instead_of_spinning(daemon: RunningDaemon, name: str) -> None:
    cid = _out(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300", check=True))
    shim = _shim_pid(daemon, cid)
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    cli = subprocess.Popen([docker_cli(), "exec", name, "yes"], env=env, stdout=subprocess.PIPE)
    yes = _child_named(shim, "yes")
    cli.kill()
    cli.wait()
    assert cli.stdout is not None
    cli.stdout.close()
    # As on a pipe nobody reads: `yes` ends up blocked in write, and stays so. Before, the shim read
    # and dropped its output at full speed, for ever.
    written = -1
    for _ in range(60):
        now = _bytes_written(yes)
        if now == written:
            break
        written = now
        time.sleep(0.5)
    ticks = _cpu_ticks(shim)
    time.sleep(2)
    assert _bytes_written(yes) == written
    assert "pipe_write" in Path(f"/proc/{yes}/wchan").read_text()
    assert _cpu_ticks(shim) - ticks < 50  # a busy shim takes ~100 ticks a second


def test_a_detached_exec_costs_the_shim_nothing(daemon: RunningDaemon, name: str) -> None:
    cid = _out(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300", check=True))
    shim = _shim_pid(daemon, cid)
    daemon.docker("exec", "-d", name, "yes", check=True)
    yes = _child_named(shim, "yes")
    ticks = _cpu_ticks(shim)
    time.sleep(2)
    assert _cpu_ticks(shim) - ticks < 50  # its output goes to /dev/null, not through the shim
    assert Path(f"/proc/{yes}/fd/1").resolve() == Path("/dev/null")


# --- a removal that fails -----------------------------------------------------------------------


def test_a_failed_removal_answers_its_waiters(daemon: RunningDaemon, name: str) -> None:
    cid = _out(daemon.docker("run", "-d", "--rm", "--name", name, "busybox", "sleep", "300", check=True))
    cdir = daemon.data_root / "containers" / cid
    waiter = _send(daemon, "POST", f"/containers/{cid}/wait?condition=removed")
    subprocess.run(["chattr", "+i", str(cdir)], check=True)  # cannot be renamed nor emptied
    try:
        waiter.settimeout(30)
        body = waiter.recv(4096)
        assert body.startswith(b"HTTP/1.1 200 "), body  # the headers come at once
        assert daemon.docker("kill", name, timeout=30).returncode == 0
        while b"StatusCode" not in body:
            chunk = waiter.recv(4096)
            assert chunk, body
            body += chunk
        answer = json.loads(body[body.index(b"{") : body.rindex(b"}") + 1])
        assert answer["StatusCode"] == 137
        assert answer["Error"]["Message"].startswith("unable to remove filesystem: ")
        assert _out(daemon.docker("inspect", "-f", "{{.State.Status}}", name)) == "dead"
        p = daemon.docker("rm", name)
        assert p.returncode == 1
        assert f'cannot remove container "{name}": unable to remove filesystem' in p.stderr.decode()
    finally:
        waiter.close()
        subprocess.run(["chattr", "-i", str(cdir)], check=True)
    assert daemon.docker("rm", name).returncode == 0  # a dead container can be removed once it can go
    assert not cdir.exists()
