"""Reading a json-file log: since/until/tail filtering, and following while the container runs."""

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiofiles

from daemon.errors import InvalidParameter
from daemon.frames import STDERR, STDOUT
from daemon.timefmt import parse_rfc3339, parse_state_time, parse_unix_timestamp

FOLLOW_POLL = 0.05
READ_CHUNK = 1 << 16


@dataclass
class LogEntry:
    stream: str  # "stdout" or "stderr", as the json-file log names them
    data: bytes
    time: str

    @property
    def frame_stream(self) -> int:
        """The stream number of Docker's multiplexed framing."""
        return STDOUT if self.stream == "stdout" else STDERR


@dataclass
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0
    tail: int | None = None  # None: all
    follow: bool = False


def parse_time_arg(value: str | None) -> int:
    """The logs API's since/until -> ns, 0 if unset: Unix seconds with a fraction, as the docker CLI sends
    them (it reads durations and dates itself), or an RFC 3339 time. Docker refuses anything else."""
    if not value:
        return 0
    for parse in (parse_unix_timestamp, parse_rfc3339):
        try:
            return parse(value)
        except ValueError:
            pass
    raise InvalidParameter(f"invalid value for time: {value!r}")


def _decode(line: bytes) -> LogEntry | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return LogEntry(obj.get("stream", "stdout"), obj.get("log", "").encode(), obj.get("time", ""))


def _wanted(entry: LogEntry, q: LogQuery) -> bool:
    if (entry.stream == "stdout" and not q.stdout) or (entry.stream == "stderr" and not q.stderr):
        return False
    if q.since_ns or q.until_ns:
        t = parse_state_time(entry.time)
        if q.since_ns and t < q.since_ns:
            return False
        if q.until_ns and t > q.until_ns:
            return False
    return True


def _complete_lines(partial: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The whole lines of `partial + chunk`, and what is left of a line still being written."""
    lines = (partial + chunk).split(b"\n")
    return lines, lines.pop()


async def read_logs(path: str, q: LogQuery, running: Callable[[], bool]) -> AsyncIterator[LogEntry]:
    """What is in the file now (with tail), then, when following, new lines until the container stops."""
    try:
        f = await aiofiles.open(path, "rb")
    except FileNotFoundError:
        return
    try:
        # a chunk at a time, so that a big log is never in memory whole; tail keeps only its last lines.
        # Only up to the size it has now: a container that logs faster than we read cannot keep us here.
        tail: deque[LogEntry] | None = deque(maxlen=q.tail) if q.tail is not None and q.tail >= 0 else None
        partial = b""
        remaining = os.fstat(f.fileno()).st_size
        while remaining > 0 and (chunk := await f.read(min(READ_CHUNK, remaining))):
            remaining -= len(chunk)
            lines, partial = _complete_lines(partial, chunk)
            for entry in (e for e in map(_decode, lines) if e is not None and _wanted(e, q)):
                if tail is None:
                    yield entry
                else:
                    tail.append(entry)
        for entry in tail or ():
            yield entry
        if not q.follow:
            return
        while True:
            alive = running()
            chunk = await f.read(READ_CHUNK)
            if chunk:
                lines, partial = _complete_lines(partial, chunk)
                for line in lines:
                    new = _decode(line)
                    if new is None or not _wanted(new, q):
                        continue
                    if q.until_ns and parse_state_time(new.time) > q.until_ns:
                        return
                    yield new
            elif not alive:
                return
            else:
                await asyncio.sleep(FOLLOW_POLL)
    finally:
        await f.close()


@dataclass(frozen=True)
class LogRequest:
    """`docker logs` options as the client wrote them; `query()` reads Docker's forms of them."""

    stdout: bool
    stderr: bool
    since: str | None = None
    until: str | None = None
    tail: str | None = None  # a number, or "all"/"" for all
    follow: bool = False

    def query(self) -> LogQuery:
        q = LogQuery(
            stdout=self.stdout,
            stderr=self.stderr,
            since_ns=parse_time_arg(self.since),
            until_ns=parse_time_arg(self.until),
            follow=self.follow,
            tail=parse_tail(self.tail),
        )
        if not (q.stdout or q.stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        return q


def parse_tail(value: str | None) -> int | None:
    if value is None or value in ("", "all"):
        return None
    try:
        return int(value)
    except ValueError as e:
        raise InvalidParameter(f"invalid value for tail: {value!r}") from e


@dataclass
class LogStream:
    """A container's log entries, and whether it has a TTY (then stdout and stderr are one stream)."""

    tty: bool
    entries: AsyncIterator[LogEntry]
