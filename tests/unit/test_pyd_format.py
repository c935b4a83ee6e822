"""pyd's docker-style formatting: sizes, durations, tables, ports, option values."""

from __future__ import annotations

import pytest

from client.pyd import format as fmt


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (4261550, "4.26MB"),
        (999999, "1e+03kB"),  # Go's %.3g, kept as docker shows it
        (1_500_000_000, "1.5GB"),
        (123456, "123kB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert fmt.human_size(size) == text


def test_bytes_size_is_binary() -> None:
    assert fmt.bytes_size(8_000_000_000) == "7.451GiB"
    assert fmt.bytes_size(1024) == "1KiB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (2, "2 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (125, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),  # rounded to the nearest hour
        (9000, "3 hours"),  # halves away from zero, as Go's Duration.Round
        (47 * 3600, "47 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (90 * 86400, "3 months"),
        (730 * 86400, "2 years"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert fmt.human_duration(seconds) == text


def test_since_and_status_strings() -> None:
    assert fmt.since(100, now=102.5) == "2 seconds ago"


def test_ellipsis_and_quote() -> None:
    assert fmt.ellipsis("sleep 300", 20) == "sleep 300"
    assert fmt.ellipsis("sleep 300 && echo hello world", 20) == "sleep 300 && echo h…"
    assert len(fmt.ellipsis("x" * 50, 20)) == 20
    assert fmt.go_quote('sh -c "echo hi"') == '"sh -c \\"echo hi\\""'


def test_truncate_id() -> None:
    assert fmt.truncate_id("sha256:" + "ab" * 32) == "abababababab"
    assert fmt.truncate_id("0123456789abcdef") == "0123456789ab"


def test_tabwrite_pads_like_go_tabwriter() -> None:
    out = fmt.tabwrite(["A\tBB\tC", "long cell here\tx\tlast cell is not padded"])
    assert out == (
        "A                BB        C\n"  # 14 + 3 padding = 17; "BB" + 3 < minwidth 10
        "long cell here   x         last cell is not padded\n"
    )


def test_render_table_and_plain_formats() -> None:
    rows = [{"ID": "abc", "Name": "one"}, {"ID": "defghi", "Name": "two"}]
    headers = {"ID": "ID", "Name": "NAME"}
    assert fmt.render("table {{.ID}}\\t{{.Name}}", rows, headers) == (
        "ID        NAME\nabc       one\ndefghi    two\n"
    )
    assert fmt.render("{{.Name}}", rows, headers) == "one\ntwo\n"
    assert fmt.render("json", rows[:1], headers) == '{"ID":"abc","Name":"one"}\n'


def test_display_ports() -> None:
    ports = [
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
        {"PrivatePort": 444, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 9000, "PublicPort": 9000, "Type": "tcp"},
    ]
    assert fmt.display_ports(ports) == (
        "53/udp, 443-444/tcp, 0.0.0.0:9000->9000/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    )
    assert fmt.display_ports([]) == ""


@pytest.mark.parametrize(
    ("text", "size"),
    [("67108864", 67108864), ("64m", 64 << 20), ("64MB", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10),
     ("1.5g", 3 << 29), ("10b", 10), ("2MiB", 2 << 20)],
)  # fmt: skip
def test_ram_in_bytes(text: str, size: int) -> None:
    assert fmt.ram_in_bytes(text) == size


@pytest.mark.parametrize("text", ["", "m", "64x", "-1m", "1.2.3g"])
def test_ram_in_bytes_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        fmt.ram_in_bytes(text)


def test_cpus_to_nano() -> None:
    assert fmt.cpus_to_nano("0.5") == 500_000_000
    assert fmt.cpus_to_nano("2") == 2_000_000_000
    assert fmt.cpus_to_nano("0.000000001") == 1
    with pytest.raises(ValueError, match="too precise"):
        fmt.cpus_to_nano("0.0000000001")
    with pytest.raises(ValueError, match="invalid argument"):
        fmt.cpus_to_nano("lots")


def test_api_timestamp() -> None:
    now = 1_800_000_000.0
    assert fmt.api_timestamp("10m", now) == str(1_800_000_000 - 600)
    assert fmt.api_timestamp("1h30m", now) == str(1_800_000_000 - 5400)
    assert fmt.api_timestamp("1700000000", now) == "1700000000"
    assert fmt.api_timestamp("1700000000.5", now) == "1700000000.5"
    assert fmt.api_timestamp("2025-01-01T00:00:00Z", now) == "1735689600.000000000"
    assert fmt.api_timestamp("2025-01-01T00:00:00.25+01:00", now) == "1735686000.250000000"
    with pytest.raises(ValueError):
        fmt.api_timestamp("yesterday", now)


def test_rfc3339_nano_and_ansic(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert fmt.rfc3339_nano(1764295937123456789) == "2025-11-28T02:12:17.123456789Z"
        assert fmt.go_time(0) == "1970-01-01 00:00:00 +0000 UTC"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert fmt.ansic("2026-01-01T00:00:00Z") == "Thu Jan  1 00:00:00 2026"
    assert fmt.ansic("2025-05-30T12:07:14.123456789Z") == "Fri May 30 12:07:14 2025"
    assert fmt.ansic("unknown") == "unknown"
