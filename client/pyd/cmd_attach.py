"""Commands that attach to a container's streams: `attach`, `exec`, `start`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from .common import CLIError, path
from .http import APIError, Client
from .session import ExitWaiter, stream_attached
from .streams import DEFAULT_DETACH_KEYS, parse_detach_keys, terminal_size


def _escape_keys(spec: str | None) -> bytes:
    try:
        return parse_detach_keys(spec) if spec else DEFAULT_DETACH_KEYS
    except ValueError as e:
        raise CLIError(str(e)) from e


def _check_tty(stdin: bool, tty: bool) -> None:
    if stdin and tty and not os.isatty(0):
        raise CLIError("the input device is not a TTY")


def _attach_query(stdin: bool, detach_keys: str | None) -> dict[str, Any]:
    return {"stream": True, "stdin": stdin, "stdout": True, "stderr": True, "detachKeys": detach_keys}


def cmd_attach(client: Client, a: argparse.Namespace) -> int:
    info = client.get(path("/containers/{}/json", a.container))
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CLIError("You cannot attach to a restarting container, wait until it is running")
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(config.get("OpenStdin")) and not a.no_stdin
    _check_tty(not a.no_stdin, tty)
    escape = _escape_keys(a.detach_keys)
    container = info["Id"]
    conn = client.hijack(f"/containers/{container}/attach", _attach_query(stdin, a.detach_keys))
    waiter = ExitWaiter(client, container, "not-running")
    detached = stream_attached(
        client,
        conn,
        tty=tty,
        stdin=stdin,
        resize_path=f"/containers/{container}/resize",
        kill_path=f"/containers/{container}/kill" if a.sig_proxy and not tty else None,
        escape=escape,
    )
    if detached:
        waiter.close()
        return 0
    return waiter.result()


def cmd_start(client: Client, a: argparse.Namespace) -> int:
    if not (a.attach or a.interactive):
        failed = []
        for name in a.containers:
            try:
                client.post(path("/containers/{}/start", name))
            except APIError as e:
                print(e, file=sys.stderr)
                failed.append(name)
                continue
            print(name, flush=True)
        if failed:
            raise CLIError(f"Error: failed to start containers: {', '.join(failed)}")
        return 0

    if len(a.containers) > 1:
        raise CLIError("you cannot start and attach multiple containers at once")
    info = client.get(path("/containers/{}/json", a.containers[0]))
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = a.interactive and bool(config.get("OpenStdin"))
    _check_tty(stdin, tty)
    escape = _escape_keys(a.detach_keys)
    container = info["Id"]
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    conn = client.hijack(f"/containers/{container}/attach", _attach_query(stdin, a.detach_keys))
    waiter = ExitWaiter(client, container, "removed" if auto_remove else "next-exit")
    try:
        client.post(f"/containers/{container}/start")
    except APIError:
        conn.close()
        waiter.close()
        raise
    detached = stream_attached(
        client,
        conn,
        tty=tty,
        stdin=stdin,
        resize_path=f"/containers/{container}/resize",
        kill_path=f"/containers/{container}/kill" if not tty else None,
        escape=escape,
    )
    if detached:
        waiter.close()
        return 0
    return waiter.result()


def exec_exit_code(client: Client, exec_id: str) -> int:
    """ExitCode from `GET /exec/{id}/json`; briefly retried while the daemon is still reaping."""
    for _ in range(40):
        info = client.get(f"/exec/{exec_id}/json")
        code = info.get("ExitCode")
        if code is not None and not info.get("Running"):
            return int(code)
        time.sleep(0.05)
    return int(code) if code is not None else 1


def cmd_exec(client: Client, a: argparse.Namespace) -> int:
    if not a.detach:
        _check_tty(a.interactive, a.tty)
    escape = _escape_keys(a.detach_keys)
    attached = not a.detach
    body: dict[str, Any] = {
        "User": a.user or "",
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": attached and a.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "Detach": a.detach,
        "DetachKeys": a.detach_keys or "",
        "Env": a.env or None,
        "WorkingDir": a.workdir or "",
        "Cmd": a.command,
    }
    size = terminal_size() if a.tty else None
    if size is not None:
        body["ConsoleSize"] = list(size)
    exec_id = client.post(path("/containers/{}/exec", a.container), body=body)["Id"]
    start = {"Detach": a.detach, "Tty": a.tty}
    if a.detach:
        client.post(f"/exec/{exec_id}/start", body=start)
        return 0
    try:
        conn = client.hijack(f"/exec/{exec_id}/start", body=start)
    except APIError as e:
        print(e, file=sys.stderr)
        return exec_exit_code(client, exec_id)
    detached = stream_attached(
        client, conn, tty=a.tty, stdin=a.interactive, resize_path=f"/exec/{exec_id}/resize", escape=escape
    )
    if detached:
        return 0
    return exec_exit_code(client, exec_id)
