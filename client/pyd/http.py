"""A small Docker Engine API client over a unix socket (or plain TCP), standard library only."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any
from urllib.parse import quote, urlencode

API_VERSION = "1.47"
CLIENT_VERSION = "0.1.0"
DEFAULT_HOST = "unix:///var/run/pydockerd.sock"
USER_AGENT = f"pyd/{CLIENT_VERSION}"

QueryValue = str | int | bool | Sequence[str] | None
Query = Mapping[str, QueryValue]
Body = bytes | IO[bytes] | dict[str, Any] | list[Any] | None


class APIError(Exception):
    """The daemon answered with an error status; `message` comes from its JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class ConnectionFailed(Exception):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host

    def __str__(self) -> str:
        return f"Cannot connect to the pydockerd daemon at {self.host}. Is the daemon running?"


def encode_query(query: Query | None) -> str:
    """Docker style: True -> "1", False/None -> omitted, lists -> repeated keys."""
    pairs: list[tuple[str, str]] = []
    for key, value in (query or {}).items():
        if value is None or value is False:
            continue
        if value is True:
            pairs.append((key, "1"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, str(v)) for v in value)
    return urlencode(pairs)


def error_message(status: int, body: bytes) -> str:
    """The message docker shows: JSON `message`, else the body text, else a generic line."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return f"request returned {http.client.responses.get(status, status)} for API route"
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return text


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", blocksize=65536)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Response:
    """An HTTP response that owns its connection, so closing it closes the socket."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self) -> bytes:
        return self._resp.read()

    def read1(self, size: int = 65536) -> bytes:
        """Whatever is available (at most one recv): used for followed streams."""
        try:
            return self._resp.read1(size)
        except (http.client.IncompleteRead, ConnectionError):
            return b""

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def iter_json(self) -> Iterator[Any]:
        """Objects of a JSON-message stream (pull, load, import, events), as they arrive."""
        decoder = json.JSONDecoder()
        buf = ""
        while chunk := self.read1():
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = decoder.raw_decode(buf)
                except ValueError:
                    break  # incomplete object: wait for more bytes
                buf = buf[end:]
                yield obj

    @property
    def is_json(self) -> bool:
        return (self.headers.get("Content-Type") or "").startswith("application/json")

    def abort(self) -> None:
        """Shut the socket down: safe while another thread is blocked reading this response."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hijacked:
    """A connection taken over after `101 UPGRADED`: raw bytes both ways."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffered = buffered

    def recv(self, size: int = 65536) -> bytes:
        if self.buffered:
            data, self.buffered = self.buffered, b""
            return data
        try:
            return self.sock.recv(size)
        except OSError:
            return b""

    def close_write(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def shutdown(self) -> None:
        """Stop both directions; wakes up a thread blocked in recv (the fd stays valid)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


def parse_host(host: str) -> tuple[str, str | tuple[str, int]]:
    """`unix:///path`, `/path`, `tcp://h:p` or `http://h:p` -> (family, address)."""
    if host.startswith("unix://"):
        return "unix", host[len("unix://") :]
    if host.startswith("/"):
        return "unix", host
    for scheme in ("tcp://", "http://"):
        if host.startswith(scheme):
            hostport = host[len(scheme) :].rstrip("/")
            name, _, port = hostport.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"invalid host {host!r}: expected tcp://HOST:PORT")
            return "tcp", (name.strip("[]"), int(port))
    raise ValueError(f"unsupported host {host!r}: use unix:///path or tcp://host:port")


class Client:
    def __init__(self, host: str = DEFAULT_HOST, version: str = API_VERSION) -> None:
        self.host = host
        self.family, self.address = parse_host(host)
        self.version = version

    # -- plumbing -------------------------------------------------------------

    def url(self, path: str, query: Query | None = None) -> str:
        qs = encode_query(query)
        return f"/v{self.version}{path}" + (f"?{qs}" if qs else "")

    def _connection(self) -> http.client.HTTPConnection:
        if self.family == "unix":
            assert isinstance(self.address, str)
            return _UnixConnection(self.address)
        assert isinstance(self.address, tuple)
        return http.client.HTTPConnection(*self.address, blocksize=65536)

    def _socket(self) -> socket.socket:
        try:
            if self.family == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.address)
                return sock
            assert isinstance(self.address, tuple)
            return socket.create_connection(self.address)
        except OSError as e:
            raise ConnectionFailed(self.host, str(e)) from e

    @staticmethod
    def _encode_body(body: Body, headers: dict[str, str]) -> bytes | IO[bytes] | None:
        if isinstance(body, dict | list):
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(body).encode()
        if body is not None and not isinstance(body, bytes):
            # A regular file gets a Content-Length; pipes are sent chunked by http.client.
            try:
                st = os.fstat(body.fileno())
                if stat.S_ISREG(st.st_mode):
                    headers.setdefault("Content-Length", str(st.st_size - body.tell()))
            except (OSError, ValueError, AttributeError):
                pass
        return body

    def request(
        self,
        method: str,
        path: str,
        query: Query | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send a request; raise APIError for statuses >= 400. The caller closes the Response."""
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        payload = self._encode_body(body, hdrs)
        conn = self._connection()
        try:
            conn.connect()
        except (ConnectionRefusedError, FileNotFoundError, PermissionError) as e:
            conn.close()
            raise ConnectionFailed(self.host, str(e)) from e
        try:
            # If the daemon answers early (an error) and stops reading our body, still read its answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, self.url(path, query), body=payload, headers=hdrs)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise OSError(f"cannot talk to the daemon at {self.host}: {e}") from e
        if resp.status >= 400:
            data = resp.read()
            conn.close()
            raise APIError(resp.status, error_message(resp.status, data))
        return Response(conn, resp)

    def call(self, method: str, path: str, query: Query | None = None, body: Body = None) -> Any:
        """Request and decode the JSON answer (None for an empty body)."""
        with self.request(method, path, query, body) as resp:
            return resp.json()

    def get(self, path: str, query: Query | None = None) -> Any:
        return self.call("GET", path, query)

    def post(self, path: str, query: Query | None = None, body: Body = None) -> Any:
        return self.call("POST", path, query, body)

    def delete(self, path: str, query: Query | None = None) -> Any:
        return self.call("DELETE", path, query)

    # -- hijacking ------------------------------------------------------------

    def hijack(self, path: str, query: Query | None = None, body: Any = None) -> Hijacked:
        """POST with `Upgrade: tcp`; after `101` the socket carries the raw stream."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"POST {self.url(path, query)} HTTP/1.1\r\n"
            "Host: localhost\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: tcp\r\n"
            + ("Content-Type: application/json\r\n" if body is not None else "")
            + f"Content-Length: {len(payload)}\r\n\r\n"
        )
        sock = self._socket()
        try:
            sock.sendall(head.encode() + payload)
            status, headers, rest = _read_head(sock)
            if status >= 400:
                raise APIError(status, error_message(status, _read_body(sock, headers, rest)))
            if status not in (101, 200):
                raise OSError(f"unable to upgrade to tcp, received {status}")
        except BaseException:
            sock.close()
            raise
        return Hijacked(sock, rest)


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("connection closed before the response headers")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"malformed status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


def _read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
    """Body of a non-upgraded answer (an error): Content-Length, chunked or until close."""
    data = rest
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(data) < need and (chunk := sock.recv(65536)):
            data += chunk
        return data[:need]
    if "chunked" in headers.get("transfer-encoding", ""):
        out = b""
        while True:
            while b"\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                return out
            while len(data) < size + 2 and (chunk := sock.recv(65536)):
                data += chunk
            out, data = out + data[:size], data[size + 2 :]
    while chunk := sock.recv(65536):
        data += chunk
    return data


def quote_path(value: str) -> str:
    """A name or ID inside a URL path (image names contain `/` and `:`; keep `/`)."""
    return quote(value, safe="/:@")
