"""Docker's `User` ("uid", "uid:gid", "name", "name:group") resolved against the container's own files."""

import os
from dataclasses import dataclass


@dataclass
class ExecUser:
    uid: int
    gid: int
    groups: list[int]
    home: str


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(spec: str, root: str = "/") -> ExecUser:
    """Resolve `spec` with `root`/etc/passwd and /etc/group; raise ValueError with Docker's words."""
    passwd = _read_db(os.path.join(root, "etc/passwd"))
    groups = _read_db(os.path.join(root, "etc/group"))
    user_part, _, group_part = (spec or "0").partition(":")
    entry = next((e for e in passwd if len(e) >= 7 and e[0] == user_part), None)
    if entry is None and user_part.isdigit():
        entry = next((e for e in passwd if len(e) >= 7 and e[2] == user_part), None)
    if entry is not None:
        uid, gid, home, name = int(entry[2]), int(entry[3]), entry[5], entry[0]
    elif user_part.isdigit():
        uid, gid, home, name = int(user_part), 0, "/", ""
    else:
        raise ValueError(f"unable to find user {user_part}: no matching entries in passwd file")
    if group_part:
        group = next((g for g in groups if len(g) >= 3 and g[0] == group_part), None)
        if group is not None:
            gid = int(group[2])
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise ValueError(f"unable to find group {group_part}: no matching entries in group file")
    supplementary = []
    if name and not group_part:
        supplementary = [
            int(g[2]) for g in groups if len(g) >= 4 and name in g[3].split(",") and g[2].isdigit()
        ]
    return ExecUser(uid=uid, gid=gid, groups=sorted({gid, *supplementary}), home=home or "/")


def find_executable(name: str, env: list[str], root: str = "/") -> str:
    """PATH lookup as the container would do it; errors carry the words the docker CLI maps to 126/127."""
    if "/" in name:
        host = os.path.join(root, name.lstrip("/")) if root != "/" else name
        if not os.path.exists(host):
            raise FileNotFoundError(f'exec: "{name}": stat {name}: no such file or directory')
        if os.path.isdir(host) or not os.access(host, os.X_OK):
            raise PermissionError(f'exec: "{name}": permission denied')
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for directory in path.split(":"):
        if not directory:
            continue
        candidate = os.path.join(directory, name)
        host = os.path.join(root, candidate.lstrip("/")) if root != "/" else candidate
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return candidate
    raise FileNotFoundError(f'exec: "{name}": executable file not found in $PATH')
