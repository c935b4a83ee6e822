"""The `filters` of GET /images/json: reference globs, labels, dangling, before/since/until."""

import re
import time
from collections.abc import Callable

from daemon.errors import InvalidParameter
from daemon.timefmt import parse_since_until

ACCEPTED = {"dangling", "label", "before", "since", "reference", "until"}


def validate(filters: dict[str, list[str]]) -> None:
    for key in filters:
        if key not in ACCEPTED:
            raise InvalidParameter(f"invalid filter '{key}'")


def dangling(filters: dict[str, list[str]]) -> bool | None:
    """True: only dangling images; False: no dangling images; None: no such filter."""
    values = filters.get("dangling")
    if not values:
        return None
    lowered = {v.lower() for v in values}
    if lowered <= {"true", "1"}:
        return True
    if lowered <= {"false", "0"}:
        return False
    raise InvalidParameter(f"invalid filter 'dangling={values[0]}'")


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Go's path.Match: `*` and `?` do not cross "/"; [classes] with ^ for negation."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    regex = re.compile("^" + "".join(out) + "$")
    return lambda s: bool(regex.match(s))


def timestamp_ns(value: str, now_ns: int | None = None) -> int:
    """Docker's timestamps in filters: unix seconds, RFC3339 dates, or a duration back from now."""
    try:
        return parse_since_until(value, time.time_ns() if now_ns is None else now_ns)
    except ValueError as e:
        raise InvalidParameter(str(e)) from e
