"""Live restore: containers keep running (and their exits are recorded) while the daemon is down."""

import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import RunningDaemon, docker_cli, pids_holding

pytestmark = [pytest.mark.root, pytest.mark.integration]

TICKER = "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"


def run_detached(d: RunningDaemon, *args: str) -> str:
    out = d.docker("run", "-d", *args)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().strip()


def inspect_state(d: RunningDaemon, cid: str) -> dict[str, object]:
    status, data = d.api("GET", f"/containers/{cid}/json")
    assert status == 200, data
    assert isinstance(data, dict)
    return dict(data["State"])


def wait_for(cond: object, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ticks(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^tick(\d+)$", text, re.M)]


def parse_ts(ts: str) -> float:
    """RFC 3339 with nanoseconds (as `docker logs -t` prints) -> epoch seconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", ts)
    assert m, ts
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + float("0." + (m.group(2) or "0"))


def timed_ticks(d: RunningDaemon, cid: str) -> list[tuple[float, int]]:
    out = d.docker("logs", "-t", cid)
    assert out.returncode == 0, out.stderr.decode()
    lines = []
    for line in out.stdout.decode().splitlines():
        m = re.fullmatch(r"(\S+) tick(\d+)", line)
        if m:
            lines.append((parse_ts(m.group(1)), int(m.group(2))))
    return lines


def shim_pids(d: RunningDaemon, cid: str) -> list[int]:
    """Processes holding a file of the container's exec dir open: its shim (however it was started)."""
    return pids_holding(str(d.exec_root / "containers" / cid))


def test_container_survives_sigkill_of_daemon(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = run_detached(d, "busybox", "sh", "-c", TICKER)
    wait_for(lambda: len(ticks(d.docker("logs", cid).stdout.decode())) >= 3, what="first ticks")
    pid = inspect_state(d, cid)["Pid"]
    assert isinstance(pid, int) and pid > 0

    killed_at = time.time()
    d.kill(signal.SIGKILL)
    time.sleep(1.5)
    restarted_at = time.time()
    d.start()

    state = inspect_state(d, cid)
    assert state["Running"] is True, state
    assert state["Status"] == "running", state
    assert state["Pid"] == pid, state
    assert Path(f"/proc/{pid}").exists(), f"container process {pid} is gone"

    # the shim kept logging while nobody was listening: consecutive ticks across the down window
    logged = timed_ticks(d, cid)
    numbers = [n for _t, n in logged]
    assert numbers == list(range(len(numbers))), numbers
    during = [n for t, n in logged if killed_at + 0.1 < t < restarted_at - 0.1]
    assert len(during) >= 4, f"only {during} logged while the daemon was down ({killed_at}..{restarted_at})"

    out = d.docker("exec", cid, "echo", "exec-ok")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "exec-ok"

    last_logged = max(ticks(d.docker("logs", cid).stdout.decode()))
    env = {"DOCKER_HOST": d.host, "DOCKER_CLI_HINTS": "false", "PATH": "/usr/bin:/bin"}
    attach = subprocess.Popen(
        [docker_cli(), "attach", "--no-stdin", cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    time.sleep(1.2)
    attach.kill()  # SIGKILL: the CLI cannot proxy it to the container
    attached_out, attached_err = attach.communicate(timeout=10)
    seen = ticks(attached_out.decode())
    assert seen, f"attach received nothing: {attached_out!r} {attached_err!r}"
    assert max(seen) > last_logged, (seen, last_logged)
    assert seen == list(range(seen[0], seen[0] + len(seen))), seen

    started = time.time()
    out = d.docker("stop", "-t", "1", cid)
    assert out.returncode == 0, out.stderr.decode()
    assert time.time() - started < 10
    state = inspect_state(d, cid)
    assert state["Running"] is False, state
    assert state["ExitCode"] == 137, state  # sh as PID 1 ignores SIGTERM: killed after 1 s
    assert not Path(f"/proc/{pid}").exists()
    wait_for(lambda: not shim_pids(d, cid), 5, "the shim to exit")


def test_exit_while_daemon_down_is_recorded(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = run_detached(d, "busybox", "sh", "-c", "sleep 1; exit 7")
    assert inspect_state(d, cid)["Running"] is True
    d.kill(signal.SIGKILL)
    time.sleep(1.8)
    d.start()

    state = inspect_state(d, cid)
    assert state["Running"] is False, state
    assert state["Status"] == "exited", state
    assert state["ExitCode"] == 7, state
    assert state["Pid"] == 0, state
    assert state["FinishedAt"] != "0001-01-01T00:00:00Z", state
    out = d.docker("wait", cid)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "7"
    assert not shim_pids(d, cid)
    assert not (d.exec_root / "containers" / cid).exists()


def test_autoremove_container_exiting_while_daemon_down_is_removed(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = run_detached(d, "--rm", "busybox", "sh", "-c", "sleep 1; exit 3")
    d.kill(signal.SIGKILL)
    time.sleep(1.8)
    d.start()

    def gone() -> bool:
        return d.api("GET", f"/containers/{cid}/json")[0] == 404

    wait_for(gone, 5, "the --rm container to be removed")
    status, body = d.api("GET", f"/containers/{cid}/json")
    assert status == 404 and isinstance(body, dict) and body["message"] == f"No such container: {cid}", body
    assert not (d.data_root / "containers" / cid).exists()
    assert not (d.exec_root / "containers" / cid).exists()
    assert not shim_pids(d, cid)


def test_container_survives_graceful_daemon_restart(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    cid = run_detached(d, "busybox", "sh", "-c", TICKER)
    wait_for(lambda: len(ticks(d.docker("logs", cid).stdout.decode())) >= 2, what="first ticks")
    pid = inspect_state(d, cid)["Pid"]

    d.kill(signal.SIGTERM)
    assert d.proc.returncode == 0, "the daemon did not exit cleanly on SIGTERM"
    time.sleep(0.6)
    d.start()

    state = inspect_state(d, cid)
    assert state["Running"] is True, state
    assert state["Pid"] == pid, state
    assert Path(f"/proc/{pid}").exists()
    numbers = ticks(d.docker("logs", cid).stdout.decode())
    assert numbers == list(range(len(numbers))), numbers
    before = len(numbers)
    wait_for(lambda: len(ticks(d.docker("logs", cid).stdout.decode())) > before + 1, 5, "more ticks")

    out = d.docker("kill", cid)
    assert out.returncode == 0, out.stderr.decode()
    out = d.docker("wait", cid)
    assert out.stdout.decode().strip() == "137", out
