"""The messages between the daemon and a shim: one dataclass per request and per answer.

Like containerd's shim Task service, but as JSON lines on <exec dir>/shim.sock: the daemon sends one
request, an object whose "op" names it; the shim answers with one object, the answer's fields or
{"error": "..."}; after the answer to Attach and Exec the connection carries frames (frames.py), the last
of an exec a CONTROL frame holding an ExecExited. The shim also reports once on its stdout at set-up
(Created or an error), and leaves two files in its exec dir: state.json (ShimState) and exit.json (Exited).

Decoding checks the type of every field and refuses a message that lacks one, with a message that
names the field. Fields a side does not know are ignored, so a daemon and a shim one version apart
still understand each other: a shim started before a daemon upgrade goes on answering it.
"""

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from typing import Any, ClassVar, TypeVar, Union

from daemon.runtime.spec import ProcessSpec


class MalformedMessage(ValueError):
    """A line that is not the message it should be; str() says what is wrong."""


class ShimRefused(Exception):
    """The shim answered with an error; str() is its message."""


# --- requests (daemon -> shim) -----------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Let the created container's first process execve. Answer: Started."""

    OP: ClassVar[str] = "start"


@dataclass(frozen=True)
class Wait:
    """Until the container exits. Answer: Exited."""

    OP: ClassVar[str] = "wait"


@dataclass(frozen=True)
class Attach:
    """The container's output as frames from now on; the client's bytes go to stdin. Answer: Attached."""

    OP: ClassVar[str] = "attach"
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class Exec:
    """Start a process in the container; a detached one sends only its exit code. Answer: ExecStarted."""

    OP: ClassVar[str] = "exec"
    id: str
    process: ProcessSpec
    tty_size: tuple[int, int] | None = None  # rows, cols
    detached: bool = False


@dataclass(frozen=True)
class ExecWait:
    """An exec's exit code, once it has ended. Answer: ExecExited."""

    OP: ClassVar[str] = "exec_wait"
    id: str


@dataclass(frozen=True)
class Resize:
    """Set the terminal size of the container (exec None) or of an exec. Answer: Resized."""

    OP: ClassVar[str] = "resize"
    exec: str | None
    rows: int
    cols: int


Request = Start | Wait | Attach | Exec | ExecWait | Resize
REQUESTS: dict[str, type[Request]] = {cls.OP: cls for cls in (Start, Wait, Attach, Exec, ExecWait, Resize)}


# --- answers (shim -> daemon) ------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    pid: int  # the container's first process, on the host


@dataclass(frozen=True)
class Attached:
    pass


@dataclass(frozen=True)
class ExecStarted:
    pid: int


@dataclass(frozen=True)
class Exited:
    """The container's exit: the answer to Wait, and exit.json."""

    exit_code: int
    oom_killed: bool = False
    finished_at: str = ""  # RFC 3339


@dataclass(frozen=True)
class ExecExited:
    """An exec's exit: the answer to ExecWait, and the exec stream's last CONTROL frame."""

    exit_code: int


@dataclass(frozen=True)
class Resized:
    ok: bool  # False: that process has no terminal


@dataclass(frozen=True)
class Failed:
    """The answer to any request that failed, and the set-up report of a shim that could not start."""

    error: str


@dataclass(frozen=True)
class Created:
    """The shim's report on its stdout once the container waits for Start."""

    pid: int
    shim_pid: int


@dataclass(frozen=True)
class ShimState:
    """state.json: what a daemon (a restarted one too) needs to find the shim and the container."""

    pid: int
    shim_pid: int
    status: str  # "created", then "running"


Message = (
    Request | Started | Attached | ExecStarted | Exited | ExecExited | Resized | Failed | Created | ShimState
)
M = TypeVar("M", bound=Message)


# --- encoding ----------------------------------------------------------------------------------


def to_dict(msg: Message) -> dict[str, Any]:
    data = asdict(msg)
    op = getattr(msg, "OP", None)
    return {"op": op, **data} if op else data


def encode(msg: Message) -> bytes:
    """One JSON line."""
    return json.dumps(to_dict(msg)).encode() + b"\n"


def _object(line: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MalformedMessage(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"not a JSON object: {str(line)[:100]}")
    return data


def decode_request(line: bytes | str) -> Request:
    data = _object(line)
    op = data.get("op")
    cls = REQUESTS.get(op) if isinstance(op, str) else None
    if cls is None:
        raise MalformedMessage(f"unknown op {op!r}")
    return from_dict(cls, data)


def decode_answer(line: bytes | str, cls: type[M]) -> M:
    """The answer of type cls; ShimRefused when the shim answered with an error."""
    data = _object(line)
    if "error" in data:
        raise ShimRefused(str(data["error"]))
    return from_dict(cls, data)


def from_dict(cls: type[M], data: dict[str, Any]) -> M:
    """cls built from data, every field checked against its annotation."""
    return _build(cls, data, cls.__name__)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise MalformedMessage(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise MalformedMessage(f"{where}: {f.name} is missing")
            continue
        values[f.name] = _check(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**values)


def _check(hint: Any, value: Any, where: str) -> Any:
    """value when it has the type hint says (lists, tuples and dataclasses converted), else raise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _check(option, value, where)
            except MalformedMessage:
                continue
        raise MalformedMessage(f"{where}: {value!r} is not {_name(hint)}")
    if hint is type(None):
        if value is None:
            return None
    elif origin is list:
        if isinstance(value, list):
            return [_check(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is tuple:
        if isinstance(value, list | tuple) and len(value) == len(args):
            return tuple(
                _check(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
    elif is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    elif hint is int or hint is str or hint is bool:
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
    else:
        raise TypeError(f"{where}: no check for {hint!r}")  # a message type this module cannot read
    raise MalformedMessage(f"{where}: {value!r} is not {_name(hint)}")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)
