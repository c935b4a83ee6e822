"""Query booleans and API versions read as Docker reads them."""

import pytest
from aiohttp.test_utils import make_mocked_request

from daemon.api.common import query_bool
from daemon.apiversion import parse_version


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", False), ("0", False), ("no", False), ("FALSE", False), (" none ", False),
     ("1", True), ("true", True), ("yes", True), ("null", True), ("anything", True)],
)  # fmt: skip
def test_query_bool_is_mobys_bool_value(raw: str, expected: bool) -> None:
    assert query_bool(make_mocked_request("GET", f"/containers/json?all={raw}"), "all") is expected
    assert query_bool(make_mocked_request("GET", "/containers/json"), "all", default=True) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.47", (1, 47)), ("1.047", (1, 47)), ("0" * 5000 + "1.24", (1, 24)),
     ("9" * 5000 + ".1", (2**63 - 1, 1)), ("1." + "9" * 20, (1, 2**63 - 1))],
)  # fmt: skip
def test_parse_version_reads_numbers_as_strconv_atoi_does(text: str, expected: tuple[int, int]) -> None:
    assert parse_version(text) == expected
