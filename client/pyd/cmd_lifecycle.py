"""Container state changes: stop, restart, kill, rm, wait, rename, pause, unpause."""

from __future__ import annotations

import argparse
import sys

from .common import for_each, path
from .http import APIError, Client


def cmd_stop(client: Client, a: argparse.Namespace) -> int:
    query = {"t": a.time, "signal": a.signal}
    return for_each(a.containers, lambda n: client.post(path("/containers/{}/stop", n), query))


def cmd_restart(client: Client, a: argparse.Namespace) -> int:
    query = {"t": a.time, "signal": a.signal}
    return for_each(a.containers, lambda n: client.post(path("/containers/{}/restart", n), query))


def cmd_kill(client: Client, a: argparse.Namespace) -> int:
    query = {"signal": a.signal}
    return for_each(a.containers, lambda n: client.post(path("/containers/{}/kill", n), query))


def cmd_rm(client: Client, a: argparse.Namespace) -> int:
    query = {"force": a.force, "v": a.volumes}
    return for_each(a.containers, lambda n: client.delete(path("/containers/{}", n), query))


def cmd_pause(client: Client, a: argparse.Namespace) -> int:
    return for_each(a.containers, lambda n: client.post(path("/containers/{}/pause", n)))


def cmd_unpause(client: Client, a: argparse.Namespace) -> int:
    return for_each(a.containers, lambda n: client.post(path("/containers/{}/unpause", n)))


def cmd_rename(client: Client, a: argparse.Namespace) -> int:
    client.post(path("/containers/{}/rename", a.container), {"name": a.new_name})
    return 0


def cmd_wait(client: Client, a: argparse.Namespace) -> int:
    """Print each container's exit code as it stops (docker prints them in argument order)."""
    failed = False
    for name in a.containers:
        try:
            result = client.post(path("/containers/{}/wait", name))
        except APIError as e:
            print(e, file=sys.stderr)
            failed = True
            continue
        error = (result.get("Error") or {}).get("Message")
        if error:
            print(f"Error response from daemon: {error}", file=sys.stderr)
            failed = True
            continue
        print(result.get("StatusCode"), flush=True)
    return 1 if failed else 0
