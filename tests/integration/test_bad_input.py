"""Bad input gets Docker's error, and a failed create or start leaves nothing behind."""

import glob
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from daemon.runtime.launcher import SPARE_NAME
from tests.conftest import RunningDaemon, pids_holding

pytestmark = [pytest.mark.root, pytest.mark.integration]

Traces = dict[str, set[str]]


# --- what a container can leave behind ---------------------------------------------------------


def _listdir(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return set()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _ppid(pid: str) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def shim_processes(d: RunningDaemon) -> set[str]:
    """Processes naming the exec root other than the daemon and its launcher (a shim, started either way)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == d.proc.pid or str(d.exec_root) not in _cmdline(pid):
            continue
        if "daemon.runtime.launcher" in _cmdline(pid) and _ppid(pid) == d.proc.pid:
            continue  # the daemon's warm launcher, not a shim
        if _comm(pid) == SPARE_NAME:
            continue  # the launcher's idle spare, waiting to become the next shim
        found.add(f"{pid} {_cmdline(pid)}")
    return found


def _processes_in_exec_dir(d: RunningDaemon, cid: str) -> set[str]:
    """Processes holding a file of this container's exec dir open (a shim has its shim.log)."""
    return {f"{pid} {_cmdline(str(pid))}" for pid in pids_holding(str(d.exec_root / "containers" / cid))}


def cgroup_dirs(d: RunningDaemon) -> set[str]:
    """Every cgroup directory under the daemon's parent (v1: one per hierarchy; v2: one tree)."""
    found = set()
    for parent in [
        *glob.glob(f"/sys/fs/cgroup/*/{d.cgroup_parent}"),
        *glob.glob(f"/sys/fs/cgroup/{d.cgroup_parent}"),
    ]:
        for dirpath, dirnames, _files in os.walk(parent):
            found.update(os.path.join(dirpath, n) for n in dirnames)
    return found


def mounts(d: RunningDaemon) -> set[str]:
    """Mounts naming the daemon's roots in every mount namespace on the host, each line prefixed by its
    namespace: a container's mounts live in its own namespace, not in ours, for as long as any process
    (its shim, its processes) keeps that namespace alive."""
    roots = re.compile("|".join(re.escape(str(r)) for r in (d.data_root, d.exec_root)) + r"(?=[/,: ]|$)")
    seen, found = set(), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ns = os.readlink(f"/proc/{pid}/ns/mnt")
            if ns in seen:
                continue
            lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        except OSError:
            continue  # gone meanwhile
        seen.add(ns)
        found.update(f"{ns} {line}" for line in lines if roots.search(line))
    return found


def traces(d: RunningDaemon) -> Traces:
    return {
        "container records": _listdir(d.data_root / "containers"),
        "exec dirs": _listdir(d.exec_root / "containers"),
        "shims": shim_processes(d),
        "mounts": mounts(d),
        "cgroups": cgroup_dirs(d),
    }


def assert_no_new_traces(d: RunningDaemon, before: Traces, timeout: float = 3.0) -> None:
    deadline = time.time() + timeout
    while True:
        after = traces(d)
        new = {k: after[k] - before[k] for k in after if after[k] - before[k]}
        if not new or time.time() > deadline:
            break
        time.sleep(0.1)
    assert not new, f"left behind: {new}"


def assert_no_traces_of(d: RunningDaemon, cid: str, timeout: float = 3.0) -> None:
    """Nothing of the container (once its shim has had a moment to exit): no shim, exec dir (with its
    rootfs), mount in any mount namespace, cgroup."""

    def left() -> list[str]:
        found = []
        if (d.exec_root / "containers" / cid).exists():
            found.append("exec dir")
        found += [f"shim {s}" for s in shim_processes(d) if cid in s]
        found += [f"process holding the exec dir: {p}" for p in _processes_in_exec_dir(d, cid)]
        found += [f"mount {m}" for m in mounts(d) if cid in m]
        found += [f"cgroup {c}" for c in cgroup_dirs(d) if cid in c]
        return found

    deadline = time.time() + timeout
    while left() and time.time() < deadline:
        time.sleep(0.1)
    assert not left(), f"left behind by {cid[:12]}: {left()}"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def d(daemon: RunningDaemon) -> Iterator[RunningDaemon]:
    """The session daemon; the containers a test made are force-removed afterwards."""
    status, listing = daemon.api("GET", "/containers/json?all=1")
    assert status == 200
    existing = {c["Id"] for c in listing}  # type: ignore[union-attr]
    yield daemon
    status, listing = daemon.api("GET", "/containers/json?all=1")
    for c in listing:  # type: ignore[union-attr]
        if c["Id"] not in existing:
            daemon.api("DELETE", f"/containers/{c['Id']}?force=1")


def message(body: object) -> str:
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    return str(body["message"])


def create(d: RunningDaemon, body: dict[str, object], name: str | None = None) -> tuple[int, object]:
    path = "/containers/create" + (f"?name={quote(name)}" if name is not None else "")
    return d.api("POST", path, body)


def create_ok(d: RunningDaemon, body: dict[str, object], name: str | None = None) -> str:
    status, out = create(d, body, name)
    assert status == 201, out
    assert isinstance(out, dict)
    return str(out["Id"])


def inspect(d: RunningDaemon, cid: str) -> dict[str, object]:
    status, data = d.api("GET", f"/containers/{cid}/json")
    assert status == 200, data
    assert isinstance(data, dict)
    return data


# --- create: wrong input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": "abc"}}, "Memory"),
        ({"Image": "busybox", "Cmd": ["true"], "Env": "x"}, "Env"),
        ({"Image": "busybox", "Cmd": 5}, "Cmd"),
    ],
    ids=["memory-string", "env-string", "cmd-number"],
)
def test_create_with_wrong_type_is_400_naming_the_field(
    d: RunningDaemon, body: dict[str, object], field: str
) -> None:
    before = traces(d)
    status, out = create(d, body)
    assert status == 400, out
    assert field in message(out)
    assert_no_new_traces(d, before)


def test_create_with_invalid_json_is_400(d: RunningDaemon) -> None:
    before = traces(d)
    status, out = d.api(
        "POST",
        "/containers/create",
        raw=b'{"Image": "busybox", "Cmd": [',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400, out
    assert message(out)
    assert_no_new_traces(d, before)


def test_create_with_missing_image_is_404_and_does_not_reserve_the_name(d: RunningDaemon) -> None:
    before = traces(d)
    status, out = create(d, {"Image": "nosuch", "Cmd": ["true"]}, name="bad-input-noimage")
    assert status == 404, out
    assert message(out) == "No such image: nosuch:latest"
    assert_no_new_traces(d, before)
    create_ok(d, {"Image": "busybox", "Cmd": ["true"]}, name="bad-input-noimage")


def test_create_with_taken_name_is_409(d: RunningDaemon) -> None:
    cid = create_ok(d, {"Image": "busybox", "Cmd": ["true"]}, name="bad-input-taken")
    before = traces(d)
    status, out = create(d, {"Image": "busybox", "Cmd": ["true"]}, name="bad-input-taken")
    assert status == 409, out
    assert message(out) == (
        f'Conflict. The container name "/bad-input-taken" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    assert_no_new_traces(d, before)


def test_create_with_memory_below_minimum_is_400(d: RunningDaemon) -> None:
    before = traces(d)
    status, out = create(d, {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 4 * 1024 * 1024}})
    assert status == 400, out
    assert "Minimum memory limit allowed is 6MB" in message(out)
    assert_no_new_traces(d, before)


@pytest.mark.parametrize("name", ["bad name", "-leading-dash", "a/b", "ü"])
def test_create_with_invalid_name_is_400(d: RunningDaemon, name: str) -> None:
    before = traces(d)
    status, out = create(d, {"Image": "busybox", "Cmd": ["true"]}, name=name)
    assert status == 400, out
    assert f"Invalid container name ({name})" in message(out)
    assert_no_new_traces(d, before)


def test_cli_run_with_memory_below_minimum_exits_125(d: RunningDaemon) -> None:
    before = traces(d)
    out = d.docker("run", "--rm", "-m", "4m", "busybox", "true")
    assert out.returncode == 125, out
    assert "Minimum memory limit allowed is 6MB" in out.stderr.decode()
    assert_no_new_traces(d, before)


# --- start: a process that cannot be executed --------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "code", "words"),
    [(["/no/such/binary"], 127, "no such file or directory"), (["/etc/passwd"], 126, "permission denied")],
    ids=["missing", "not-executable"],
)
def test_start_of_unrunnable_command_fails_cleanly(
    d: RunningDaemon, cmd: list[str], code: int, words: str
) -> None:
    before = traces(d)
    cid = create_ok(d, {"Image": "busybox", "Cmd": cmd})
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert 400 <= status < 600, (status, out)
    assert words in message(out)
    state = inspect(d, cid)["State"]
    assert isinstance(state, dict)
    assert state["ExitCode"] == code, state
    assert state["Running"] is False, state
    assert state["Pid"] == 0, state
    assert words in state["Error"], state
    assert_no_traces_of(d, cid)
    before["container records"].add(cid)
    assert_no_new_traces(d, before)


@pytest.mark.parametrize(
    ("cmd", "words"),
    [(["/no/such/binary"], "no such file or directory"), (["/etc/passwd"], "permission denied")],
    ids=["missing", "not-executable"],
)
def test_start_of_unrunnable_autoremove_container_removes_it(
    d: RunningDaemon, cmd: list[str], words: str
) -> None:
    before = traces(d)
    cid = create_ok(d, {"Image": "busybox", "Cmd": cmd, "HostConfig": {"AutoRemove": True}})
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert 400 <= status < 600, (status, out)
    assert words in message(out)
    deadline = time.time() + 5
    while d.api("GET", f"/containers/{cid}/json")[0] != 404 and time.time() < deadline:
        time.sleep(0.05)
    assert d.api("GET", f"/containers/{cid}/json")[0] == 404
    assert_no_traces_of(d, cid)
    assert_no_new_traces(d, before)


def test_cli_run_of_missing_binary_exits_127_and_leaves_nothing(d: RunningDaemon) -> None:
    before = traces(d)
    out = d.docker("run", "--rm", "busybox", "/no/such/binary")
    assert out.returncode == 127, out
    assert "no such file or directory" in out.stderr.decode()
    assert_no_new_traces(d, before)


# --- unknown containers and wrong states -------------------------------------------------------

UNKNOWN = [
    ("POST", "/containers/nosuch/start", None),
    ("POST", "/containers/nosuch/stop", None),
    ("POST", "/containers/nosuch/restart", None),
    ("POST", "/containers/nosuch/kill", None),
    ("POST", "/containers/nosuch/wait", None),
    ("GET", "/containers/nosuch/logs?stdout=1&stderr=1", None),
    ("GET", "/containers/nosuch/json", None),
    ("GET", "/containers/nosuch/top", None),
    ("POST", "/containers/nosuch/rename?name=other", None),
    ("POST", "/containers/nosuch/pause", None),
    ("POST", "/containers/nosuch/unpause", None),
    ("POST", "/containers/nosuch/update", {"Memory": 0}),
    ("POST", "/containers/nosuch/resize?h=10&w=10", None),
    ("DELETE", "/containers/nosuch", None),
    ("DELETE", "/containers/nosuch?force=1", None),
    ("POST", "/containers/nosuch/exec", {"Cmd": ["true"]}),
    ("POST", "/containers/nosuch/attach?stream=1&stdout=1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN, ids=[f"{m} {p}" for m, p, _ in UNKNOWN])
def test_unknown_container_is_404(d: RunningDaemon, method: str, path: str, body: object) -> None:
    status, out = d.api(method, path, body)
    assert status == 404, out
    assert message(out) == "No such container: nosuch"
    status, out = d.api(method, "/v1.47" + path, body)
    assert status == 404, out


def test_start_twice_is_304(d: RunningDaemon) -> None:
    cid = create_ok(d, {"Image": "busybox", "Cmd": ["sleep", "30"]})
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert status == 204, out
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert status == 304, out
    assert inspect(d, cid)["State"]["Running"] is True  # type: ignore[index]


def test_remove_running_without_force_is_409(d: RunningDaemon) -> None:
    cid = create_ok(d, {"Image": "busybox", "Cmd": ["sleep", "30"]})
    assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    # the trace checks see a running container (so their silence elsewhere means something)
    assert _processes_in_exec_dir(d, cid), "no shim found for a running container"
    assert [c for c in cgroup_dirs(d) if cid in c], "no cgroup found for a running container"
    assert [m for m in mounts(d) if cid in m], "no mount found for a running container"
    status, out = d.api("DELETE", f"/containers/{cid}")
    assert status == 409, out
    assert message(out) == (
        f"You cannot remove a running container {cid}. "
        "Stop the container before attempting removal or force remove"
    )
    assert inspect(d, cid)["State"]["Running"] is True  # type: ignore[index]
    status, out = d.api("DELETE", f"/containers/{cid}?force=1")
    assert status == 204, out
    assert_no_traces_of(d, cid)


def test_pause_and_exec_on_stopped_container_are_409(d: RunningDaemon) -> None:
    cid = create_ok(d, {"Image": "busybox", "Cmd": ["true"]})
    status, out = d.api("POST", f"/containers/{cid}/pause")
    assert status == 409, out  # created, never started
    assert "is not running" in message(out)
    assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    assert d.api("POST", f"/containers/{cid}/wait")[0] == 200
    status, out = d.api("POST", f"/containers/{cid}/pause")
    assert status == 409, out
    assert message(out) == f"Container {cid} is not running"
    status, out = d.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"], "AttachStdout": True})
    assert status == 409, out
    assert message(out) == f"container {cid} is not running"
    out2 = d.docker("exec", cid, "true")
    assert out2.returncode != 0
    assert "is not running" in out2.stderr.decode()
