"""Time as Docker writes and reads it: RFC 3339 with nanoseconds, the `since`/`until` argument forms,
Go durations, and go-units' human durations ("About a minute")."""

import calendar
import re
import time
from datetime import UTC, datetime, timedelta

NS = 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what Docker prints for "never"

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})")
# The date/time forms moby's GetTimestamp accepts: a date, then optionally an hour, minutes, seconds and a
# fraction (each only after the one before), then optionally a zone. Go's "15" takes a 1- or 2-digit hour.
_SINCE_UNTIL = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{1,2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)
_UNIX = re.compile(r"[+-]?\d+(?:\.\d+)?")
# Go takes both the micro sign and the Greek mu for microseconds
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NS,
    "m": 60 * NS,
    "h": 3600 * NS,
}


def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in UTC, trailing zeros of the fraction dropped: image configs, /info's SystemTime."""
    secs, frac = divmod(ns, NS)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def rfc3339_nano_fixed(ns: int) -> str:
    """Docker's RFC3339NanoFixed in UTC, always nine digits: json-file log lines, container state times."""
    secs, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def now_rfc3339() -> str:
    """The current time as container state and log lines record it."""
    return rfc3339_nano_fixed(time.time_ns())


def _fraction_ns(digits: str | None) -> int:
    return int((digits or "0")[:9].ljust(9, "0"))  # Go keeps nine digits and drops the rest


def _offset_seconds(zone: str) -> int:
    if zone in ("Z", "z"):
        return 0
    sign = 1 if zone[0] == "+" else -1
    return sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)


def _unix_seconds(year: int, month: int, day: int, hour: int, minute: int, sec: int) -> int:
    """Seconds of a UTC wall-clock time; ValueError for a date or time that does not exist."""
    datetime(year, month, day, hour, minute, sec)  # validates; its timestamp() cannot reach year 1
    return calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))


def parse_rfc3339(value: str) -> int:
    """RFC 3339 with any fraction and a Z or +hh:mm zone (Go's RFC3339Nano) -> Unix nanoseconds.

    Go's zero time parses to its real (negative) value; ValueError when the text is not such a time."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    secs = _unix_seconds(year, month, day, hour, minute, min(sec, 59))  # a leap second counts as :59
    return (secs - _offset_seconds(m.group(8))) * NS + _fraction_ns(m.group(7))


def parse_state_time(value: str) -> int:
    """A container's Created/StartedAt/FinishedAt -> Unix nanoseconds; 0 for unset or Go's zero time."""
    if not value or value.startswith("0001-"):
        return 0
    return parse_rfc3339(value)


def parse_go_duration(value: str) -> int:
    """Go's time.ParseDuration ("1h30m", "-1.5s", "300ms") -> nanoseconds; ValueError if it is not one."""
    body = value[1:] if value[:1] in ("+", "-") else value
    if body == "0":
        return 0
    parts = _DURATION_PART.findall(body)
    if not body or _DURATION_PART.sub("", body) or any(not (whole or frac) for whole, frac, _ in parts):
        raise ValueError(f"invalid duration {value!r}")
    total = 0
    for whole, frac, unit in parts:  # in integers, as Go does: 0.3s is 300000000ns exactly
        scale = _DURATION_UNIT_NS[unit]
        total += int(whole or 0) * scale + int(frac or 0) * scale // 10 ** len(frac)
    return -total if value.startswith("-") else total


def parse_unix_timestamp(value: str) -> int:
    """Docker's API form of a time, Unix seconds with an optional fraction ("1700000000.5") -> ns."""
    if not _UNIX.fullmatch(value):
        raise ValueError(f"not a Unix timestamp: {value!r}")
    seconds, _, frac = value.partition(".")
    return int(seconds) * NS + _fraction_ns(frac)


def _local_offset_seconds(now_ns: int) -> int:
    offset = datetime.fromtimestamp(now_ns // NS, UTC).astimezone().utcoffset() or timedelta(0)
    return int(offset.total_seconds())


def parse_since_until(value: str, now_ns: int, local_offset: int | None = None) -> int:
    """A `since`/`until` value the way moby's GetTimestamp reads it -> Unix nanoseconds.

    A Go duration counts back from `now_ns` (to whole seconds, like Go's Unix()); an RFC 3339 date or
    date-time may drop its seconds, minutes, time or zone, and without a zone it is local time at the offset
    `now` has (`local_offset` seconds east of UTC, the host's when None); else Unix seconds.
    """
    try:
        if value != "0":  # Go would read it as a duration of zero: it is the Unix epoch
            return (now_ns - parse_go_duration(value)) // NS * NS
    except ValueError:
        pass
    failed = ValueError(f"failed to parse value as time or duration: {value!r}")
    m = _SINCE_UNTIL.fullmatch(value)
    if m is not None:
        year, month, day = (int(m.group(i)) for i in range(1, 4))
        hour, minute, sec = (int(m.group(i) or 0) for i in range(4, 7))
        zone = m.group(8)
        if zone is not None:
            offset = _offset_seconds(zone)
        else:
            offset = _local_offset_seconds(now_ns) if local_offset is None else local_offset
        try:
            secs = _unix_seconds(year, month, day, hour, minute, sec)
        except ValueError as e:
            raise failed from e
        return (secs - offset) * NS + _fraction_ns(m.group(7))
    if "-" in value:  # moby: with a dash it was meant as a date, and that failed
        raise failed
    try:
        return parse_unix_timestamp(value)
    except ValueError as e:
        raise failed from e


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, the words of `docker ps`: "Up 2 seconds", "About a minute", "3 days"."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = whole // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go's Duration.Round(time.Hour): halves away from zero
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"  # go-units uses the unrounded hours here
