"""Our own CLI, pyd, against a real pydockerd."""

import os
import re
import subprocess
import uuid

import pytest

from tests.conftest import REPO, RunningDaemon

pytestmark = [pytest.mark.root, pytest.mark.integration]

PYD = str(REPO / ".venv" / "bin" / "pyd")


def pyd(
    d: RunningDaemon, *args: str, input: bytes | None = None, env_host: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    if env_host:
        env["DOCKER_HOST"] = d.host
        cmd = [PYD, *args]
    else:
        cmd = [PYD, "-H", d.host, *args]
    return subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=timeout)


def out(p: subprocess.CompletedProcess[bytes]) -> str:
    return p.stdout.decode().strip()


def uniq() -> str:
    return f"pyd-{uuid.uuid4().hex[:10]}"


def test_run_rm_echo(daemon: RunningDaemon) -> None:
    name = uniq()
    p = pyd(daemon, "run", "--rm", "--name", name, "busybox", "echo", "hi")
    assert (p.returncode, p.stdout) == (0, b"hi\n"), p.stderr
    # --rm really removed it
    assert name not in out(daemon.docker("ps", "-a", "--format", "{{.Names}}")).splitlines()


def test_run_with_docker_host_env(daemon: RunningDaemon) -> None:
    p = pyd(daemon, "run", "--rm", "busybox", "sh", "-c", "echo via-env", env_host=True)
    assert (p.returncode, out(p)) == (0, "via-env"), p.stderr


def test_run_exit_codes(daemon: RunningDaemon) -> None:
    assert pyd(daemon, "run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    p = pyd(daemon, "run", "--rm", "busybox", "/no/such/binary")
    assert p.returncode == 127
    assert b"no such file or directory" in p.stderr
    assert pyd(daemon, "run", "--rm", "busybox", "/etc/passwd").returncode == 126


def test_run_stdin(daemon: RunningDaemon) -> None:
    p = pyd(daemon, "run", "-i", "--rm", "busybox", "cat", input=b"piped\n")
    assert (p.returncode, p.stdout) == (0, b"piped\n"), p.stderr


def test_detached_ps_logs_exec_inspect_stop_rm(daemon: RunningDaemon, names: list[str]) -> None:
    name = uniq()
    names.append(name)
    p = pyd(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo hello; exec sleep 300")
    assert p.returncode == 0, p.stderr
    cid = out(p)
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert out(daemon.docker("inspect", "-f", "{{.Id}} {{.State.Running}}", name)) == f"{cid} true"

    lines = out(pyd(daemon, "ps")).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    row = next(line for line in lines[1:] if line.endswith(name))
    assert row.startswith(cid[:12])
    assert "busybox" in row and "Up " in row

    assert pyd(daemon, "logs", name).stdout == b"hello\n"
    p = pyd(daemon, "exec", name, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 4")
    assert (p.returncode, out(p)) == (4, "sleep 300"), p.stderr
    assert out(pyd(daemon, "inspect", "-f", "{{.State.Running}}", name)) == "true"

    p = pyd(daemon, "stop", "-t", "1", name)
    assert (p.returncode, out(p)) == (0, name), p.stderr
    assert out(pyd(daemon, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name)) == "false 137"
    assert name not in out(pyd(daemon, "ps"))
    assert name in out(pyd(daemon, "ps", "-a"))
    p = pyd(daemon, "rm", name)
    assert (p.returncode, out(p)) == (0, name), p.stderr
    assert daemon.docker("container", "inspect", name).returncode == 1


def test_images_lists_busybox(daemon: RunningDaemon) -> None:
    lines = out(pyd(daemon, "images")).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    short = out(daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox")).removeprefix("sha256:")[:12]
    assert any(re.split(r"\s+", line)[:3] == ["busybox", "latest", short] for line in lines[1:]), lines


def test_version(daemon: RunningDaemon) -> None:
    p = pyd(daemon, "version")
    assert p.returncode == 0, p.stderr
    text = out(p)
    assert text.startswith("Client:")
    assert "Server:" in text
    api = daemon.api("GET", "/version")[1]
    assert isinstance(api, dict)
    assert re.search(rf"API version:\s+{re.escape(api['ApiVersion'])}", text.split("Server:")[1])


def test_no_such_container_error(daemon: RunningDaemon) -> None:
    missing = uniq()
    for cmd in ("logs", "stop", "rm"):
        p = pyd(daemon, cmd, missing)
        assert p.returncode == 1, cmd
        assert p.stderr.decode().strip() == f"Error response from daemon: No such container: {missing}", cmd
