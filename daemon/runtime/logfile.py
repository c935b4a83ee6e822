"""The json-file log driver's writer: one JSON object per line, as Docker writes <id>-json.log."""

import json
import os

from daemon.timefmt import now_rfc3339

MAX_PARTIAL = 16 * 1024  # Docker splits lines longer than 16 KiB


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
        return json.dumps({"log": text, "stream": stream, "time": now_rfc3339()}).encode() + b"\n"

    def close(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self.file.write(self._entry(stream, rest))
        self.partial = {"stdout": b"", "stderr": b""}
        self.file.close()
