"""daemon.timefmt: RFC 3339 out and in, Docker's since/until forms, Go durations, go-units' words."""

import pytest

from daemon import timefmt

T = 1_700_000_000  # 2023-11-14T22:13:20Z
NS = 10**9


def test_rfc3339_nano_drops_trailing_zeros_like_go() -> None:
    assert timefmt.rfc3339_nano(T * NS + 120_000_000) == "2023-11-14T22:13:20.12Z"
    assert timefmt.rfc3339_nano(T * NS) == "2023-11-14T22:13:20Z"
    assert timefmt.rfc3339_nano(T * NS + 1) == "2023-11-14T22:13:20.000000001Z"


def test_rfc3339_nano_fixed_keeps_nine_digits() -> None:
    assert timefmt.rfc3339_nano_fixed(T * NS + 123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert timefmt.rfc3339_nano_fixed(T * NS) == "2023-11-14T22:13:20.000000000Z"
    assert timefmt.rfc3339_nano_fixed(0) == "1970-01-01T00:00:00.000000000Z"


def test_times_before_the_epoch_format_and_parse() -> None:
    assert timefmt.rfc3339_nano(-NS // 2) == "1969-12-31T23:59:59.5Z"
    assert timefmt.parse_rfc3339("1969-12-31T23:59:59.5Z") == -NS // 2
    assert timefmt.parse_rfc3339(timefmt.ZERO_TIME) == -62_135_596_800 * NS


def test_now_rfc3339_is_the_current_time() -> None:
    import time

    before = time.time_ns()
    parsed = timefmt.parse_rfc3339(timefmt.now_rfc3339())
    assert before <= parsed <= time.time_ns()


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2023-11-14T22:13:20Z", T * NS),
        ("2023-11-14T22:13:20.12Z", T * NS + 120_000_000),
        ("2023-11-14T22:13:20.123456789Z", T * NS + 123_456_789),
        ("2023-11-14T22:13:20.1234567891234Z", T * NS + 123_456_789),  # past nine digits: dropped
        ("2023-11-14T23:13:20.000000001+01:00", T * NS + 1),
        ("2023-11-14T21:43:20-00:30", T * NS),
        ("2023-11-14t22:13:20z", T * NS),
        ("2023-11-14 22:13:20Z", T * NS),
        ("2016-12-31T23:59:60Z", 1_483_228_799 * NS),  # a leap second counts as :59
    ],
)
def test_parse_rfc3339(text: str, ns: int) -> None:
    assert timefmt.parse_rfc3339(text) == ns


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2023-11-14", "2023-11-14T22:13:20", "2023-13-01T00:00:00Z", "2023-02-30T00:00:00Z"],
)
def test_parse_rfc3339_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        timefmt.parse_rfc3339(text)


def test_round_trips() -> None:
    for ns in (T * NS, T * NS + 1, T * NS + 999_999_999, 0):
        assert timefmt.parse_rfc3339(timefmt.rfc3339_nano(ns)) == ns
        assert timefmt.parse_rfc3339(timefmt.rfc3339_nano_fixed(ns)) == ns


def test_parse_state_time_reads_never_as_zero() -> None:
    assert timefmt.parse_state_time("") == 0
    assert timefmt.parse_state_time(timefmt.ZERO_TIME) == 0
    assert timefmt.parse_state_time("2023-11-14T22:13:20.000000005Z") == T * NS + 5
    with pytest.raises(ValueError):
        timefmt.parse_state_time("soon")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("10m", 600 * NS),
        ("1h30m", 5400 * NS),
        ("1.5h", 5400 * NS),
        ("0.3s", 300_000_000),
        (".5s", 500_000_000),
        ("1.s", NS),
        ("300ms", 300_000_000),
        ("2us", 2_000),
        ("2µs", 2_000),
        ("7ns", 7),
        ("-1.5s", -1_500_000_000),
        ("+2m", 120 * NS),
        ("1h1m1s1ms", 3661 * NS + 1_000_000),
    ],
)
def test_parse_go_duration(text: str, ns: int) -> None:
    assert timefmt.parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "10", "1.5", "h", ".s", "1d", "1h m", "1.5.5s", "-", "10M"])
def test_parse_go_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        timefmt.parse_go_duration(text)


def test_parse_unix_timestamp() -> None:
    assert timefmt.parse_unix_timestamp("1700000000") == T * NS
    assert timefmt.parse_unix_timestamp("1700000000.5") == T * NS + 500_000_000
    assert timefmt.parse_unix_timestamp("1700000000.000000001") == T * NS + 1
    assert timefmt.parse_unix_timestamp("1700000000.1234567899") == T * NS + 123_456_789
    for bad in ("", "1.", ".5", "1e9", "1_000", " 1", "x"):
        with pytest.raises(ValueError):
            timefmt.parse_unix_timestamp(bad)


NOW = 2_000_000_000 * NS + 700_000_000  # a fraction, so that "whole seconds" is tested
EAST_2H = 7200


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        # durations count back from now, to whole seconds like Go's Unix()
        ("10m", (2_000_000_000 - 600) * NS),
        ("1h30m", (2_000_000_000 - 5400) * NS),
        ("-10s", (2_000_000_000 + 10) * NS),
        # Unix seconds, as the API sends them
        ("0", 0),
        ("1700000000", T * NS),
        ("1700000000.25", T * NS + 250_000_000),
        # RFC 3339 with a zone
        ("2023-11-14T22:13:20Z", T * NS),
        ("2023-11-14T22:13:20.5Z", T * NS + 500_000_000),
        ("2023-11-14T23:13:20+01:00", T * NS),
        ("2023-11-14T21:13:20-01:00", T * NS),
        ("2023-11-14T22:13Z", (T - 20) * NS),
        ("2023-11-14T22Z", (T - 13 * 60 - 20) * NS),
        ("2023-11-14Z", (T - 22 * 3600 - 13 * 60 - 20) * NS),
        ("2023-11-14+01:00", (T - 23 * 3600 - 13 * 60 - 20) * NS),
        # without a zone: local time, here two hours east of UTC
        ("2023-11-15T00:13:20", T * NS),
        ("2023-11-15T00:13:20.000000001", T * NS + 1),
        ("2023-11-15T00:13", (T - 20) * NS),
        ("2023-11-15T0", (T - 13 * 60 - 20) * NS),
        ("2023-11-15", (T - 13 * 60 - 20) * NS),
    ],
)
def test_parse_since_until(text: str, ns: int) -> None:
    assert timefmt.parse_since_until(text, NOW, local_offset=EAST_2H) == ns


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2023-11-14T22:13:20.Z", "2023-11-14T22:13.5Z", "2023-02-30", "-5", "12abc", "1.2.3", ""],
)
def test_parse_since_until_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="failed to parse value as time or duration"):
        timefmt.parse_since_until(text, NOW, local_offset=0)


def test_parse_since_until_uses_the_hosts_zone_by_default() -> None:
    import time

    offset = -time.altzone if time.localtime(NOW // NS).tm_isdst > 0 else -time.timezone
    expected = timefmt.parse_since_until("2023-11-14T22:13:20", NOW, local_offset=offset)
    assert timefmt.parse_since_until("2023-11-14T22:13:20", NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "Less than a second"),
        (0.99, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),  # Go rounds the hours half away from zero
        (9000, "3 hours"),  # 2.5 h: 3, where Python's round() would say 2
        (47 * 3600 + 1799, "47 hours"),
        (47 * 3600 + 1800, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (729 * 86400, "24 months"),
        (730 * 86400, "2 years"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration_like_go_units(seconds: float, text: str) -> None:
    assert timefmt.human_duration(seconds) == text
