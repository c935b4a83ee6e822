"""The json-file log driver's writer: one JSON object per line, as Docker writes <id>-json.log."""

import json
import os
import time

MAX_PARTIAL = 16 * 1024  # Docker splits lines longer than 16 KiB


def timestamp(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z"


class JsonLogWriter:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.file = os.fdopen(fd, "ab", buffering=0)
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        self.partial[stream] = lines.pop()
        out = [self._entry(stream, line + b"\n") for line in lines]
        if len(self.partial[stream]) >= MAX_PARTIAL:
            out.append(self._entry(stream, self.partial[stream]))
            self.partial[stream] = b""
        if out:
            self.file.write(b"".join(out))

    def _entry(self, stream: str, payload: bytes) -> bytes:
        text = payload.decode("utf-8", errors="replace")
        return json.dumps({"log": text, "stream": stream, "time": timestamp()}).encode() + b"\n"

    def close(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self.file.write(self._entry(stream, rest))
        self.partial = {"stdout": b"", "stderr": b""}
        self.file.close()


def parse_timestamp(value: str) -> int:
    """RFC 3339 with up to nanoseconds (as we write it) -> Unix nanoseconds; 0 for Docker's zero time."""
    import calendar

    if not value or value.startswith("0001-"):
        return 0
    value = value.rstrip("Z")
    base, _, frac = value.partition(".")
    seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])
