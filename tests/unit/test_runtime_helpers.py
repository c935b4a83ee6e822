"""Unit tests of the runtime's pure helpers: users, capabilities, specs, log files."""

import errno
import json
import re
from pathlib import Path

import pytest

from daemon.runtime import caps
from daemon.runtime.logfile import JsonLogWriter
from daemon.runtime.spec import BindMount, ContainerSpec, ProcessSpec
from daemon.runtime.users import find_executable, resolve_user


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww:x:33:\nextra:x:500:www\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/tool").write_text("#!/bin/sh\n")
    (tmp_path / "bin/tool").chmod(0o755)
    (tmp_path / "bin/data").write_text("x")
    return tmp_path


def test_resolve_user_by_name_number_and_group(root: Path) -> None:
    www = resolve_user("www", str(root))
    assert (www.uid, www.gid, www.home, www.groups) == (33, 33, "/var/www", [33, 500])
    assert (resolve_user("1000:1000", str(root)).uid, resolve_user("1000:1000", str(root)).gid) == (
        1000,
        1000,
    )
    assert resolve_user("1000", str(root)).gid == 0
    assert resolve_user("www:extra", str(root)).gid == 500
    assert resolve_user("", str(root)).uid == 0
    with pytest.raises(ValueError, match="unable to find user nosuch"):
        resolve_user("nosuch", str(root))


def test_find_executable_words_map_to_126_and_127(root: Path) -> None:
    env = ["PATH=/usr/bin:/bin"]
    assert find_executable("tool", env, str(root)) == "/bin/tool"
    with pytest.raises(FileNotFoundError, match="executable file not found in \\$PATH"):
        find_executable("missing", env, str(root))
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        find_executable("/no/such", env, str(root))
    with pytest.raises(PermissionError, match="permission denied"):
        find_executable("/bin/data", env, str(root))


def test_caps_default_add_drop_and_privileged() -> None:
    assert set(caps.resolve([], [], False)) == set(caps.DEFAULT_CAPS)
    with_admin = caps.resolve(["NET_ADMIN"], ["chown", "CAP_KILL"], False)
    assert "NET_ADMIN" in with_admin and "CHOWN" not in with_admin and "KILL" not in with_admin
    assert caps.resolve(["NET_BIND_SERVICE"], ["ALL"], False) == ["NET_BIND_SERVICE"]
    assert "SYS_ADMIN" in caps.resolve([], [], True)
    with pytest.raises(ValueError, match="unknown capability"):
        caps.resolve(["NOPE"], [], False)


def test_spec_round_trips_through_json() -> None:
    spec = ContainerSpec(
        id="x",
        process=ProcessSpec(args=["sh"], env=["A=1"], tty=True),
        lower_dirs=["/l"],
        upper_dir="/u",
        work_dir="/w",
        mounts=[BindMount("/a", "/b", True)],
        tty_size=(24, 80),
    )
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_json_log_writer_splits_lines_and_keeps_partial(tmp_path: Path) -> None:
    path = tmp_path / "log"
    w = JsonLogWriter(str(path))
    w.write("stdout", b"one\ntw")
    w.write("stdout", b"o\n")
    w.write("stderr", b"tail")
    w.close()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "one\n"),
        ("stdout", "two\n"),
        ("stderr", "tail"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", e["time"]) for e in entries)


def test_backing_filesystem_names_the_mount_below_a_path(tmp_path: Path) -> None:
    from daemon.system import backing_filesystem

    assert backing_filesystem(Path("/proc/self")) == "proc"
    mounts = {line.split()[1]: line.split()[2] for line in Path("/proc/self/mounts").read_text().splitlines()}
    assert backing_filesystem(Path("/")) == {"ext4": "extfs"}.get(mounts["/"], mounts["/"])


async def test_events_published_during_a_replay_are_not_lost() -> None:
    import asyncio

    from daemon.events.bus import EventBus

    bus = EventBus()
    for i in range(3):
        bus.publish("container", "create", f"old{i}")
    got: list[str] = []

    async def consume() -> None:
        async for event in bus.subscribe(0, None, {}):
            got.append(event["Actor"]["ID"])
            await asyncio.sleep(0.01)  # a slow client: more events arrive while it replays
            if len(got) == 5:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.005)
    bus.publish("container", "start", "during")
    await asyncio.sleep(0.05)
    bus.publish("container", "die", "after")
    await asyncio.wait_for(task, 5)
    assert got == ["old0", "old1", "old2", "during", "after"]


def test_rootfs_errors_keep_the_users_paths_and_drop_the_daemons() -> None:
    from daemon.runtime.rootfs import StartError, failing, mounting

    with pytest.raises(StartError) as e, mounting("/host/src", "/data"):
        raise OSError(errno.ENOTDIR, "mount /proc/self/fd/7: Not a directory")  # as linux.mount says it
    assert str(e.value) == (
        'error during container init: error mounting "/host/src" to rootfs at "/data": not a directory'
    )
    with pytest.raises(StartError) as e, mounting("/host/src", "/data/x"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/data")  # safepath's kind
    assert str(e.value).endswith('at "/data/x": /data: no such file or directory')
    with pytest.raises(StartError) as e, failing("error preparing rootfs", named=False):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/var/lib/pydockerd/x")
    assert str(e.value) == "error during container init: error preparing rootfs: no such file or directory"
