"""Helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from .http import APIError, quote_path


class CLIError(Exception):
    """A failure to report as `message` on stderr, exiting with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class StreamError(Exception):
    """An `{"errorDetail": ...}` message inside a JSON stream (the HTTP status was already 200)."""


def path(template: str, *names: str) -> str:
    """`/containers/{}/start` with each name quoted for the URL path."""
    return template.format(*(quote_path(n) for n in names))


def for_each(names: Sequence[str], action: Callable[[str], Any], out: TextIO | None = None) -> int:
    """Run `action` for every name, printing the name on success; errors go to stderr at the end,
    and any error makes the exit status 1 (docker's stop/rm/kill/pause behaviour)."""
    out = out or sys.stdout
    errors = []
    for name in names:
        try:
            action(name)
        except APIError as e:
            errors.append(str(e))
            continue
        print(name, file=out, flush=True)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


def print_inspected(results: list[Any], errors: list[str], tmpl: Any) -> int:
    """`inspect`'s output: the objects as an indented JSON list (or each through --format), then the
    errors of the names not found; exit status 1 if any."""
    if tmpl is None:
        print(json.dumps(results, indent=4, ensure_ascii=False))
    else:
        for item in results:
            print(tmpl.render(item))
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


def display_messages(messages: Iterable[Any], out: TextIO, aux: Callable[[Any], None] | None = None) -> None:
    """Print a JSON-message stream (pull, load, import) like docker's non-terminal output."""
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if msg.get("errorDetail") or msg.get("error"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error") or "unknown error")
        if "aux" in msg:
            if aux is not None:
                aux(msg["aux"])
            continue
        if msg.get("progressDetail") or msg.get("progress"):
            continue  # progress bars only make sense on a terminal
        if "stream" in msg:
            out.write(msg["stream"])
        elif msg.get("status"):
            prefix = f"{msg['id']}: " if msg.get("id") else ""
            out.write(f"{prefix}{msg['status']}\n")
        out.flush()
