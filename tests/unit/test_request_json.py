"""parse_json: what Go's decoder would refuse (or mend) gets a 400 with clear words, never a 500."""

import json

import pytest

from daemon.api.request_json import MAX_DEPTH, parse_json
from daemon.errors import InvalidParameter


def refused(raw: bytes | str) -> str:
    with pytest.raises(InvalidParameter) as info:
        parse_json(raw)
    assert info.value.status == 400
    return info.value.message


def test_plain_bodies_decode() -> None:
    body = {"Image": "busybox", "Cmd": ["echo", "hé"], "HostConfig": {"Memory": 2**63 - 1, "CpuPercent": 0.5}}
    assert parse_json(json.dumps(body).encode()) == body
    assert parse_json('{"status": ["exited"]}') == {"status": ["exited"]}


def test_invalid_utf8_is_refused_with_its_offset() -> None:
    assert (
        refused(b'{"Image": "busybox", "Cmd": ["\xff\xfe"]}')
        == "invalid JSON: invalid UTF-8 at byte offset 30"
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 5000, 100_000])
def test_deep_nesting_is_refused_in_gos_words(depth: int) -> None:
    assert refused("[" * depth + "]" * depth) == "invalid JSON: exceeded max depth"
    assert refused('{"a":' * depth + "1" + "}" * depth) == "invalid JSON: exceeded max depth"


def test_nesting_up_to_the_limit_is_accepted() -> None:
    value = parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize(
    "number", ["9" * 5000, "1" + "0" * 20, str(2**64), str(-(2**63) - 1), "1e400", "-1e999"]
)
def test_numbers_out_of_range_are_refused(number: str) -> None:
    message = refused('{"Memory": ' + number + "}")
    assert message.startswith("invalid JSON: number ") and message.endswith(" is out of range")
    assert len(message) < 100, "a 5,000-digit number is not echoed whole"


def test_numbers_at_the_edges_of_docker_fields_are_accepted() -> None:
    assert parse_json(f"[{2**64 - 1}, {-(2**63)}, 1e308, -0.0]") == [2**64 - 1, -(2**63), 1e308, -0.0]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    assert refused('{"CpuPercent": ' + constant + "}").startswith("invalid JSON: invalid character")


def test_lone_surrogates_become_the_replacement_character_as_in_go() -> None:
    value = parse_json(b'{"Cmd": ["a\\ud800b"], "\\udc00": "x", "ok": "\\ud83d\\ude00"}')
    assert value == {"Cmd": ["a\ufffdb"], "\ufffd": "x", "ok": "\U0001f600"}
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # encodable everywhere now


@pytest.mark.parametrize(
    "raw", [b'{"Image": "busybox", "Cmd": [', b"\xef\xbb\xbf{}", b"{} {}", b"'x'", b'{"a" 1}']
)
def test_malformed_json_says_where(raw: bytes) -> None:
    message = refused(raw)
    assert message.startswith("invalid JSON: ") and " line 1 column " in message
