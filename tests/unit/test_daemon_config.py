"""The connection settings: flags and config-file keys, refused when they make no sense."""

import json
import resource
from pathlib import Path

import pytest

from daemon.api.server import default_max_connections, raise_open_file_limit
from daemon.config import load


def test_connection_flags_have_dockerds_header_timeout_by_default() -> None:
    cfg, _ = load([])
    assert (cfg.http_read_header_timeout, cfg.http_idle_timeout, cfg.max_connections) == (300.0, 300.0, None)
    cfg, _ = load(["--http-read-header-timeout", "2.5", "--http-idle-timeout", "7", "--max-connections", "9"])
    assert (cfg.http_read_header_timeout, cfg.http_idle_timeout, cfg.max_connections) == (2.5, 7.0, 9)


def test_connection_settings_come_from_the_config_file_too(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"http-idle-timeout": 30, "max-connections": 100}))
    cfg, _ = load(["--config-file", str(conf)])
    assert (cfg.http_idle_timeout, cfg.max_connections) == (30, 100)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--http-idle-timeout", "0"], "http-idle-timeout must be a number of seconds above 0"),
        (["--http-read-header-timeout", "-1"], "http-read-header-timeout must be a number of seconds"),
        (["--http-idle-timeout", "inf"], "http-idle-timeout must be a number of seconds above 0"),
        (["--max-connections", "0"], "max-connections must be a whole number above 0"),
    ],
)
def test_nonsense_connection_settings_are_refused(argv: list[str], words: str) -> None:
    with pytest.raises(SystemExit, match=words):
        load(argv)


@pytest.mark.parametrize("value", ["30", True, 1.5])
def test_config_file_values_of_the_wrong_type_are_refused(tmp_path: Path, value: object) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"max-connections": value}))
    with pytest.raises(SystemExit, match="max-connections must be a whole number above 0"):
        load(["--config-file", str(conf)])


def test_the_soft_open_file_limit_goes_up_to_the_hard_one() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        soft, hard = before
        if hard == resource.RLIM_INFINITY or hard < 64:
            pytest.skip("needs a finite hard limit")
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard // 2), hard))
        assert raise_open_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_the_default_cap_leaves_half_the_descriptors() -> None:
    assert default_max_connections(20000) == 10000
    assert default_max_connections(20) == 16
