"""The systemd units in systemd/: socket activation that hands the API socket to the daemon."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = UNITS / "pydockerd.service"
SOCKET = UNITS / "pydockerd.socket"


def load(path: Path) -> configparser.ConfigParser:
    # strict=False: systemd allows a key more than once (ExecStart= resets, then sets).
    # No interpolation: % and $ belong to systemd. optionxform=str: keys keep their case.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def exec_start() -> list[str]:
    return shlex.split(load(SERVICE)["Service"]["ExecStart"])


def test_service_starts_pydockerd_on_the_inherited_socket() -> None:
    argv = exec_start()
    assert Path(argv[0]).name == "pydockerd"
    assert Path(argv[0]).is_absolute()  # systemd needs an absolute path (or one it can search)
    hosts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-H", "--host")]
    assert hosts == ["fd://"]


def test_service_leaves_containers_alone() -> None:
    service = load(SERVICE)["Service"]
    assert service["Delegate"] == "yes"
    assert service["KillMode"] == "process"
    assert service["Type"] == "simple"
    # infinity fails on hosts where it is above fs.nr_open; the daemon sets its own soft limit.
    assert service.get("LimitNOFILE", "") != "infinity"


def test_socket_listens_where_the_daemon_listens_by_default() -> None:
    socket = load(SOCKET)["Socket"]
    assert socket["ListenStream"] == "/run/pydockerd.sock"
    assert socket["SocketMode"] == "0660"


def test_socket_activates_the_service() -> None:
    socket, service = load(SOCKET), load(SERVICE)
    # A socket unit starts the service of the same name unless Service= names another one.
    target = socket["Socket"].get("Service", f"{SOCKET.stem}.service")
    assert target == SERVICE.name
    assert SOCKET.stem == SERVICE.stem
    assert SOCKET.name in service["Unit"]["Requires"].split()
    assert SOCKET.name in service["Unit"]["After"].split()
    assert socket["Install"]["WantedBy"] == "sockets.target"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists: point it at an executable of our own.
    binary = tmp_path / "bin" / "pydockerd"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    shutil.copy(SOCKET, tmp_path / SOCKET.name)
    text = SERVICE.read_text().replace(exec_start()[0], str(binary))
    (tmp_path / SERVICE.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / SOCKET.name), str(tmp_path / SERVICE.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "pydockerd" not in result.stderr, result.stderr
