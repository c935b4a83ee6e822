"""Hostile requests and connections against a real daemon: 400s instead of 500s, 405, timeouts that close
idle and half-sent connections but never a long poll or a hijacked stream, the connection cap, and a
descriptor flood that neither floods the log nor stops the daemon for good."""

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningDaemon, daemon_in_new_dir, import_busybox, unix_request

pytestmark = [pytest.mark.root, pytest.mark.integration]

WAIT = 20.0  # generous bound for what should happen after a one-second timeout
SHORT = 1.0  # the header and idle timeouts of the `short` daemon


@contextlib.contextmanager
def own_daemon(extra_args: tuple[str, ...] = (), wrapper: tuple[str, ...] = ()) -> Iterator[RunningDaemon]:
    with daemon_in_new_dir("pyd-h-", extra_args, wrapper, busybox=False) as d:
        yield d


@pytest.fixture(scope="module")
def short() -> Iterator[RunningDaemon]:
    """A daemon with one-second header and idle timeouts, and busybox."""
    timeouts = ("--http-read-header-timeout", str(SHORT), "--http-idle-timeout", str(SHORT))
    with own_daemon(timeouts) as d:
        import_busybox(d)
        yield d


class LogWatch:
    """What the daemon wrote to its log since this was made."""

    def __init__(self, d: RunningDaemon) -> None:
        self.path = d.root / "daemon.log"
        self.start = self.path.stat().st_size

    def text(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")

    def lines_above_debug(self) -> list[str]:
        return [
            line
            for line in self.text().splitlines()
            if re.match(r"\d{4}-\d\d-\d\d [\d:,]+ (INFO|WARNING|ERROR|CRITICAL) ", line)
        ]


def connect(d: RunningDaemon) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    s.connect(d.sock)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


# --- hostile request bodies and versions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"Image": "busybox", "Cmd": ["\xff\xfe"]}', "invalid JSON: invalid UTF-8 at byte offset 30"),
        (b"[" * 5000 + b"]" * 5000, "invalid JSON: exceeded max depth"),
        (b'{"Image": "busybox", "Labels": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001, "exceeded max depth"),
        (b'{"Image": "busybox", "Memory": ' + b"9" * 5000 + b"}", "is out of range"),
    ],
    ids=["non-utf8", "deep-array", "deep-object", "5000-digits"],
)
def test_hostile_create_bodies_are_400_and_leave_no_container(
    daemon: RunningDaemon, raw: bytes, words: str
) -> None:
    log = LogWatch(daemon)
    before = daemon.api("GET", "/containers/json?all=1")[1]
    status, out = daemon.api(
        "POST", "/containers/create", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 400, out
    assert isinstance(out, dict) and words in out["message"], out
    assert daemon.api("GET", "/containers/json?all=1")[1] == before
    assert "Traceback" not in log.text()


def test_deep_filters_are_400(daemon: RunningDaemon) -> None:
    deep = "%5B" * 1300 + "%5D" * 1300  # as deep as fits in aiohttp's 8190-byte request line
    status, out = daemon.api("GET", f"/containers/json?filters={deep}")
    assert status == 400 and isinstance(out, dict), out
    assert out["message"] == "invalid filter: invalid JSON: exceeded max depth"


def test_an_api_version_of_5000_digits_is_too_new(daemon: RunningDaemon) -> None:
    log = LogWatch(daemon)
    version = "9" * 5000 + ".1"
    status, out = daemon.api("GET", f"/v{version}/_ping")
    assert status == 400 and isinstance(out, dict), out
    assert out["message"] == f"client version {version} is too new. Maximum supported API version is 1.47"
    status, out = daemon.api("GET", f"/v1.{'0' * 5000}/version")
    assert status == 400 and isinstance(out, dict) and "is too old" in out["message"], out
    # 1.44 with 5,000 leading zeros is 1.44, as Docker reads it; routes that look at the version too
    status, out = daemon.api("GET", f"/v1.{'0' * 5000}44/images/json")
    assert status == 200 and isinstance(out, list), out
    assert "Traceback" not in log.text()


def test_a_method_a_known_path_does_not_serve_is_405(daemon: RunningDaemon) -> None:
    status, headers, body = unix_request(daemon.sock, "PUT", "/v1.47/containers/json")
    assert status == 405, body
    assert headers["content-type"] == "application/json"
    assert headers["allow"] == "DELETE, GET"  # GET /containers/json, DELETE /containers/{id}
    assert b"PUT is not allowed" in body
    # a Docker route we do not serve yet still says so, whatever the router matched
    status, _h, body = unix_request(daemon.sock, "POST", "/v1.47/images/busybox/push")
    assert status == 501 and b"pushing images" in body


# --- idle and half-sent connections -------------------------------------------------------------


def test_an_idle_connection_is_closed(short: RunningDaemon) -> None:
    with connect(short) as s:
        started = time.monotonic()
        assert read_until_closed(s) == b""
        assert time.monotonic() - started >= SHORT * 0.9


@pytest.mark.parametrize("sent", [b"G", b"GET /_ping HT", b"GET /_ping HTTP/1.1\r\nHost: d\r\n"])
def test_a_half_sent_request_is_closed(short: RunningDaemon, sent: bytes) -> None:
    with connect(short) as s:
        s.sendall(sent)
        assert read_until_closed(s) == b""


def test_a_keep_alive_connection_is_closed_once_idle(short: RunningDaemon) -> None:
    with connect(short) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        s.settimeout(WAIT)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert read_until_closed(s) == b""


# --- long requests are never cut ------------------------------------------------------------------


@pytest.fixture
def name(short: RunningDaemon) -> Iterator[str]:
    n = f"http-{uuid.uuid4().hex[:8]}"
    yield n
    short.docker("rm", "-f", n)


def test_attached_run_outlives_the_timeouts(short: RunningDaemon, name: str) -> None:
    # hijacked attach (stdin and output) and the wait beside it, both quiet for 3 s
    p = short.docker(
        "run", "-i", "--name", name, "busybox", "sh", "-c", "read x; sleep 3; echo got $x",
        input=b"hello\n",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"got hello\n"


def test_logs_follow_and_wait_outlive_the_timeouts(short: RunningDaemon, name: str) -> None:
    p = short.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo one; sleep 3; echo two")
    assert p.returncode == 0, p.stderr
    logs = short.docker("logs", "-f", name)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == b"one\ntwo\n"
    waited = short.docker("wait", name)
    assert waited.stdout.strip() == b"0", waited.stderr


def test_exec_outlives_the_timeouts(short: RunningDaemon, name: str) -> None:
    assert short.docker("run", "-d", "--name", name, "busybox", "sleep", "30").returncode == 0
    p = short.docker("exec", name, "sh", "-c", "sleep 3; echo late")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"late\n"


def test_events_stream_outlives_the_timeouts(short: RunningDaemon) -> None:
    # a quiet event stream: no byte for 3 s after its headers
    until = int(time.time()) + 3
    status, _h, _body = unix_request(
        short.sock, "GET", f"/events?since={until - 1}&until={until}", timeout=WAIT
    )
    assert status == 200


# --- the connection cap -----------------------------------------------------------------------------


def test_connections_over_the_cap_wait_and_are_then_served() -> None:
    with own_daemon(("--max-connections", "4")) as d:
        held = [connect(d) for _ in range(4)]
        for s in held:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
        late = connect(d)  # queued by the kernel, not accepted
        late.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        late.settimeout(1.0)
        with pytest.raises(TimeoutError):
            late.recv(65536)
        held.pop().close()
        late.settimeout(WAIT)
        assert read_until_closed(late).startswith(b"HTTP/1.1 200 OK")
        for s in [*held, late]:
            s.close()


# --- running out of file descriptors ------------------------------------------------------------------


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    with own_daemon(wrapper=("prlimit", "--nofile=256:4096")) as d:
        limits = Path(f"/proc/{d.proc.pid}/limits").read_text()
        assert re.search(r"Max open files\s+4096\s+4096\s", limits), limits


def test_a_connection_flood_at_the_descriptor_limit_is_quiet_and_passes() -> None:
    # a cap above the descriptor limit, so accept() itself runs out of descriptors
    with own_daemon(("--max-connections", "10000"), wrapper=("prlimit", "--nofile=128:128")) as d:
        log = LogWatch(d)
        flood: list[socket.socket] = []
        try:
            for _ in range(300):  # bounded; more than the daemon can hold
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(d.sock)
                except BlockingIOError:  # the listen backlog is full too
                    s.close()
                    break
                flood.append(s)
            time.sleep(3)  # asyncio's own loop writes megabytes of tracebacks in this time
        finally:
            for s in flood:
                s.close()
        deadline = time.monotonic() + WAIT
        status = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status = unix_request(d.sock, "GET", "/_ping", timeout=5)[0]
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, "the daemon does not serve again after the flood"
        lines = log.lines_above_debug()
        assert len(lines) <= 5, "\n".join(lines[:20])
        assert "Traceback" not in log.text()
        assert len(log.text()) < 20_000
