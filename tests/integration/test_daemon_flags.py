"""The daemon's own flags: systemd socket activation, PID file, socket group and mode, config file."""

import grp
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, unix_request

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pydf-"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _wait_ping(sock: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        assert proc.poll() is None, "the daemon exited"
        try:
            if unix_request(sock, "GET", "/_ping", timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("no answer on the socket")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)


def test_socket_passed_by_systemd_is_served(short_tmp: Path) -> None:
    path = str(short_tmp / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    fd = listener.fileno()
    # systemd passes the socket as fd 3 and names the receiving PID: exec keeps the shell's PID
    script = (
        f"exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec {sys.executable} -m daemon.cli -H fd:// "
        f"--data-root {short_tmp}/data --exec-root {short_tmp}/exec --pidfile {short_tmp}/d.pid "
        "--bridge none --iptables=false"  # this test's daemon leaves no bridge or chain behind
    )
    proc = subprocess.Popen(["bash", "-c", script], cwd=REPO, pass_fds=[fd], start_new_session=True)
    listener.close()
    try:
        _wait_ping(path, proc)
        status, _headers, body = unix_request(path, "GET", "/v1.47/version")
        assert status == 200 and json.loads(body)["ApiVersion"] == "1.47"
        assert Path(f"{short_tmp}/d.pid").read_text().strip() == str(proc.pid)
    finally:
        _stop(proc)
    assert not Path(f"{short_tmp}/d.pid").exists(), "the PID file is removed at exit"


@pytest.fixture
def socket_group() -> Iterator[str]:
    """A group of the test's own: a socket made by root belongs to group 0 anyway, so that proves nothing."""
    name = f"pydt{os.getpid()}"
    subprocess.run(["groupadd", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], check=False)


def test_config_file_group_and_second_daemon(short_tmp: Path, socket_group: str) -> None:
    sock = str(short_tmp / "cfg.sock")
    config = short_tmp / "daemon.json"
    config.write_text(
        json.dumps(
            {
                "hosts": [f"unix://{sock}"],
                "data-root": str(short_tmp / "data"),
                "exec-root": str(short_tmp / "exec"),
                "pidfile": str(short_tmp / "d.pid"),
                "group": socket_group,
                "log-level": "warn",
                "bridge": "none",
                "iptables": False,
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "--config-file", str(config)], cwd=REPO, start_new_session=True
    )
    try:
        _wait_ping(sock, proc)
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == grp.getgrnam(socket_group).gr_gid != os.getgid()
        status, _, body = unix_request(sock, "GET", "/info")
        info = json.loads(body)
        assert status == 200 and info["DockerRootDir"] == str(short_tmp / "data")
        assert (short_tmp / "data" / "containers").is_dir()
    finally:
        _stop(proc)


def test_flag_given_twice_is_refused(short_tmp: Path) -> None:
    config = short_tmp / "daemon.json"
    config.write_text(json.dumps({"data-root": str(short_tmp / "a")}))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon.cli",
            "--config-file",
            str(config),
            "--data-root",
            str(short_tmp / "b"),
        ],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert out.returncode != 0 and b"both as flags and in the config file" in out.stderr
