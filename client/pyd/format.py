"""Output formatting the way the docker CLI does it: tables, sizes, durations, times."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import template

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, units: Sequence[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"  # Python's g matches Go's %.*g


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: base 1000, `precision` significant digits ("4.26MB")."""
    return _scaled(float(size), 1000.0, _DECIMAL_UNITS, precision)


def bytes_size(size: float) -> str:
    """go-units BytesSize: base 1024, 4 significant digits ("7.451GiB")."""
    return _scaled(float(size), 1024.0, _BINARY_UNITS, 4)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration ("Less than a second", "About a minute", "3 days")."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = secs // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go's Duration.Round(time.Hour)
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
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(timestamp: float, now: float | None = None) -> str:
    """ "2 seconds ago" for a unix time."""
    now = time.time() if now is None else now
    return human_duration(now - timestamp) + " ago"


def ellipsis(text: str, width: int) -> str:
    """Shorten to `width` characters, the last being '…' (docker's formatter.Ellipsis)."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 1 else text[:width]


def go_quote(text: str) -> str:
    """Close to Go's strconv.Quote: double quotes, escapes, printable unicode kept."""
    return json.dumps(text, ensure_ascii=False)


def truncate_id(ident: str) -> str:
    """stringid.TruncateID: drop an `algo:` prefix, keep 12 characters."""
    return ident.split(":", 1)[-1][:12]


def go_time(ts: float) -> str:
    """Go's time.Time.String() in local time: `2026-11-28 02:12:17 +0000 UTC`."""
    dt = datetime.fromtimestamp(ts).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + (dt.tzname() or "")


def rfc3339_nano(nanos: int) -> str:
    """jsonmessage.RFC3339NanoFixed in local time: 2026-11-28T02:12:17.123456789Z."""
    secs, frac = divmod(nanos, 1_000_000_000)
    dt = datetime.fromtimestamp(secs).astimezone()
    offset = dt.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        zone = "Z"
    else:
        total = int(offset.total_seconds())
        sign = "+" if total >= 0 else "-"
        zone = f"{sign}{abs(total) // 3600:02d}:{abs(total) % 3600 // 60:02d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}{zone}"


def ansic(value: str) -> str:
    """An RFC 3339 build time as Go's time.ANSIC (`Thu Jan  1 00:00:00 2026`); unparsable: as is."""
    try:
        dt = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))
    except ValueError:
        return value
    return dt.strftime("%a %b ") + f"{dt.day:2d}" + dt.strftime(" %H:%M:%S %Y")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration like `10m`, `1h30m`, `2.5s`; None when it is not one."""
    if not text or _DURATION_PART.sub("", text.lstrip("+-")):
        return None
    total = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    return -total if text.startswith("-") else total


def api_timestamp(value: str, now: float | None = None) -> str:
    """--since/--until as the API wants them (docker's timetypes.GetTimestamp)."""
    now = time.time() if now is None else now
    if not value:
        return value
    duration = parse_go_duration(value)
    if duration is not None:
        return str(int(now - duration))
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value  # already a unix timestamp
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"failed to parse value as time or duration: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a time without a zone is local time, as in docker
    whole = int(dt.timestamp())
    return f"{whole}.{dt.microsecond * 1000:09d}"


def display_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    """docker's DisplayablePorts: unpublished ports grouped into ranges, then host mappings."""

    def sort_key(p: Mapping[str, Any]) -> tuple[int, str, int, str]:
        return (p.get("PrivatePort") or 0, p.get("IP") or "", p.get("PublicPort") or 0, p.get("Type") or "")

    groups: dict[str, list[int]] = {}  # key -> [first, last], in creation order
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports, key=sort_key):
        private, public = port.get("PrivatePort") or 0, port.get("PublicPort") or 0
        proto, ip = port.get("Type") or "tcp", port.get("IP") or ""
        key = proto
        if ip:
            if public != private:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            groups[key] = [private, private]
    result += [_port_group(key, *group) for key, group in groups.items()]
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    if ip:
        host = f"[{ip}]" if ":" in ip else ip
        span = f"{host}:{span}->{span}"
    return f"{span}/{proto}"


def tabwrite(lines: Sequence[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter with the docker CLI's settings: tab-terminated cells are padded
    to the widest cell of their column plus `padding` (at least `minwidth`); the text after
    the last tab of a line is left as it is."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):
            width = max(len(cell) + padding, minwidth)
            if i == len(widths):
                widths.append(width)
            else:
                widths[i] = max(widths[i], width)
    out = []
    for cells in rows:
        out.append("".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])) + cells[-1])
    return "".join(line + "\n" for line in out)


def render(fmt: str, rows: Sequence[Any], headers: Mapping[str, str] | None = None) -> str:
    """docker's formatter: `table ...` gets a header row and tabwriter alignment; any other
    format is rendered once per row. `\\t` and `\\n` typed on the command line are escapes."""
    if fmt == "json":  # docker's `--format json`: one JSON object per row, keys sorted like a Go map
        return "".join(template.go_json(dict(sorted(dict(row).items()))) + "\n" for row in rows)
    is_table = fmt.startswith("table")
    body = fmt[len("table") :] if is_table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = template.parse(body)
    rendered = [tmpl.render(row) for row in rows]
    if not is_table:
        return "".join(line + "\n" for line in rendered)
    lines = [tmpl.render(dict(headers or {}))] if headers is not None else []
    lines += rendered
    return tabwrite([ln for text in lines for ln in text.split("\n")])


def cpus_to_nano(value: str) -> int:
    """--cpus 0.5 -> 500000000 NanoCpus; more than 9 decimals is an error, as in docker."""
    from decimal import Decimal  # only `run --cpus` needs it

    try:
        nano = Decimal(value) * 1_000_000_000
    except ArithmeticError as e:
        raise ValueError(f'invalid argument "{value}" for "--cpus" flag') from e
    if nano != nano.to_integral_value():
        raise ValueError(f'invalid argument "{value}" for "--cpus" flag: value is too precise')
    return int(nano)


_SIZE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+) ?([kmgtp])?(i?b)?$", re.IGNORECASE)


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: `64m`, `1g`, `512k`, `1.5GB`, plain bytes; binary multiples."""
    m = _SIZE.match(value.strip())
    if not m:
        raise ValueError(f"invalid size: '{value}'")
    mult = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mult)
