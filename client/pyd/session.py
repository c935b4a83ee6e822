"""An attached session: copy streams over a hijacked connection, handle signals and resizes."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from .http import APIError, Client, Hijacked, Response
from .streams import copy_output, raw_terminal, start_stdin_thread, terminal_size

# Signals docker's --sig-proxy forwards (the ones a user can send a foreground process).
PROXY_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


class ExitWaiter:
    """`POST /containers/{id}/wait` sent before start: the daemon answers the headers at once
    and the body ({"StatusCode": n}) when the condition is met, so the body is read in a thread."""

    def __init__(self, client: Client, container: str, condition: str, follow: bool = True) -> None:
        self.code = 125
        self._done = threading.Event()
        self._resp: Response | None = None
        self._reader: threading.Thread | None = None
        self._aborted = False
        try:
            self._resp = client.request("POST", f"/containers/{container}/wait", {"condition": condition})
        except (APIError, OSError) as e:
            print(f"error waiting for container: {e}", file=sys.stderr)
            self._done.set()
            return
        if follow:
            self._reader = threading.Thread(target=self._read, args=(self._resp,), daemon=True)
            self._reader.start()

    def _read(self, resp: Response) -> None:
        try:
            body = json.loads(resp.read() or b"{}")
            error = (body.get("Error") or {}).get("Message")
            if error:
                print(f"error waiting for container: {error}", file=sys.stderr)
            else:
                self.code = int(body.get("StatusCode", 125))
        except (OSError, ValueError, AttributeError, http.client.HTTPException) as e:
            if not self._aborted:
                print(f"error waiting for container: {e}", file=sys.stderr)
        finally:
            resp.close()
            self._done.set()

    def result(self, timeout: float | None = None) -> int:
        self._done.wait(timeout)
        return self.code

    def close(self) -> None:
        """Drop the request without waiting for the answer (detached run, detach keys)."""
        if self._resp is None:
            return
        self._aborted = True
        if self._reader is None:
            self._resp.close()
        else:
            self._resp.abort()  # the reader thread wakes up and closes the response


def _fire(action: Callable[[], Any]) -> None:
    """Run a request off the signal handler, ignoring failures (the container may be gone)."""

    def quiet() -> None:
        with contextlib.suppress(APIError, OSError):
            action()

    threading.Thread(target=quiet, daemon=True).start()


@contextlib.contextmanager
def _signal_handlers(handlers: dict[int, Callable[[int, FrameType | None], Any]]) -> Iterator[None]:
    saved = {}
    try:
        for signum, handler in handlers.items():
            saved[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def resize(client: Client, resize_path: str) -> None:
    size = terminal_size()
    if size is not None:
        client.post(resize_path, {"h": size[0], "w": size[1]})


def stream_attached(
    client: Client,
    conn: Hijacked,
    *,
    tty: bool,
    stdin: bool,
    resize_path: str | None = None,
    kill_path: str | None = None,
    escape: bytes | None = None,
) -> bool:
    """Pump a hijacked stream until the daemon closes it. Returns True when the user typed
    the detach keys. `kill_path` enables signal proxying (POST .../kill?signal=NAME)."""
    detached = threading.Event()
    handlers: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def on_detach() -> None:
        detached.set()
        conn.shutdown()  # the output loop sees EOF; the socket is closed below, in this thread

    if tty and resize_path and terminal_size() is not None:
        _fire(lambda: resize(client, resize_path))
        handlers[signal.SIGWINCH] = lambda *_: _fire(lambda: resize(client, resize_path))
    if kill_path:

        def forward(signum: int, _frame: FrameType | None) -> None:
            sig = signal.Signals(signum).name.removeprefix("SIG")  # docker sends "TERM", "INT", ...
            _fire(lambda: client.post(kill_path, {"signal": sig}))

        handlers.update((getattr(signal, name), forward) for name in PROXY_SIGNALS)
    elif tty:
        # In raw mode nothing forwards signals; still leave through `finally` to restore the terminal.
        def leave(signum: int, _frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        handlers[signal.SIGTERM] = handlers[signal.SIGHUP] = leave

    out, err = sys.stdout.buffer, sys.stderr.buffer
    sys.stdout.flush()
    try:
        with _signal_handlers(handlers), raw_terminal(0) if (tty and stdin) else contextlib.nullcontext():
            if stdin:
                start_stdin_thread(0, conn.sock.sendall, conn.close_write, escape if tty else None, on_detach)
            else:
                conn.close_write()  # nothing to send: tell the daemon now, as the docker CLI does
            copy_output(conn.recv, tty, out, err)
    finally:
        conn.close()
    return detached.is_set()
