"""Dockerfile-style `changes` (docker import/commit --change): CMD, ENTRYPOINT, ENV, ... applied to a config.

Words are processed like the Dockerfile shell lexer: quotes, backslash escapes and $VAR / ${VAR}
expansion from the environment built so far.
"""

import json
import posixpath
import re
import signal
from collections.abc import Sequence
from typing import Any

from daemon.errors import InvalidParameter

ALLOWED = {
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
KNOWN = ALLOWED | {"ADD", "ARG", "COPY", "FROM", "HEALTHCHECK", "MAINTAINER", "RUN", "SHELL"}
DEFAULT_SHELL = ["/bin/sh", "-c"]
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def empty_container_config() -> dict[str, Any]:
    """What Go serializes for an empty container.Config (field order as Docker writes it)."""
    return {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    }


class _Lexer:
    """A small version of the Dockerfile shell lexer."""

    def __init__(self, text: str, env: dict[str, str]) -> None:
        self.text = text
        self.env = env
        self.i = 0

    def words(self) -> list[str]:
        out: list[str] = []
        while True:
            while self.i < len(self.text) and self.text[self.i].isspace():
                self.i += 1
            if self.i >= len(self.text):
                return out
            out.append(self._word(stop_at_space=True))

    def whole(self) -> str:
        return self._word(stop_at_space=False)

    def _word(self, stop_at_space: bool) -> str:
        buf: list[str] = []
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if stop_at_space and c.isspace():
                break
            self.i += 1
            if c == "'":
                end = t.find("'", self.i)
                if end < 0:
                    raise InvalidParameter(f"unexpected end of statement while looking for matching ': {t}")
                buf.append(t[self.i : end])
                self.i = end + 1
            elif c == '"':
                buf.append(self._double_quoted())
            elif c == "\\" and self.i < len(t):
                buf.append(t[self.i])
                self.i += 1
            elif c == "$":
                buf.append(self._variable())
            else:
                buf.append(c)
        return "".join(buf)

    def _double_quoted(self) -> str:
        buf: list[str] = []
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            self.i += 1
            if c == '"':
                return "".join(buf)
            if c == "\\" and self.i < len(t) and t[self.i] in '"\\$':
                buf.append(t[self.i])
                self.i += 1
            elif c == "$":
                buf.append(self._variable())
            else:
                buf.append(c)
        raise InvalidParameter(f'unexpected end of statement while looking for matching ": {t}')

    def _variable(self) -> str:
        t = self.text
        if self.i < len(t) and t[self.i] == "{":
            end = t.find("}", self.i)
            if end < 0:
                raise InvalidParameter(f"missing '}}' in {t}")
            body = t[self.i + 1 : end]
            self.i = end + 1
            for op in (":-", ":+"):
                if op in body:
                    name, alt = body.split(op, 1)
                    value = self.env.get(name, "")
                    if op == ":-":
                        return value or alt
                    return alt if value else ""
            return self.env.get(body, "")
        m = _VAR_NAME.match(t, self.i)
        if m is None:
            return "$"
        self.i = m.end()
        return self.env.get(m.group(0), "")


def _env_dict(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _pairs(instr: str, args: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2="v 2"`, or the legacy `key value with spaces`."""
    first = args.split(None, 1)[0] if args.strip() else ""
    if "=" not in first:
        parts = args.split(None, 1)
        if len(parts) < 2:
            raise InvalidParameter(f"{instr} must have two arguments")
        return [(parts[0], _Lexer(parts[1].strip(), env).whole())]
    out = []
    for word in _Lexer(args, env).words():
        key, sep, value = word.partition("=")
        if not key:
            raise InvalidParameter(f"{instr} names can not be blank")
        if not sep:
            raise InvalidParameter(
                f"Syntax error - can't find = in {word!r}. Must be of the form: name=value"
            )
        out.append((key, value))
    return out


def _json_list(args: str) -> list[str] | None:
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number past 4,300 digits, or nested too deep
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(args: str) -> list[str]:
    as_json = _json_list(args)
    if as_json is not None:
        return as_json
    return [*DEFAULT_SHELL, args.strip()]


def _ports(words: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for word in words:
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        m = _PORT_RANGE.match(port)
        if m is None or proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid containerPort: {word}")
        start = int(m.group(1))
        end = int(m.group(2) or start)
        if not (0 < start <= end <= 65535):
            raise InvalidParameter(f"invalid containerPort: {word}")
        for p in range(start, end + 1):
            out[f"{p}/{proto}"] = {}
    return out


def _check_signal(value: str) -> None:
    name = value.upper()
    if name.isdigit():
        if 0 < int(name) < 65:
            return
    else:
        name = name if name.startswith("SIG") else "SIG" + name
        base = name.split("+", 1)[0].split("-", 1)[0]
        if base in ("SIGRTMIN", "SIGRTMAX") or hasattr(signal.Signals, name):
            return
    raise InvalidParameter(f"Invalid signal: {value}")


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """Applies the changes to a copy of a container config ({"Cmd": ..., "Env": ...})."""
    cfg = json.loads(json.dumps(config))
    cmd_set = False
    lines = [line for change in changes for line in change.splitlines() if line.strip()]
    for line in lines:
        parts = line.strip().split(None, 1)
        instr, args = parts[0].upper(), (parts[1] if len(parts) > 1 else "")
        if instr not in KNOWN:
            raise InvalidParameter(f"dockerfile parse error on line 1: unknown instruction: {parts[0]}")
        if instr not in ALLOWED:
            raise InvalidParameter(f"{parts[0].lower()} is not a valid change command")
        if not args.strip():
            raise InvalidParameter(f"{instr} requires at least one argument")
        env = _env_dict(cfg)
        if instr == "CMD":
            cfg["Cmd"] = _command(args)
            cmd_set = True
        elif instr == "ENTRYPOINT":
            entrypoint = _command(args)
            cfg["Entrypoint"] = entrypoint or None
            if not cmd_set:
                cfg["Cmd"] = None  # as in a Dockerfile: a new entrypoint drops an inherited CMD
        elif instr == "ENV":
            # all pairs expand with the environment from before this line, as in a Dockerfile
            items = list(cfg.get("Env") or [])
            for key, value in _pairs(instr, args, env):
                keys = [e.partition("=")[0] for e in items]
                if key in keys:
                    items[keys.index(key)] = f"{key}={value}"  # replaced in place, like Docker
                else:
                    items.append(f"{key}={value}")
            cfg["Env"] = items
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(instr, args, env))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            ports.update(_ports(_Lexer(args, env).words()))
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            paths = _json_list(args)
            if paths is None:
                paths = _Lexer(args, env).words()
            volumes = dict(cfg.get("Volumes") or {})
            for path in paths:
                if not path.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                volumes[path] = {}
            cfg["Volumes"] = volumes
        elif instr == "USER":
            cfg["User"] = _Lexer(args.strip(), env).whole()
        elif instr == "WORKDIR":
            workdir = _Lexer(args.strip(), env).whole()
            if not workdir.startswith("/"):
                workdir = posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir") or "/", workdir))
            cfg["WorkingDir"] = workdir
        elif instr == "STOPSIGNAL":
            value = _Lexer(args.strip(), env).whole()
            _check_signal(value)
            cfg["StopSignal"] = value
        elif instr == "ONBUILD":
            trigger = args.strip().split(None, 1)[0].upper()
            if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
                raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), args.strip()]
    return cfg
