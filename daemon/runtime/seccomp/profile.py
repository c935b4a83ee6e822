"""A seccomp profile in Docker's JSON format, parsed and checked.

The format is moby's (profiles/seccomp): the OCI runtime spec's LinuxSeccomp (defaultAction,
defaultErrnoRet, architectures, flags, listenerPath, syscalls) plus `archMap` and, per syscall entry,
`includes`/`excludes` filters on capabilities, architectures and kernel version. Like Go's
encoding/json, field names match whatever their case and null means "not given"; unlike it, an
unknown field or value is an error, so that a typo never silently weakens a filter.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from daemon.runtime.seccomp.arches import ARCHES
from daemon.runtime.seccomp.errors import ProfileError, ProfileUnsupported

ACTIONS = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
)
UNSUPPORTED_ACTIONS = ("SCMP_ACT_NOTIFY",)  # needs a listener (seccomp agent): not implemented
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")  # the actions that carry errnoRet
OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
FLAGS = {  # seccomp(2) SECCOMP_FILTER_FLAG_*
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
MAX_ERRNO = 4095  # the kernel hands back at most this
MAX_ARGS = 6
U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Arg:
    index: int
    value: int
    value_two: int
    op: str


@dataclass(frozen=True)
class Filter:
    """Docker's includes/excludes: capabilities (CAP_ names), Go architecture names, a kernel version."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Filter | None = None
    excludes: Filter | None = None


@dataclass(frozen=True)
class Profile:
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (architecture, its sub-architectures)
    flags: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    @property
    def disabled(self) -> bool:
        """Docker's reading of a profile with neither a default action nor syscalls: no filter."""
        return not self.default_action and not self.rules


def parse_profile(text: str) -> Profile:
    """A profile from its JSON text; ProfileError (or ProfileUnsupported) says what is wrong and where."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ProfileError(f"Decoding seccomp profile failed: {e}") from e
    return _profile(_object(data, "the profile"))


_PROFILE_FIELDS = (
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
)
_ARCH_MAP_FIELDS = ("architecture", "subArchitectures")
_RULE_FIELDS = ("name", "names", "action", "errnoRet", "args", "comment", "includes", "excludes")
_ARG_FIELDS = ("index", "value", "valueTwo", "op")
_FILTER_FIELDS = ("caps", "arches", "minKernel")


def _fields(obj: dict[str, Any], known: tuple[str, ...], where: str) -> dict[str, Any]:
    """The object's fields under their canonical names (matched whatever their case); null is absent."""
    by_lower = {k.lower(): k for k in known}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        canonical = by_lower.get(key.lower())
        if canonical is None:
            raise ProfileError(f"invalid seccomp profile: unknown field {key!r} in {where}")
        if value is not None:
            out[canonical] = value
    return out


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"invalid seccomp profile: {where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProfileError(f"invalid seccomp profile: {where} must be a JSON array")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"invalid seccomp profile: {where} must be a string")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_string(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


def _uint(value: Any, where: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ProfileError(f"invalid seccomp profile: {where} must be an integer from 0 to {top}")
    return value


def _action(value: Any, where: str) -> str:
    action = _string(value, where)
    if action in UNSUPPORTED_ACTIONS:
        raise ProfileUnsupported(
            f"seccomp action {action} (user notification) is not implemented in pydockerd"
        )
    if action not in ACTIONS:
        raise ProfileError(f"invalid seccomp profile: unknown action {action!r} in {where}")
    return action


def _arch(value: Any, where: str) -> str:
    name = _string(value, where)
    if name not in ARCHES:
        raise ProfileError(f"invalid seccomp profile: unknown architecture {name!r} in {where}")
    return name


def _profile(obj: dict[str, Any]) -> Profile:
    f = _fields(obj, _PROFILE_FIELDS, "the profile")
    if f.get("listenerPath") or f.get("listenerMetadata"):
        raise ProfileUnsupported("seccomp listenerPath (user notification) is not implemented in pydockerd")
    architectures = tuple(
        _arch(a, f"architectures[{i}]")
        for i, a in enumerate(_list(f.get("architectures", []), "architectures"))
    )
    arch_map = tuple(
        _arch_map_entry(_object(e, f"archMap[{i}]"), f"archMap[{i}]")
        for i, e in enumerate(_list(f.get("archMap", []), "archMap"))
    )
    if architectures and arch_map:
        raise ProfileError(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    flags = _strings(f.get("flags", []), "flags")
    for flag in flags:
        if flag not in FLAGS:
            raise ProfileError(f"invalid seccomp profile: unknown flag {flag!r}")
    rules = tuple(
        _rule(_object(r, f"syscalls[{i}]"), f"syscalls[{i}]")
        for i, r in enumerate(_list(f.get("syscalls", []), "syscalls"))
    )
    default = _action(f["defaultAction"], "defaultAction") if "defaultAction" in f else ""
    if not default and rules:
        raise ProfileError("invalid seccomp profile: defaultAction is required")
    errno_ret = f.get("defaultErrnoRet")
    if errno_ret is not None:
        errno_ret = _uint(errno_ret, "defaultErrnoRet", MAX_ERRNO)
        if default not in WITH_ERRNO:
            raise ProfileError(
                f"invalid seccomp profile: defaultErrnoRet does not apply to {default or 'no'} action"
            )
    return Profile(default, errno_ret, architectures, arch_map, flags, rules)


def _arch_map_entry(obj: dict[str, Any], where: str) -> tuple[str, tuple[str, ...]]:
    f = _fields(obj, _ARCH_MAP_FIELDS, where)
    if "architecture" not in f:
        raise ProfileError(f"invalid seccomp profile: {where}.architecture is required")
    subs = f.get("subArchitectures", [])
    return _arch(f["architecture"], f"{where}.architecture"), tuple(
        _arch(s, f"{where}.subArchitectures[{i}]")
        for i, s in enumerate(_list(subs, f"{where}.subArchitectures"))
    )


def _rule(obj: dict[str, Any], where: str) -> Rule:
    f = _fields(obj, _RULE_FIELDS, where)
    names = _strings(f.get("names", []), f"{where}.names")
    if "name" in f:
        if names:
            raise ProfileError(
                "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
            )
        names = (_string(f["name"], f"{where}.name"),)
    if "action" not in f:
        raise ProfileError(f"invalid seccomp profile: {where}.action is required")
    action = _action(f["action"], f"{where}.action")
    errno_ret = f.get("errnoRet")
    if errno_ret is not None:
        errno_ret = _uint(errno_ret, f"{where}.errnoRet", MAX_ERRNO)
        if action not in WITH_ERRNO:
            raise ProfileError(f"invalid seccomp profile: {where}.errnoRet does not apply to action {action}")
    if "comment" in f:
        _string(f["comment"], f"{where}.comment")
    args = tuple(
        _arg(_object(a, f"{where}.args[{i}]"), f"{where}.args[{i}]")
        for i, a in enumerate(_list(f.get("args", []), f"{where}.args"))
    )
    if len(args) > MAX_ARGS:
        raise ProfileError(f"invalid seccomp profile: {where} compares more than {MAX_ARGS} arguments")
    includes = (
        _filter(_object(f["includes"], f"{where}.includes"), f"{where}.includes") if "includes" in f else None
    )
    excludes = (
        _filter(_object(f["excludes"], f"{where}.excludes"), f"{where}.excludes") if "excludes" in f else None
    )
    return Rule(names, action, errno_ret, args, includes, excludes)


def _arg(obj: dict[str, Any], where: str) -> Arg:
    f = _fields(obj, _ARG_FIELDS, where)
    op = _string(f.get("op", ""), f"{where}.op")
    if op not in OPERATORS:
        raise ProfileError(f"invalid seccomp profile: unknown operator {op!r} in {where}.op")
    return Arg(
        index=_uint(f.get("index", 0), f"{where}.index", MAX_ARGS - 1),
        value=_uint(f.get("value", 0), f"{where}.value", U64),
        value_two=_uint(f.get("valueTwo", 0), f"{where}.valueTwo", U64),
        op=op,
    )


def _filter(obj: dict[str, Any], where: str) -> Filter:
    f = _fields(obj, _FILTER_FIELDS, where)
    kernel = None
    if f.get("minKernel"):
        kernel = _kernel_version(f["minKernel"], f"{where}.minKernel")
    return Filter(
        caps=_strings(f.get("caps", []), f"{where}.caps"),
        arches=_strings(f.get("arches", []), f"{where}.arches"),
        min_kernel=kernel,
    )


def _kernel_version(value: Any, where: str) -> tuple[int, int]:
    text = _string(value, where)
    match = re.match(r"(\d+)\.(\d+)", text)  # like Go's Sscanf("%d.%d"): "5.10.1" is 5.10
    if match is None:
        raise ProfileError(f'invalid kernel version: "{text}" in {where}, expected "<kernel>.<major>"')
    return int(match[1]), int(match[2])
