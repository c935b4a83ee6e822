"""pyd against a fake Docker Engine API server on a unix socket (canned answers, no root needed)."""

from __future__ import annotations

import json
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from client.pyd.cli import main
from client.pyd.streams import frame

REPO = Path(__file__).resolve().parents[2]
CID = "c0ffee" + "0" * 58


@dataclass
class Req:
    method: str
    path: str  # without the /vX.YZ prefix
    version: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


Route = Callable[[BaseHTTPRequestHandler, Req], None]


def send_json(h: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def send_empty(h: BaseHTTPRequestHandler, status: int = 204) -> None:
    h.send_response(status)
    h.send_header("Content-Length", "0")
    h.end_headers()


def send_chunked(
    h: BaseHTTPRequestHandler, pieces: list[bytes], content_type: str = "application/json"
) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for piece in pieces:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    h.wfile.write(b"0\r\n\r\n")


def hold_wait(h: BaseHTTPRequestHandler, until: threading.Event, status: int) -> None:
    """A wait answer like dockerd's: headers at once, the body when the container exits."""
    body = json.dumps({"StatusCode": status, "Error": None}).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    until.wait(10)
    h.wfile.write(body)


def upgrade(h: BaseHTTPRequestHandler) -> None:
    """Answer `101 UPGRADED` like dockerd; afterwards the connection is a raw stream."""
    h.wfile.write(
        b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    h.close_connection = True


class FakeDaemon:
    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: list[Req] = []
        self.routes: list[tuple[str, str, Route]] = []
        self.errors: list[BaseException | None] = []
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def dispatch(self) -> None:
                daemon.handle(self)

            do_GET = do_POST = do_DELETE = do_HEAD = dispatch

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # pyd drops some answers unread (a detached run's wait): no tracebacks on stderr
                daemon.errors.append(sys.exc_info()[1])

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def on(self, method: str, pattern: str, route: Route) -> None:
        self.routes.insert(0, (method, pattern, route))

    def reply(self, method: str, pattern: str, obj: Any, status: int = 200) -> None:
        self.on(method, pattern, lambda h, _req: send_json(h, obj, status))

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        m = re.match(r"/v(\d+\.\d+)(/.*)", url.path)
        version, path = (m.group(1), m.group(2)) if m else ("", url.path)
        req = Req(h.command, path, version, parse_qs(url.query), dict(h.headers.items()), self._body(h))
        self.requests.append(req)
        for method, pattern, route in self.routes:
            if method == h.command and re.fullmatch(pattern, path):
                route(h, req)
                return
        send_json(h, {"message": "page not found"}, 404)

    @staticmethod
    def _body(h: BaseHTTPRequestHandler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(h.rfile.readline().split(b";")[0], 16):
                data += h.rfile.read(size)
                h.rfile.readline()
            h.rfile.readline()
            return data
        return h.rfile.read(int(h.headers.get("Content-Length") or 0))

    def find(self, method: str, pattern: str) -> list[Req]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(str(tmp_path / "d.sock"))
    yield fake
    fake.stop()


def pyd(daemon: FakeDaemon, *args: str) -> int:
    return main(["-H", daemon.host, *args])


def pyd_process(daemon: FakeDaemon, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    code = "import sys; from client.pyd.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "-H", daemon.host, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


# -- run ------------------------------------------------------------------------------------------


def test_run_detached_sends_create_wait_start(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    daemon.reply("POST", r"/containers/\w+/wait", {"StatusCode": 0})
    daemon.on("POST", r"/containers/\w+/start", lambda h, _r: send_empty(h))

    argv = ["run", "-d", "--name", "x", "-e", "A=1", "-m", "64m", "--cpus", "0.5", "img", "cmd", "-l"]
    assert pyd(daemon, *argv) == 0

    assert capfd.readouterr().out == CID + "\n"
    assert [r.path for r in daemon.requests] == [
        "/containers/create",
        f"/containers/{CID}/wait",
        f"/containers/{CID}/start",
    ]
    create = daemon.requests[0]
    assert create.version == "1.47"
    assert create.arg("name") == "x"
    body = create.json()
    assert body["Image"] == "img"
    assert body["Env"] == ["A=1"]
    assert body["Cmd"] == ["cmd", "-l"]  # flags after the image belong to the command
    assert body["HostConfig"]["Memory"] == 67108864
    assert body["HostConfig"]["NanoCpus"] == 500000000
    assert body["AttachStdout"] is False and body["OpenStdin"] is False
    assert daemon.requests[1].arg("condition") == "next-exit"


def test_run_options_map_to_docker_fields(daemon: FakeDaemon) -> None:
    daemon.reply("POST", "/containers/create", {"Id": CID}, 201)
    daemon.reply("POST", r"/containers/\w+/wait", {"StatusCode": 0})
    daemon.on("POST", r"/containers/\w+/start", lambda h, _r: send_empty(h))
    argv = [
        "run", "-d", "--rm", "-h", "box", "-u", "1000:1000", "-w", "/tmp", "-v", "/data", "-v", "vol:/x:ro",
        "--entrypoint", "/bin/sh", "--pids-limit", "10", "--network", "none", "-l", "a=b", "-l", "c",
        "--privileged", "--cap-add", "net_admin", "--cap-drop", "ALL", "--read-only",
        "--stop-signal", "SIGUSR1", "--stop-timeout", "3", "-p", "127.0.0.1:8080:80", "img",
    ]  # fmt: skip
    assert pyd(daemon, *argv) == 0
    body = daemon.find("POST", "/containers/create")[0].json()
    hc = body["HostConfig"]
    assert body["Hostname"] == "box" and body["User"] == "1000:1000" and body["WorkingDir"] == "/tmp"
    assert body["Volumes"] == {"/data": {}} and hc["Binds"] == ["vol:/x:ro"]
    assert body["Entrypoint"] == ["/bin/sh"] and body["Cmd"] is None
    assert body["Labels"] == {"a": "b", "c": ""}
    assert body["StopSignal"] == "SIGUSR1" and body["StopTimeout"] == 3
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert hc["AutoRemove"] is True and hc["PidsLimit"] == 10 and hc["NetworkMode"] == "none"
    assert hc["Privileged"] is True and hc["ReadonlyRootfs"] is True
    assert hc["CapAdd"] == ["CAP_NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert daemon.find("POST", r"/containers/\w+/wait")[0].arg("condition") == "removed"


def _attached_run_daemon(daemon: FakeDaemon, status: int, frames: list[bytes]) -> threading.Event:
    started, attach_done = threading.Event(), threading.Event()

    def attach(h: BaseHTTPRequestHandler, _req: Req) -> None:
        upgrade(h)
        started.wait(5)
        data = b"".join(frames)
        for i in range(0, len(data), 5):  # odd-sized writes: headers and payloads split across reads
            h.connection.sendall(data[i : i + 5])
            time.sleep(0.001)
        attach_done.set()

    def start(h: BaseHTTPRequestHandler, _req: Req) -> None:
        started.set()
        send_empty(h)

    daemon.reply("POST", "/containers/create", {"Id": CID}, 201)
    daemon.on("POST", r"/containers/\w+/attach", attach)
    daemon.on("POST", r"/containers/\w+/wait", lambda h, _r: hold_wait(h, attach_done, status))
    daemon.on("POST", r"/containers/\w+/start", start)
    return attach_done


def test_run_attached_demultiplexes_and_exits_with_wait_status(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]
) -> None:
    frames = [frame(1, b"hello\n"), frame(2, b"oops\n"), frame(1, b"x" * 300 + b"\n"), frame(1, b"bye\n")]
    _attached_run_daemon(daemon, 3, frames)

    assert pyd(daemon, "run", "img") == 3

    out, err = capfd.readouterr()
    assert out == "hello\n" + "x" * 300 + "\nbye\n"
    assert err == "oops\n"
    assert [r.path.rsplit("/", 1)[-1] for r in daemon.requests] == ["create", "attach", "wait", "start"]
    attach = daemon.find("POST", r"/containers/\w+/attach")[0]
    assert attach.headers["Upgrade"] == "tcp" and attach.headers["Connection"] == "Upgrade"
    assert {k: v[0] for k, v in attach.query.items()} == {"stream": "1", "stdout": "1", "stderr": "1"}
    body = daemon.find("POST", "/containers/create")[0].json()
    assert body["AttachStdout"] is True and body["AttachStderr"] is True and body["AttachStdin"] is False


def test_run_tty_output_is_raw(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    raw = frame(1, b"not a frame for a tty")
    _attached_run_daemon(daemon, 0, [raw])
    assert pyd(daemon, "run", "-t", "img") == 0
    assert capfd.readouterr().out.encode("latin-1", "replace").endswith(b"not a frame for a tty")
    assert daemon.find("POST", "/containers/create")[0].json()["Tty"] is True


def test_run_interactive_copies_stdin_and_half_closes(daemon: FakeDaemon) -> None:
    attach_done = threading.Event()

    def attach(h: BaseHTTPRequestHandler, _req: Req) -> None:
        upgrade(h)
        received = b""
        while chunk := h.rfile.read1(65536):  # until the client's half-close
            received += chunk
        h.connection.sendall(frame(1, b"got:" + received) + frame(2, b"stdin closed\n"))
        attach_done.set()

    daemon.reply("POST", "/containers/create", {"Id": CID}, 201)
    daemon.on("POST", r"/containers/\w+/attach", attach)
    daemon.on("POST", r"/containers/\w+/wait", lambda h, _r: hold_wait(h, attach_done, 0))
    daemon.on("POST", r"/containers/\w+/start", lambda h, _r: send_empty(h))

    proc = pyd_process(daemon, "run", "-i", "img", "cat", stdin=subprocess.PIPE)
    out, err = proc.communicate(b"line one\nline two\n", timeout=20)

    assert out == b"got:line one\nline two\n"
    assert err == b"stdin closed\n"
    assert daemon.find("POST", r"/containers/\w+/attach")[0].arg("stdin") == "1"
    body = daemon.find("POST", "/containers/create")[0].json()
    assert body["OpenStdin"] is True and body["StdinOnce"] is True and body["AttachStdin"] is True


def test_run_forwards_signals_to_the_container(daemon: FakeDaemon) -> None:
    killed, attach_done = threading.Event(), threading.Event()

    def attach(h: BaseHTTPRequestHandler, _req: Req) -> None:
        upgrade(h)
        h.connection.sendall(frame(1, b"ready\n"))
        killed.wait(10)
        h.connection.sendall(frame(1, b"terminated\n"))
        attach_done.set()

    def kill(h: BaseHTTPRequestHandler, _req: Req) -> None:
        killed.set()
        send_empty(h)

    daemon.reply("POST", "/containers/create", {"Id": CID}, 201)
    daemon.on("POST", r"/containers/\w+/attach", attach)
    daemon.on("POST", r"/containers/\w+/wait", lambda h, _r: hold_wait(h, attach_done, 143))
    daemon.on("POST", r"/containers/\w+/start", lambda h, _r: send_empty(h))
    daemon.on("POST", r"/containers/\w+/kill", kill)

    proc = pyd_process(daemon, "run", "img")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # handlers are installed before output is copied
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)

    assert proc.returncode == 143
    assert out == b"terminated\n"
    assert daemon.find("POST", r"/containers/\w+/kill")[0].arg("signal") == "TERM"


def test_run_pulls_a_missing_image(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    answers = iter([({"message": "No such image: img:latest"}, 404), ({"Id": CID}, 201)])
    daemon.on("POST", "/containers/create", lambda h, _r: send_json(h, *next(answers)))
    messages = [
        {"status": "Pulling from library/img", "id": "latest"},
        {"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "id": "abc"},
        {"status": "Status: Downloaded newer image for img:latest"},
    ]
    daemon.on(
        "POST", "/images/create", lambda h, _r: send_chunked(h, [json.dumps(m).encode() for m in messages])
    )
    daemon.reply("POST", r"/containers/\w+/wait", {"StatusCode": 0})
    daemon.on("POST", r"/containers/\w+/start", lambda h, _r: send_empty(h))

    assert pyd(daemon, "run", "-d", "img") == 0

    out, err = capfd.readouterr()
    assert out == CID + "\n"
    assert err == (
        "Unable to find image 'img:latest' locally\n"
        "latest: Pulling from library/img\n"
        "Status: Downloaded newer image for img:latest\n"
    )
    pull = daemon.find("POST", "/images/create")[0]
    assert pull.arg("fromImage") == "docker.io/library/img" and pull.arg("tag") == "latest"
    assert len(daemon.find("POST", "/containers/create")) == 2


def test_run_failed_pull_exits_125(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/containers/create", {"message": "No such image: nope:1"}, 404)
    daemon.reply("POST", "/images/create", {"message": "pull access denied for nope"}, 404)

    assert pyd(daemon, "run", "nope:1") == 125

    err = capfd.readouterr().err
    assert err.startswith("Unable to find image 'nope:1' locally\n")
    assert "pyd: Error response from daemon: pull access denied for nope" in err


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('exec: "nope": executable file not found in $PATH', 127),
        ("open /bin/x: no such file or directory", 127),
        ("exec /script: permission denied", 126),
        ("cgroup setup failed", 125),
    ],
)
def test_run_start_failure_exit_codes(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], message: str, code: int
) -> None:
    daemon.reply("POST", "/containers/create", {"Id": CID}, 201)
    daemon.reply("POST", r"/containers/\w+/wait", {"StatusCode": 0})
    daemon.reply("POST", r"/containers/\w+/start", {"message": message}, 500)
    daemon.on("POST", r"/containers/\w+/attach", lambda h, _r: upgrade(h))

    assert pyd(daemon, "run", "img") == code
    assert f"Error response from daemon: {message}" in capfd.readouterr().err


def test_run_create_conflict_exits_125(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    message = 'Conflict. The container name "/x" is already in use by container "abc".'
    daemon.reply("POST", "/containers/create", {"message": message}, 409)
    assert pyd(daemon, "run", "--name", "x", "img") == 125
    assert capfd.readouterr().err.startswith(f"pyd: Error response from daemon: {message}\n")
    assert not daemon.find("POST", r"/images/create")


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["stop", "x"],
        ["rm", "x"],
        ["kill", "x"],
        ["logs", "x"],
        ["wait", "x"],
        ["top", "x"],
        ["exec", "x", "ls"],
    ],
)
def test_daemon_errors_print_message_and_exit_1(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    for method in ("GET", "POST", "DELETE"):
        daemon.reply(method, r"/containers/x(/.*)?", {"message": "No such container: x"}, 404)
    assert pyd(daemon, *argv) == 1
    out, err = capfd.readouterr()
    assert err == "Error response from daemon: No such container: x\n"
    assert out == ""


def test_multiple_targets_report_each_error(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.on("POST", r"/containers/a/stop", lambda h, _r: send_empty(h))
    daemon.reply("POST", r"/containers/b/stop", {"message": "No such container: b"}, 404)
    assert pyd(daemon, "stop", "-t", "3", "a", "b") == 1
    out, err = capfd.readouterr()
    assert out == "a\n"
    assert err == "Error response from daemon: No such container: b\n"
    assert daemon.find("POST", r"/containers/a/stop")[0].arg("t") == "3"


def test_cannot_connect(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    host = f"unix://{tmp_path}/missing.sock"
    assert main(["-H", host, "ps"]) == 1
    assert (
        capfd.readouterr().err
        == f"Cannot connect to the pydockerd daemon at {host}. Is the daemon running?\n"
    )


def test_docker_host_env_is_used(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    daemon.reply("GET", "/containers/json", [])
    assert main(["ps", "-q"]) == 0
    assert daemon.find("GET", "/containers/json")


# -- listing --------------------------------------------------------------------------------------


def test_ps_table(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    daemon.reply(
        "GET",
        "/containers/json",
        [
            {
                "Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:" + "b" * 64,
                "Command": "sleep 300 && echo hello world", "Created": now - 125, "State": "running",
                "Status": "Up 2 minutes",
                "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            },
            {
                "Id": "c" * 64, "Names": ["/x"], "Image": "sha256:" + "b" * 64,
                "ImageID": "sha256:" + "b" * 64,
                "Command": "sh", "Created": now - 3 * 86400, "State": "exited",
                "Status": "Exited (0) 5 seconds ago", "Ports": [],
            },
        ],
    )  # fmt: skip
    assert pyd(daemon, "ps", "-a") == 0
    assert capfd.readouterr().out == (
        "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                     PORTS                  NAMES\n"  # noqa: E501
        'aaaaaaaaaaaa   busybox        "sleep 300 && echo h…"   2 minutes ago   Up 2 minutes               0.0.0.0:8080->80/tcp   web\n'  # noqa: E501
        'cccccccccccc   bbbbbbbbbbbb   "sh"                     3 days ago      Exited (0) 5 seconds ago                          x\n'  # noqa: E501
    )
    assert daemon.find("GET", "/containers/json")[0].arg("all") == "1"

    assert pyd(daemon, "ps", "-aq", "--no-trunc") == 0
    assert capfd.readouterr().out == "a" * 64 + "\n" + "c" * 64 + "\n"

    assert pyd(daemon, "ps", "--format", "{{.Names}}: {{.State}}") == 0
    assert capfd.readouterr().out == "web: running\nx: exited\n"


def test_ps_query(daemon: FakeDaemon) -> None:
    daemon.reply("GET", "/containers/json", [])
    assert pyd(daemon, "ps", "-n", "2", "--filter", "status=running", "--filter", "name=x") == 0
    req = daemon.find("GET", "/containers/json")[0]
    assert req.arg("limit") == "2" and req.arg("all") == "1"
    assert json.loads(req.arg("filters") or "") == {"status": {"running": True}, "name": {"x": True}}


def test_images_table(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    daemon.reply(
        "GET",
        "/images/json",
        [
            {
                "Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest", "localhost:5000/x/y:v1"],
                "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": now - 20 * 86400, "Size": 4261550,
            },
            {"Id": "sha256:" + "f" * 64, "RepoTags": [], "RepoDigests": [], "Created": now - 7200,
             "Size": 999},
        ],
    )  # fmt: skip
    assert pyd(daemon, "images") == 0
    assert capfd.readouterr().out == (
        "REPOSITORY           TAG       IMAGE ID       CREATED       SIZE\n"
        "busybox              latest    bbbbbbbbbbbb   2 weeks ago   4.26MB\n"
        "localhost:5000/x/y   v1        bbbbbbbbbbbb   2 weeks ago   4.26MB\n"
        "<none>               <none>    ffffffffffff   2 hours ago   999B\n"
    )
    assert pyd(daemon, "images", "-q") == 0
    assert capfd.readouterr().out == "bbbbbbbbbbbb\nbbbbbbbbbbbb\nffffffffffff\n"


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tty", [False, True])
def test_logs_follows_inspect_tty(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], tty: bool) -> None:
    daemon.reply("GET", "/containers/x/json", {"Id": CID, "Config": {"Tty": tty}})
    if tty:
        pieces = [b"raw line\r\n"]
    else:
        data = frame(1, b"out line\n") + frame(2, b"err line\n")
        pieces = [data[:3], data[3:12], data[12:]]
    daemon.on(
        "GET", r"/containers/\w+/logs", lambda h, _r: send_chunked(h, pieces, "application/octet-stream")
    )

    assert pyd(daemon, "logs", "-f", "--tail", "5", "-t", "x") == 0

    out, err = capfd.readouterr()
    if tty:
        assert (out, err) == ("raw line\r\n", "")
    else:
        assert (out, err) == ("out line\n", "err line\n")
    req = daemon.find("GET", r"/containers/\w+/logs")[0]
    assert req.path == f"/containers/{CID}/logs"
    assert {k: v[0] for k, v in req.query.items()} == {
        "stdout": "1", "stderr": "1", "follow": "1", "tail": "5", "timestamps": "1",
    }  # fmt: skip


def test_exec_streams_and_exits_with_exec_code(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/containers/x/exec", {"Id": "e1"}, 201)

    def start(h: BaseHTTPRequestHandler, _req: Req) -> None:
        upgrade(h)
        h.connection.sendall(frame(1, b"in container\n") + frame(2, b"warning\n"))

    daemon.on("POST", "/exec/e1/start", start)
    daemon.reply("GET", "/exec/e1/json", {"ID": "e1", "Running": False, "ExitCode": 7})

    assert pyd(daemon, "exec", "-e", "B=2", "-u", "root", "-w", "/w", "x", "sh", "-c", "exit 7") == 7

    assert capfd.readouterr() == ("in container\n", "warning\n")
    body = daemon.find("POST", "/containers/x/exec")[0].json()
    assert body["Cmd"] == ["sh", "-c", "exit 7"] and body["Env"] == ["B=2"]
    assert body["User"] == "root" and body["WorkingDir"] == "/w"
    assert body["AttachStdout"] is True and body["AttachStdin"] is False and body["Tty"] is False
    start_req = daemon.find("POST", "/exec/e1/start")[0]
    assert start_req.json() == {"Detach": False, "Tty": False}
    assert start_req.headers["Upgrade"] == "tcp"


def test_events_default_format(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    event = {
        "status": "create", "id": "a" * 64, "from": "busybox", "Type": "container", "Action": "create",
        "Actor": {"ID": "a" * 64, "Attributes": {"name": "x", "image": "busybox"}},
        "scope": "local", "time": 1795831937, "timeNano": 1795831937123456789,
    }  # fmt: skip
    line = json.dumps(event).encode()
    daemon.on("GET", "/events", lambda h, _r: send_chunked(h, [line[:20], line[20:] + b"\n" + line + b"\n"]))
    try:
        assert pyd(daemon, "events", "--since", "1", "--until", "2") == 0
        assert pyd(daemon, "events", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.ID}}") == 0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    expected = f"2026-11-28T02:12:17.123456789Z container create {'a' * 64} (image=busybox, name=x)\n"
    assert capfd.readouterr().out == expected * 2 + f"create x {'a' * 64}\n" * 2
    req = daemon.find("GET", "/events")[0]
    assert req.arg("since") == "1" and req.arg("until") == "2"


# -- inspect and friends --------------------------------------------------------------------------


def test_inspect_format_and_fallback_to_image(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    container = {"Id": CID, "Name": "/x", "State": {"Running": True}, "Config": {"Labels": {"k": "v"}}}
    daemon.reply("GET", "/containers/x/json", container)
    daemon.reply("GET", "/containers/busybox/json", {"message": "No such container: busybox"}, 404)
    daemon.reply("GET", "/images/busybox/json", {"Id": "sha256:abc", "RepoTags": ["busybox:latest"]})

    fmt = '{{.State.Running}} {{.Name}} {{index .Config.Labels "k"}} {{json .Config}}'
    assert pyd(daemon, "inspect", "-f", fmt, "x") == 0
    assert capfd.readouterr().out == 'true /x v {"Labels":{"k":"v"}}\n'

    assert pyd(daemon, "inspect", "busybox") == 0
    out = capfd.readouterr().out
    assert json.loads(out) == [{"Id": "sha256:abc", "RepoTags": ["busybox:latest"]}]
    assert out.startswith('[\n    {\n        "Id"')  # docker's 4-space indent


def test_inspect_missing_object(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    assert pyd(daemon, "inspect", "nope") == 1
    assert capfd.readouterr() == ("[]\n", "Error: No such object: nope\n")


def test_version_shows_server_components(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply(
        "GET",
        "/version",
        {
            "Platform": {"Name": "pydockerd"}, "Version": "0.1.0", "ApiVersion": "1.47",
            "MinAPIVersion": "1.24",
            "GitCommit": "abc", "GoVersion": "python3.11", "Os": "linux", "Arch": "amd64",
            "BuildTime": "2026-01-01T00:00:00Z", "Experimental": False,
            "Components": [
                {"Name": "Engine", "Version": "0.1.0"},
                {"Name": "runc", "Version": "1.1", "Details": {"GitCommit": "x"}},
            ],
        },
    )  # fmt: skip
    assert pyd(daemon, "version") == 0
    out = capfd.readouterr().out
    assert out.startswith("Client:\n Version:           0.1.0\n API version:       1.47\n")
    assert out.split("\n\n", 1)[1] == (
        "Server: pydockerd\n"
        " Engine:\n"
        "  Version:          0.1.0\n"
        "  API version:      1.47 (minimum version 1.24)\n"
        "  Go version:       python3.11\n"
        "  Git commit:       abc\n"
        "  Built:            Thu Jan  1 00:00:00 2026\n"
        "  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n"
        " runc:\n"
        "  Version:          1.1\n"
        "  GitCommit:        x\n"
    )


def test_import_sends_file_and_prints_id(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(b"tar bytes" * 100)
    daemon.on("POST", "/images/create", lambda h, _r: send_chunked(h, [b'{"status":"sha256:1234"}\r\n']))

    assert pyd(daemon, "import", "-c", 'CMD ["sh"]', "-c", "ENV A=1", str(tarball), "myimg:v1") == 0

    assert capfd.readouterr().out == "sha256:1234\n"
    req = daemon.find("POST", "/images/create")[0]
    assert req.body == b"tar bytes" * 100
    assert req.arg("fromSrc") == "-" and req.arg("repo") == "myimg" and req.arg("tag") == "v1"
    assert req.query["changes"] == ['CMD ["sh"]', "ENV A=1"]


def test_load_from_stdin_is_chunked(daemon: FakeDaemon) -> None:
    daemon.on(
        "POST",
        "/images/load",
        lambda h, _r: send_chunked(h, [b'{"stream":"Loaded image: busybox:latest\\n"}\n']),
    )
    proc = pyd_process(daemon, "load", stdin=subprocess.PIPE)
    out, err = proc.communicate(b"x" * 100000, timeout=20)
    assert (proc.returncode, out, err) == (0, b"Loaded image: busybox:latest\n", b"")
    req = daemon.find("POST", "/images/load")[0]
    assert req.body == b"x" * 100000
    assert req.headers.get("Transfer-Encoding") == "chunked" and req.arg("quiet") == "1"


def test_tag_and_rmi(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.on("POST", r"/images/.+/tag", lambda h, _r: send_empty(h, 201))
    daemon.reply("DELETE", r"/images/.+", [{"Untagged": "foo/bar:v2"}, {"Deleted": "sha256:abc"}])

    assert pyd(daemon, "tag", "busybox", "localhost:5000/foo/bar:v2") == 0
    assert pyd(daemon, "rmi", "-f", "foo/bar:v2") == 0

    assert capfd.readouterr().out == "Untagged: foo/bar:v2\nDeleted: sha256:abc\n"
    tag = daemon.find("POST", r"/images/.+/tag")[0]
    assert tag.path == "/images/busybox/tag"
    assert tag.arg("repo") == "localhost:5000/foo/bar" and tag.arg("tag") == "v2"
    assert daemon.find("DELETE", r"/images/.+")[0].arg("force") == "1"


def test_usage_error_exits_125(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ps", "--bogus"])
    assert exc.value.code == 125
    assert "unrecognized arguments: --bogus" in capfd.readouterr().err


def test_start_attach_exits_with_status(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("GET", "/containers/x/json", {"Id": CID, "Config": {"Tty": False}, "HostConfig": {}})
    _attached_run_daemon(daemon, 2, [frame(1, b"again\n")])

    assert pyd(daemon, "start", "-a", "x") == 2

    assert capfd.readouterr().out == "again\n"
    assert [r.path.rsplit("/", 1)[-1] for r in daemon.requests] == ["json", "attach", "wait", "start"]
    assert daemon.find("POST", r"/containers/\w+/wait")[0].arg("condition") == "next-exit"


def test_start_without_attach_prints_names(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.on("POST", r"/containers/a/start", lambda h, _r: send_empty(h, 304))  # already running
    daemon.reply("POST", r"/containers/b/start", {"message": "No such container: b"}, 404)
    assert pyd(daemon, "start", "a", "b") == 1
    assert capfd.readouterr() == (
        "a\n",
        "Error response from daemon: No such container: b\nError: failed to start containers: b\n",
    )


def test_attach_refuses_a_stopped_container(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("GET", "/containers/x/json", {"Id": CID, "State": {"Running": False}, "Config": {}})
    assert pyd(daemon, "attach", "x") == 1
    assert capfd.readouterr().err == "You cannot attach to a stopped container, start it first\n"
    assert not daemon.find("POST", r"/containers/\w+/attach")


def test_exec_detached_does_not_hijack(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/containers/x/exec", {"Id": "e2"}, 201)
    daemon.on("POST", "/exec/e2/start", lambda h, _r: send_empty(h, 200))
    assert pyd(daemon, "exec", "-d", "x", "touch", "/f") == 0
    assert capfd.readouterr().out == ""
    body = daemon.find("POST", "/containers/x/exec")[0].json()
    assert body["Detach"] is True and body["AttachStdout"] is False
    start = daemon.find("POST", "/exec/e2/start")[0]
    assert start.json() == {"Detach": True, "Tty": False} and "Upgrade" not in start.headers


def test_create_prints_id(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/containers/create", {"Id": CID, "Warnings": ["low memory"]}, 201)
    assert pyd(daemon, "create", "--name", "c1", "-it", "img", "sh") == 0
    assert capfd.readouterr() == (CID + "\n", "WARNING: low memory\n")
    body = daemon.find("POST", "/containers/create")[0].json()
    assert body["Tty"] is True and body["OpenStdin"] is True and body["AttachStdin"] is False
    assert not daemon.find("POST", r"/containers/\w+/start")
