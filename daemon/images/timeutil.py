"""Go's RFC3339Nano, as found in image configs ("2024-05-01T10:00:00.123456789Z")."""

import re
import time
from datetime import UTC, datetime

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what Docker prints for "never"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


def format_ns(ns: int) -> str:
    """Unix nanoseconds -> RFC3339Nano in UTC, trailing zeros of the fraction dropped like Go."""
    secs, frac = divmod(ns, 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def now() -> str:
    return format_ns(time.time_ns())


def parse_ns(value: str | None) -> int | None:
    """RFC3339(Nano) -> unix nanoseconds; None when absent or malformed."""
    if not value:
        return None
    m = _RFC3339.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    try:
        base = datetime(year, month, day, hour, minute, min(sec, 59), tzinfo=UTC)
    except ValueError:
        return None
    secs = int(base.timestamp())
    tz = m.group(8)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    nanos = int((m.group(7) or "0")[:9].ljust(9, "0"))
    return secs * 1_000_000_000 + nanos
